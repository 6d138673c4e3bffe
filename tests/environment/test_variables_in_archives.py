"""Variables read from real package archives (wheel, .tar.gz and .zip sdists) at the inspect step."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from environment_helpers import make_wheel
from packages import build, write_project, zip_sdist

from lume_services.environment.inspect import inspect_archive
from lume_services.environment.settings import EnvironmentSettings
from lume_services.errors import PackageInspectionError, VariablesFileError

SETTINGS = EnvironmentSettings()
TEMPLATE = "input_variables:\n  input1: {name: input1, type: scalar, default: 1, range: [0, 256]}\noutput_variables:\n  output1: {name: output1, type: image, x_label: x}\n"  # noqa: E501
TORCH_MODEL = (
    "model_class: TorchModel\ninput_variables:\n  MedInc: {variable_type: scalar, value_range: [0.5, 15.0], default: 3.8}\n"
    "output_variables:\n  MedHouseVal: {variable_type: scalar}\nmodel: model.pt\n"
)
LUME_BASE = json.dumps({
    "input_variables": {"energy": {"variable_class": "ScalarVariable", "default_value": 0.1, "value_range": [0, 1]}},
    "output_variables": {"bunch": {"variable_class": "ParticleGroupVariable"}},
})  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Packages in each place and dialect, built by uv (wheels and sdists), and a .zip sdist."""
    src, out = tmp_path_factory.mktemp("variables-src"), tmp_path_factory.mktemp("variables-out")
    projects = {
        # The predecessor's model template: <pkg>/files/variables.yml (and a lume-model config that loses to it).
        "template": write_project(src, dist="template-model", package="template_model", dependencies=(),
                                  files={"files/variables.yml": TEMPLATE, "configs/torch_model.yml": TORCH_MODEL}),
        # A lume-model 2 config somewhere in the package, next to a large data file.
        "torch": write_project(src, dist="torch-model", package="torch_model", dependencies=(),
                               files={"configs/torch_model.yml": TORCH_MODEL,
                                      "data/table.json": json.dumps(list(range(400_000)))}),
        "base": write_project(src, dist="base-model", package="base_model", dependencies=(),
                              files={"variables.json": LUME_BASE}),
        "none": write_project(src, dist="plain-model", package="plain_model", dependencies=()),
    }  # fmt: skip
    jobs = {f"{k}-{kind}": (p, kind) for k, p in projects.items() for kind in ("wheel", "sdist")}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(build, project, out, kind) for key, (project, kind) in jobs.items()}
        artifacts = {key: f.result() for key, f in futures.items()}
    artifacts["base-zip"] = zip_sdist(artifacts["base-sdist"])
    return artifacts


class TestFromArchives:
    @pytest.mark.parametrize("kind", ["wheel", "sdist"])
    def test_the_templates_files_variables_yml_wins(self, built, kind):
        v = inspect_archive(built[f"template-{kind}"], SETTINGS).variables
        assert v.source_file == "template_model/files/variables.yml" and v.format == "lume-model-1"
        assert v.inputs["input1"].range == (0.0, 256.0) and v.outputs["output1"].extra == {"x_label": "x"}

    @pytest.mark.parametrize("kind", ["wheel", "sdist"])
    def test_a_lume_model_config_anywhere_in_the_package(self, built, kind):
        v = inspect_archive(built[f"torch-{kind}"], SETTINGS).variables
        assert v.source_file == "torch_model/configs/torch_model.yml" and v.format == "lume-model-2"
        assert list(v.inputs) == ["MedInc"] and list(v.outputs) == ["MedHouseVal"]

    @pytest.mark.parametrize("kind", ["wheel", "sdist", "zip"])
    def test_lume_base_json_next_to_the_package(self, built, kind):
        v = inspect_archive(built[f"base-{kind}"], SETTINGS).variables
        assert v.source_file == "base_model/variables.json" and v.format == "lume-base"
        assert v.inputs["energy"].default == 0.1 and v.outputs["bunch"].kind == "particle_group"

    def test_a_package_without_variables_is_still_valid(self, built):
        info = inspect_archive(built["none-wheel"], SETTINGS)
        assert info.variables.inputs == {} and not info.variables.declared


class TestRefusedAtInspect:
    def test_two_candidates_at_one_rank_name_both(self, tmp_path):
        wheel = make_wheel(tmp_path, files={
            "hand_made/variables.yml": TEMPLATE.encode(), "hand_made/variables.json": LUME_BASE.encode()})  # fmt: skip
        with pytest.raises(VariablesFileError, match="'hand_made/variables.json' and 'hand_made/variables.yml' both"):
            inspect_archive(wheel, SETTINGS)

    def test_two_lume_model_configs_name_both(self, tmp_path):
        wheel = make_wheel(tmp_path, files={
            "hand_made/a.yml": TORCH_MODEL.encode(), "hand_made/b/c.yaml": TORCH_MODEL.encode()})  # fmt: skip
        with pytest.raises(VariablesFileError, match="'hand_made/a.yml' and 'hand_made/b/c.yaml' both"):
            inspect_archive(wheel, SETTINGS)

    def test_a_malformed_file_names_the_archive_the_file_the_line_and_the_variable(self, tmp_path):
        bad = "input_variables:\n  input1: {type: scalar}\n  input2: {type: scalar, range: [5, 1]}\n"
        wheel = make_wheel(tmp_path, files={"hand_made/files/variables.yml": bad.encode()})
        with pytest.raises(PackageInspectionError) as caught:
            inspect_archive(wheel, SETTINGS)
        assert str(caught.value) == (
            "Package 'hand_made-1.0-py3-none-any.whl' cannot be registered: its variables file "
            "'hand_made/files/variables.yml' (line 3, variable 'input2'): the range [5, 1] has its min above "
            "its max; fix the file and build the package again."
        )

    def test_files_outside_the_import_package_do_not_count(self, tmp_path):
        wheel = make_wheel(tmp_path, files={"other/variables.yml": TEMPLATE.encode()})
        assert not inspect_archive(wheel, SETTINGS).variables.declared
