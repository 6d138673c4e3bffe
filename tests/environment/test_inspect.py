"""inspect_archive: metadata, entry points and image read without running or extracting anything."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest
from environment_helpers import (
    NO_SUCH_PACKAGE,
    MiB,
    files_under,
    make_sdist,
    make_tar_bomb,
    make_wheel,
    sdist_members,
)

from lume_services.environment.inspect import EntryPointRef, inspect_archive, valid_image
from lume_services.environment.settings import EnvironmentSettings
from lume_services.environment.sources import parse_source
from lume_services.errors import NoFlowFoundInPackageError, PackageInspectionError, UnsafeArchiveError

SETTINGS = EnvironmentSettings()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "archives"
    path.mkdir()
    return path


def inspect(path: Path, **settings):
    return inspect_archive(path, SETTINGS.model_copy(update=settings))


class TestBuiltPackages:
    @pytest.mark.parametrize("which", ["my_model_sdist", "my_model_wheel"])
    def test_hatchling_dash_named_distribution(self, fixture_packages, which):
        path = getattr(fixture_packages, which)
        info = inspect(path)
        assert info.kind == ("wheel" if which.endswith("wheel") else "sdist")
        assert info.filename == path.name
        assert (info.name, info.version) == ("my-model", "0.1.0")
        assert info.import_name == "my_model"  # from the entry point, not the distribution name
        assert info.flow == EntryPointRef("my_model.flow", "my_model.flow:flow")
        assert info.model == EntryPointRef("my_model.model", "my_model.model:Model")
        assert info.requires_python == ">=3.11"
        assert info.requires_dist == ()
        assert info.image == "ghcr.io/slaclab/my-model:v0.1.0"  # _image.py f-string over __version__

    def test_setuptools_pyproject_sdist(self, fixture_packages):
        info = inspect(fixture_packages.setuptools_sdist)
        assert (info.kind, info.name, info.version) == ("sdist", "setup-model", "0.1.0")
        assert info.import_name == "setup_model"
        assert info.model == EntryPointRef("setup_model.model", "setup_model.model:Model")
        assert info.requires_python == ">=3.11"
        # the Container Image Project-URL (tagless: the version is appended) beats _image.py
        assert info.image == "ghcr.io/slaclab/setup-model:v0.1.0"

    def test_legacy_setup_py_sdist(self, fixture_packages):
        info = inspect(fixture_packages.legacy_sdist)
        assert (info.kind, info.name, info.version) == ("sdist", "legacy-model", "0.1.0")
        assert info.flow == EntryPointRef("legacy_model.flow", "legacy_model.flow:flow")
        assert info.model is not None
        assert info.requires_python is None
        assert info.image == "docker.io/slaclab/legacy-model:1.0"  # _image.py, plain string

    def test_dependencies_and_no_image(self, fixture_packages):
        info = inspect(fixture_packages.bad_dependency_wheel)
        assert info.requires_dist == (f"{NO_SUCH_PACKAGE}==1.0",)
        assert info.image is None
        assert inspect(fixture_packages.not_a_flow_wheel).image is None

    def test_missing_flow(self, fixture_packages):
        path = fixture_packages.no_flow_wheel
        with pytest.raises(NoFlowFoundInPackageError) as info:
            inspect(path)
        assert info.value.package == path.name
        assert "orchestration" in str(info.value) and "<pkg>.flow" in str(info.value)

    def test_two_flows_refused(self, fixture_packages):
        with pytest.raises(
            PackageInspectionError, match=r"several flow entry points \(other.flow, two_flows.flow\)"
        ):
            inspect(fixture_packages.two_flows_wheel)

    @pytest.mark.parametrize(
        ("which", "renamed", "says"),
        [
            (
                "my_model_sdist",
                "other_model-0.1.0.tar.gz",
                "says other-model 0.1.0 but its metadata says my-model 0.1.0",
            ),
            (
                "my_model_sdist",
                "my_model-0.2.0.tar.gz",
                "says my-model 0.2.0 but its metadata says my-model 0.1.0",
            ),
            ("my_model_wheel", "other-0.1.0-py3-none-any.whl", "says other 0.1.0"),
            ("my_model_sdist", "mymodel.tar.gz", "not <name>-<version>"),
        ],
    )
    def test_file_name_must_match_metadata(self, fixture_packages, folder, which, renamed, says):
        path = shutil.copyfile(getattr(fixture_packages, which), folder / renamed)
        with pytest.raises(PackageInspectionError, match=says):
            inspect(Path(path))

    def test_dash_in_file_name_matches_canonical_name(self, fixture_packages, folder):
        path = shutil.copyfile(fixture_packages.my_model_sdist, folder / "My.Model-0.1.0.tar.gz")
        assert inspect(Path(path)).name == "my-model"


class TestRequiresPython:
    def test_check_python(self, fixture_packages):
        info = inspect(fixture_packages.my_model_wheel)
        info.check_python("3.11.7")
        info.check_python("3.13.0rc1")
        with pytest.raises(PackageInspectionError) as error:
            info.check_python("3.10.14")
        assert ">=3.11" in str(error.value) and "3.10.14" in str(error.value)

    def test_no_requirement_accepts_anything(self, fixture_packages):
        inspect(fixture_packages.legacy_sdist).check_python("3.8.0")

    def test_invalid_specifier(self, fixture_packages):
        info = dataclasses.replace(
            inspect(fixture_packages.my_model_wheel), requires_python="three point eleven"
        )
        with pytest.raises(PackageInspectionError, match="is invalid"):
            info.check_python("3.11.7")


class TestImage:
    @pytest.mark.parametrize(
        ("url", "image"),
        [
            ("Container Image, ghcr.io/slaclab/x:2.0", "ghcr.io/slaclab/x:2.0"),
            ("container-image, docker://ghcr.io/slaclab/x", "ghcr.io/slaclab/x:v1.0"),
            ("CONTAINER_IMAGE, localhost:5000/slaclab/x", "localhost:5000/slaclab/x:v1.0"),
            ("Container Image, ghcr.io/x@sha256:" + "a" * 64, "ghcr.io/x@sha256:" + "a" * 64),
        ],
    )
    def test_project_url(self, folder, url, image):
        wheel = make_wheel(
            folder, metadata_extra=f"Project-URL: Homepage, https://example.org\nProject-URL: {url}\n",
            files={"hand_made/_image.py": b'IMAGE = "docker.io/loses:1"\n'},
        )  # fmt: skip
        assert inspect(wheel).image == image

    @pytest.mark.parametrize(
        ("module", "image"),
        [
            ('IMAGE = f"ghcr.io/x/y:{__version__}"\n', "ghcr.io/x/y:1.0"),
            ('from .x import __version__\nIMAGE = "ghcr.io/x/y:3"\nOTHER = 1\n', "ghcr.io/x/y:3"),
            ('import os\nIMAGE = f"ghcr.io/x/y:{os.environ}"\n', None),
            ('IMAGE = f"ghcr.io/x/y:{__version__!r}"\n', None),
            ('IMAGE = "ghcr.io/x/" + "y"\n', None),
            ("IMAGE = (\n", None),
            ('NAME = "ghcr.io/x/y"\n', None),
        ],
    )
    def test_image_module_is_parsed_not_run(self, folder, module, image):
        sentinel = folder / "imported"
        source = f"open({str(sentinel)!r}, 'w').close()\n{module}"  # would leave a trace if executed
        wheel = make_wheel(folder, files={"hand_made/_image.py": source.encode()})
        assert inspect(wheel).image == image
        assert not sentinel.exists()

    def test_src_layout_sdist(self, folder):
        members = sdist_members()
        members["hand_made-1.0/src/hand_made/_image.py"] = b'IMAGE = "ghcr.io/x/src:1"\n'
        assert inspect(make_sdist(folder, members)).image == "ghcr.io/x/src:1"

    @pytest.mark.parametrize(
        ("ref", "ok"),
        [
            ("ghcr.io/slaclab/my-model:v0.1.0", True),
            ("localhost:5000/a/b@sha256:" + "0" * 64, True),
            ("python", True),
            ("GHCR.io/SLACLAB/Model:1", False),
            ("ghcr.io/x y:1", False),
            ("", False),
        ],
    )
    def test_valid_image(self, ref, ok):
        assert valid_image(ref) is ok


class TestHandMadeMetadata:
    def test_hatchling_style_sdist_reads_pyproject_entry_points(self, folder):
        info = inspect(make_sdist(folder, sdist_members()))
        assert info.flow == EntryPointRef("hand_made.flow", "hand_made.flow:flow")
        assert info.model is None

    def test_dynamic_entry_points_refused(self, folder):
        members = sdist_members()
        members["hand_made-1.0/pyproject.toml"] = (
            b'[project]\nname = "hand-made"\ndynamic = ["entry-points"]\n'
        )
        with pytest.raises(PackageInspectionError, match="dynamic"):
            inspect(make_sdist(folder, members))

    def test_entry_point_that_names_no_package(self, folder):
        wheel = make_wheel(folder, entry_points="[orchestration]\nmy-model.flow = my_model.flow:flow\n")
        with pytest.raises(
            PackageInspectionError, match="'my-model.flow' does not name an importable package"
        ):
            inspect(wheel)

    def test_other_groups_do_not_count(self, folder):
        eps = "[console_scripts]\nhand_made.flow = hand_made.cli:main\n"
        with pytest.raises(NoFlowFoundInPackageError):
            inspect(make_wheel(folder, entry_points=eps))

    def test_wheel_entry_points_only_from_its_dist_info(self, folder):
        pyproject = (
            b'[project]\nname = "hand-made"\n[project.entry-points.orchestration]\n"hand_made.flow" = "x:f"\n'
        )
        files = {
            "pyproject.toml": pyproject,  # not installed metadata: installers ignore it in a wheel
            "vendored/other.egg-info/entry_points.txt": b"[orchestration]\nhand_made.flow = x:f\n",
        }
        with pytest.raises(NoFlowFoundInPackageError):
            inspect(make_wheel(folder, entry_points="", files=files))

    def test_versions_compare_as_versions(self, folder):
        wheel = make_wheel(folder, version="1.0.01", filename="hand_made-1.0.1-py3-none-any.whl")
        assert inspect(wheel).version == "1.0.01"  # the same version as 1.0.1, as installers see it

    def test_invalid_metadata_version(self, folder):
        wheel = make_wheel(folder, version="banana", filename="hand_made-1.0-py3-none-any.whl")
        with pytest.raises(PackageInspectionError, match="'banana' is not a valid version"):
            inspect(wheel)

    def test_zip_sdist(self, folder):
        path = folder / "hand_made-1.0.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for member, data in sdist_members().items():
                zf.writestr(member, data)
        info = inspect(path)
        assert (info.kind, info.name, info.import_name) == ("sdist", "hand-made", "hand_made")

    def test_missing_metadata(self, folder):
        members = sdist_members()
        del members["hand_made-1.0/PKG-INFO"]
        with pytest.raises(PackageInspectionError, match="has no PKG-INFO"):
            inspect(make_sdist(folder, members))

    def test_metadata_without_version(self, folder):
        members = sdist_members()
        members["hand_made-1.0/PKG-INFO"] = b"Metadata-Version: 2.1\nName: hand-made\n"
        with pytest.raises(PackageInspectionError, match="lacks Name or Version"):
            inspect(make_sdist(folder, members))

    @pytest.mark.parametrize(
        ("name", "says"),
        [("x-1.0.tar.gz", "not a readable .tar.gz"), ("x-1.0-py3-none-any.whl", "not a readable zip")],
    )
    def test_not_an_archive(self, folder, name, says):
        path = folder / name
        path.write_bytes(os.urandom(2048))
        with pytest.raises(PackageInspectionError, match=says):
            inspect(path)

    def test_corrupted_wheel_member(self, fixture_packages, folder):
        path = Path(
            shutil.copyfile(fixture_packages.my_model_wheel, folder / fixture_packages.my_model_wheel.name)
        )
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("my_model-0.1.0.dist-info/METADATA")
        data = bytearray(path.read_bytes())
        name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
        # 0xFF starts a deflate block of the reserved type 3: zlib fails, not a CRC check
        data[info.header_offset + 30 + name_len + extra_len] = 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(PackageInspectionError, match="not a readable zip"):
            inspect(path)

    def test_unknown_kind(self, folder):
        path = folder / "x-1.0.exe"
        path.write_bytes(b"MZ")
        with pytest.raises(PackageInspectionError, match="neither a wheel nor an sdist"):
            inspect(path)


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info


class TestMaliciousArchives:
    """Each archive is a valid package plus one bad member at the end: the whole archive is checked."""

    def test_path_traversal(self, tmp_path, folder):
        members = {**sdist_members(), "hand_made-1.0/../../evil.txt": b"pwned"}
        archive = make_sdist(folder, members)
        with pytest.raises(UnsafeArchiveError, match="outside the target directory") as info:
            inspect(archive)
        assert info.value.archive == archive.name
        assert "Nothing was extracted" in str(info.value)
        # extracted next to the archive this member would land in tmp_path
        assert not (tmp_path / "evil.txt").exists()
        assert sorted(p.name for p in folder.iterdir()) == [archive.name]

    def test_absolute_member(self, tmp_path, folder):
        target = tmp_path / "absolute-evil.txt"
        archive = make_sdist(folder, {**sdist_members(), str(target): b"pwned"})
        with pytest.raises(UnsafeArchiveError, match="outside the target directory"):
            inspect(archive)
        assert not target.exists()

    @pytest.mark.parametrize(
        ("member", "says"),
        [
            (_special("hand_made-1.0/passwd", tarfile.SYMTYPE, "/etc/passwd"), "link or special file"),
            (_special("hand_made-1.0/lib", tarfile.SYMTYPE, "../../"), "link or special file"),
            (_special("hand_made-1.0/passwd", tarfile.LNKTYPE, "/etc/passwd"), "link or special file"),
            (_special("hand_made-1.0/pipe", tarfile.FIFOTYPE), "link or special file"),
            (_special("hand_made-1.0/null", tarfile.CHRTYPE), "link or special file"),
            (_special("hand_made-1.0/disk", tarfile.BLKTYPE), "link or special file"),
        ],
        ids=["symlink-abs", "symlink-up", "hardlink", "fifo", "chardev", "blockdev"],
    )
    def test_links_and_special_files(self, tmp_path, folder, member, says):
        archive = make_sdist(folder, sdist_members(), extra=[member])
        with pytest.raises(UnsafeArchiveError, match=says):
            inspect(archive)
        assert sorted(p.name for p in folder.iterdir()) == [archive.name]

    def test_file_through_a_directory_symlink(self, tmp_path, folder):
        escape = _special("hand_made-1.0/out", tarfile.SYMTYPE, str(tmp_path))
        through = tarfile.TarInfo("hand_made-1.0/out/through-link.txt")
        through.size = 5
        archive = make_sdist(folder, sdist_members(), extra=[escape, through])
        with pytest.raises(UnsafeArchiveError):
            inspect(archive)
        assert not (tmp_path / "through-link.txt").exists()

    @pytest.mark.parametrize(
        "member", ["../evil.txt", "hand_made/../../evil.txt", "/evil.txt", "..\\evil.txt"]
    )
    def test_zip_traversal(self, tmp_path, folder, member):
        wheel = make_wheel(folder)
        with zipfile.ZipFile(wheel, "a") as zf:
            zf.writestr(zipfile.ZipInfo(member), b"pwned")
        with pytest.raises(UnsafeArchiveError, match="outside the target directory"):
            inspect(wheel)
        assert not (tmp_path / "evil.txt").exists() and not Path("/evil.txt").exists()

    def test_zip_symlink(self, folder):
        wheel = make_wheel(folder)
        link = zipfile.ZipInfo("hand_made/passwd")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        with zipfile.ZipFile(wheel, "a") as zf:
            zf.writestr(link, "/etc/passwd")
        with pytest.raises(UnsafeArchiveError, match="symbolic link"):
            inspect(wheel)

    def test_refused_archive_leaves_only_its_blob_in_the_store(self, tmp_path, folder, store):
        members = {**sdist_members(), "hand_made-1.0/../../../evil.txt": b"pwned"}
        artifact = store.put(parse_source(str(make_sdist(folder, members))))
        with pytest.raises(UnsafeArchiveError):
            inspect_archive(artifact.path, store.settings)
        assert files_under(store.root) == [f"blobs/{artifact.sha256}/{artifact.filename}"]
        assert files_under(tmp_path) == sorted(
            [f"archives/{artifact.filename}", f"lume-home/store/blobs/{artifact.sha256}/{artifact.filename}"]
        )

    def test_decompression_bomb(self, folder):
        bomb = make_tar_bomb(folder / "bomb-0.1.tar.gz", 300 * MiB)
        assert bomb.stat().st_size < 2 * MiB
        with pytest.raises(UnsafeArchiveError, match=f"expands to more than {50 * MiB} bytes"):
            inspect(bomb, max_expanded_bytes=50 * MiB)

    def test_zip_bomb(self, folder):
        wheel = make_wheel(folder, files={"hand_made/zeros.bin": b"\0" * (2 * MiB)})
        assert wheel.stat().st_size < 64 * 1024
        with pytest.raises(UnsafeArchiveError, match=f"expands to more than {MiB} bytes"):
            inspect(wheel, max_expanded_bytes=MiB)

    def test_too_many_members(self, folder):
        members = {**sdist_members(), **{f"hand_made-1.0/hand_made/m{i}.py": b"" for i in range(20)}}
        with pytest.raises(UnsafeArchiveError, match="more than 10 members"):
            inspect(make_sdist(folder, members), max_members=10)
        files = {f"hand_made/m{i}.py": b"" for i in range(20)}
        with pytest.raises(UnsafeArchiveError, match="more than 10 members"):
            inspect(make_wheel(folder, files=files), max_members=10)

    @pytest.mark.parametrize("kind", ["sdist", "wheel"])
    def test_oversized_metadata_member(self, folder, kind):
        padding = "Description: " + "x" * MiB + "\n"
        if kind == "sdist":
            members = sdist_members()
            members["hand_made-1.0/PKG-INFO"] += padding.encode()
            archive = make_sdist(folder, members)
        else:
            archive = make_wheel(folder, metadata_extra=padding)
        with pytest.raises(PackageInspectionError, match=f"larger than {MiB} bytes"):
            inspect(archive)

    def test_large_members_that_are_not_read_are_fine(self, folder):
        members = {**sdist_members(), "hand_made-1.0/hand_made/data.bin": b"\0" * (3 * MiB)}
        assert inspect(make_sdist(folder, members)).name == "hand-made"
