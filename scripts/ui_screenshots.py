"""Screenshots of the web UI's main pages for the README: docs/screenshots/*.png.

Starts `lume-services serve` on a throwaway SQLite registry filled with a few
example models, signs in with a write token in headless Chromium (1280x800)
and saves each page. Run `make screenshots` after changing a page.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from apiserver import start_api_server  # noqa: E402
from browser import start_chromium  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from lume_services import migrations  # noqa: E402
from lume_services.services.models.db.db import ModelDB, ModelDBConfig  # noqa: E402
from lume_services.services.models.service import ModelDBService  # noqa: E402
from lume_services.variables.types import Variable, Variables  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
SHA = "9f2c51d0e4b7a8c3f6e1d2b5a4c3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5"


def populate(service: ModelDBService) -> tuple[int, int]:
    places = [("lcls", "cu_hxr", "Injector surrogate: bunch length and emittance from the injector settings"),
              ("lcls", "cu_hxr", "Undulator taper optimiser"), ("lcls", "sc_sxr", "Superconducting linac surrogate"),
              ("facet", "f2", "FACET-II plasma wakefield surrogate")]  # fmt: skip
    ids = [service.with_actor("jgarrahan").store_model(author="Jackie Garrahan", laboratory="slac", facility=f,
                                                       beampath=b, description=d) for f, b, d in places]  # fmt: skip
    main = ids[0]
    service.with_actor("jgarrahan").set_model_tags(main, {"stage": "production", "repo": "github.com/slaclab/lcls-surrogates"})
    variables = Variables(inputs={"SOL1:solenoid_field": Variable(name="SOL1:solenoid_field", kind="scalar", default=0.47,
                                                                   range=(0.0, 0.5), unit="kG/m"),
                                  "CQ01:b1_gradient": Variable(name="CQ01:b1_gradient", kind="scalar", default=-0.01,
                                                               range=(-0.02, 0.02), unit="kG"),
                                  "distgen:t_dist:length:value": Variable(name="distgen:t_dist:length:value",
                                                                          kind="scalar", default=8.1, unit="ps",
                                                                          read_only=True)},
                          outputs={"sigma_z": Variable(name="sigma_z", kind="scalar", unit="mm"),
                                   "norm_emit_x": Variable(name="norm_emit_x", kind="scalar", unit="mm-mrad")},
                          source_file="model_config.yml", format="lume-model-2")  # fmt: skip
    deployments = []
    for n, who in enumerate(("jgarrahan", "cmayes", "operator-on-shift")):
        deployments.append(service.with_actor(who).store_deployment(
            model_id=main, version=f"1.{n}.0", source=f"https://pypi.slac.stanford.edu/injector_surrogate-1.{n}.0.tar.gz",
            sha256=SHA[n:] + SHA[:n], package_import_name="injector_surrogate", variables=variables,
            image=f"ghcr.io/slaclab/injector-surrogate:1.{n}.0"))  # fmt: skip
    for d, who, why in zip(deployments, ("jgarrahan", "cmayes", "operator-on-shift"),
                           ("first light", "retrained on the October scans", "rolled back after a bad shift")):
        service.with_actor(who).set_live(d, reason=why)
    service.with_actor("cmayes").set_live(deployments[1], reason="fix validated on the machine")
    for i in ids[1:3]:
        d = service.store_deployment(model_id=i, version="0.3.0", source="https://pypi.slac.stanford.edu/m-0.3.0.tar.gz",
                                     sha256=SHA, package_import_name="m")  # fmt: skip
        service.with_actor("operator-on-shift").set_live(d, reason="commissioning")
    run = service.with_actor("operator-on-shift").record_run(
        prefect_run_id="5f1c-example", model_id=main, deployment_id=deployments[1], flow_id="injector-flow",
        parameters={"SOL1:solenoid_field": 0.45})  # fmt: skip
    profile = [round(math.exp(-((i - 40) / 12) ** 2), 4) for i in range(81)]
    screen = [[round(math.exp(-((x - 32) / 10) ** 2 - ((y - 24) / 6) ** 2), 3) for x in range(64)] for y in range(48)]
    service.finish_run(run.run_id, state="completed", result={"sigma_z": 0.62, "norm_emit_x": 0.41,
                                                              "current_profile": profile, "screen": screen})  # fmt: skip
    return main, deployments[1]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/registry.db"
        db = ModelDB(ModelDBConfig(url=url))
        migrations.upgrade(db)
        service = ModelDBService(db)
        model, deployment = populate(service)
        token = service.create_token("cmayes", scope="write").token.get_secret_value()
        server = start_api_server(Path(tmp) / "server", url)
        driver = start_chromium()
        try:
            driver.get(server.url + "/sign-in")
            driver.save_screenshot(str(OUT / "sign-in.png"))
            driver.find_element(By.ID, "token").send_keys(token)
            driver.find_element(By.CSS_SELECTOR, "form[action='/sign-in'] button").click()
            for name, path in (("beamlines", "/"), ("beampath", "/beamline?laboratory=slac&facility=lcls&beampath=cu_hxr"),
                               ("model", f"/models/{model}"), ("deployment", f"/models/{model}/deployments/{deployment}"), ("run", "/runs/1")):  # fmt: skip
                driver.get(server.url + path)
                height = driver.execute_script("return document.documentElement.scrollHeight")
                driver.set_window_size(1280, max(800, min(height, 2400)))
                driver.save_screenshot(str(OUT / f"{name}.png"))
                driver.set_window_size(1280, 800)
                print(f"wrote {OUT / name}.png")
        finally:
            driver.quit()
            server.stop()


if __name__ == "__main__":
    main()
