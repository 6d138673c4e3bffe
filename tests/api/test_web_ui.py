"""The web UI in headless Chromium against the real server of each dialect (uvicorn; two workers off SQLite).

Sign-in, the beamlines and a beampath, search, a model page with its live
history, make-live with a concurrent change, request and approve by two
people, escaping of user text, and the refusals: a read-only token sees no
write button, and a form without its page's CSRF value is refused (403)
with nothing changed. The scope matrix of the pages is at the end.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from browser import IN_CI, start_chromium
from factories import deployment_fields, make_deployment, make_flow, make_model, make_project
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from lume_services.variables.types import Variable, Variables

XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


@pytest.fixture(scope="module")
def browser() -> Any:
    try:
        driver = start_chromium()
    except Exception as exc:  # noqa: BLE001 - a missing or broken browser is reported once, as itself
        if IN_CI:
            pytest.fail(f"headless Chromium did not start: {exc}", pytrace=False)
        pytest.skip(f"headless Chromium did not start: {exc}")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def web(browser: Any, api: httpx.Client, principals: Any) -> Any:
    """The browser, signed out, with helpers for this test's server."""
    browser.delete_all_cookies()
    return Web(browser, str(api.base_url).rstrip("/"), principals)


class Web:
    def __init__(self, driver: Any, base: str, principals: Any) -> None:
        self.driver, self.base, self.principals = driver, base, principals

    def open(self, path: str) -> Any:
        self.driver.get(self.base + path)
        return self.driver

    def submit(self, button: Any) -> None:
        """Click a form's button (or a link) and wait until the page it leads to has loaded."""
        self.driver.execute_script("window.__old_page = true")
        button.click()

        def loaded(driver: Any) -> bool:
            try:
                return driver.execute_script("return !window.__old_page && document.readyState === 'complete'")
            except WebDriverException:  # the old page went away mid-call
                return False

        WebDriverWait(self.driver, 30).until(loaded)

    def sign_in(self, who: str, then: str = "/") -> None:
        self.open("/sign-in?next=" + then)
        self.driver.find_element(By.ID, "token").send_keys(self.principals.tokens[who])
        self.submit(self.driver.find_element(By.CSS_SELECTOR, "form[action='/sign-in'] button"))

    def sign_out(self) -> None:
        self.submit(self.driver.find_element(By.CSS_SELECTOR, "form[action='/sign-out'] button"))

    def text(self, selector: str) -> str:
        return self.driver.find_element(By.CSS_SELECTOR, selector).text

    def message(self) -> str:
        return self.text("#message")

    def cookie(self) -> dict[str, str]:
        return {c["name"]: c["value"] for c in self.driver.get_cookies()}


def test_sign_in_then_beamlines_and_a_beampath(web: Web, service: Any) -> None:
    model = make_model(service, laboratory="slac", facility="lcls", beampath="cu_hxr")
    make_model(service, laboratory="slac", facility="facet", beampath="f2")
    live = make_deployment(service, model, version="1.2.0")
    service.with_actor("operator-on-shift").set_live(live, reason="commissioning")

    driver = web.open("/")
    assert driver.current_url.startswith(web.base + "/sign-in")  # reads need a token on this server
    driver.find_element(By.ID, "token").send_keys("lume_not-a-token")
    web.submit(driver.find_element(By.CSS_SELECTOR, "form[action='/sign-in'] button"))
    assert "not known" in web.message()
    assert "lume_session" not in web.cookie()

    web.sign_in("read")
    assert web.text("#signed-in-as") == "reader"
    session = next(c for c in driver.get_cookies() if c["name"] == "lume_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert web.principals.tokens["read"] not in driver.page_source
    assert driver.execute_script("return document.cookie") == ""  # nothing a script could read
    rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "table.beamlines tbody tr")]
    assert any(r.startswith("cu_hxr 1 1") for r in rows) and any(r.startswith("f2 1 0") for r in rows)
    assert [h.text for h in driver.find_elements(By.CSS_SELECTOR, "section.facility h2")] == [
        "slac · facet", "slac · lcls"]  # fmt: skip

    web.submit(driver.find_element(By.LINK_TEXT, "cu_hxr"))
    row = driver.find_element(By.CSS_SELECTOR, "table.models tbody tr").text
    assert "1.2.0" in row and "operator-on-shift" in row and "UTC" in row
    assert driver.find_element(By.CSS_SELECTOR, "table.models time").get_attribute("title").endswith("local")


def test_search_and_a_model_page_with_its_history_escaped(web: Web, service: Any) -> None:
    model = make_model(service, description=XSS, beampath="sc_diag")
    service.set_model_tags(model, {"stage": "production"})
    first, second = make_deployment(service, model, version="0.1.0"), make_deployment(service, model, version="0.2.0")
    service.with_actor("alice").set_live(first, reason="first light")
    service.with_actor("bob").set_live(second, reason="retrained <b>weights</b>")
    web.sign_in("read")

    driver = web.open("/models?q=sc_diag")
    assert [a.text for a in driver.find_elements(By.CSS_SELECTOR, "table.models tbody a")] == [str(model)]
    driver = web.open("/models?tag=stage%3Dproduction")
    links = driver.find_elements(By.CSS_SELECTOR, "table.models tbody a")
    assert [a.text for a in links] == [str(model)]

    web.submit(links[0])
    assert web.text("#description") == XSS  # shown as text
    assert driver.execute_script("return window.__xss") is None  # and never run
    assert "&lt;script&gt;" in driver.page_source
    assert web.text("#live-now").startswith("version 0.2.0")
    assert "is-live" in driver.find_element(By.ID, f"deployment-{second}").get_attribute("class")
    history = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "ol.timeline li")]
    assert len(history) == 2
    assert "version 0.2.0" in history[0] and "until now" in history[0] and "retrained <b>weights</b>" in history[0]
    assert "version 0.1.0" in history[1] and "ended by bob" in history[1] and "set by alice" in history[1]
    actions = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "table.audit tbody tr")]
    assert any("deployment.live_changed" in a and "bob" in a for a in actions)
    assert driver.find_elements(By.CSS_SELECTOR, "form[action$='/live'] button") == []  # read-only: no write button


def test_a_deployment_page_shows_its_variables_runs_and_a_composites_steps(web: Web, service: Any) -> None:
    model = make_model(service)
    inputs = {"energy": Variable(name="energy", kind="scalar", default=1.5, range=(0.0, 10.0), unit="GeV"),
              "charge": Variable(name="charge", kind="scalar", default=250.0, read_only=True, unit="pC")}  # fmt: skip
    variables = Variables(inputs=inputs, outputs={"sigma_x": Variable(name="sigma_x", kind="scalar", unit="mm")},
                          source_file="model.yml", format="lume-model-2")  # fmt: skip
    deployment = make_deployment(service, model, variables=variables)
    project = make_project(service)
    step = make_flow(service, deployment, project_name=project, flow_name="surrogate")
    run = service.with_actor("physicist").record_run(prefect_run_id="web-run-1", model_id=model,
                                                     deployment_id=deployment, flow_id=step, parameters={"energy": 2.0})  # fmt: skip
    service.finish_run(run.run_id, state="completed", result={"sigma_x": 0.125})
    composite = service.store_flow_of_flows(
        parent_flow_id="web-composite", flow_name="pipeline", project_name=project,
        composing_flows=[{"flow_id": step, "mapped_parameters": {"energy": "upstream.energy"}}, step],
        deployment=deployment_fields(model, package_import_name="lume_services.flows.composite"))  # fmt: skip
    composite_deployment = service.get_flow(flow_id=composite).deployment_id

    web.sign_in("read", then=f"/models/{model}")
    assert "physicist" in web.text(f"#run-{run.run_id}") and "0.125" in web.text(f"#run-{run.run_id}")
    row = web.text(f"#deployment-{deployment}")
    assert "surrogate" in row and project in row and "2 in, 1 out" in row  # its flow and variables
    web.submit(web.driver.find_element(By.LINK_TEXT, str(deployment)))
    rows = [r.text for r in web.driver.find_elements(By.CSS_SELECTOR, "table.variables tbody tr")]
    assert rows[0].split() == ["energy", "scalar", "1.5", "0.0", "to", "10.0", "GeV"]
    assert rows[1].split() == ["charge", "scalar", "250.0", "pC", "yes"] and rows[2].startswith("sigma_x")
    assert "completed" in web.text(f"#run-{run.run_id}") and '"energy": 2.0' in web.text(f"#run-{run.run_id}")
    web.open(f"/models/{model}/deployments/{composite_deployment}")
    steps = [li.text for li in web.driver.find_elements(By.CSS_SELECTOR, "ol.steps li")]
    assert len(steps) == 2 and all("surrogate" in s for s in steps) and "upstream.energy" in steps[0]


def test_the_run_form_comes_from_the_variables_and_checks_them_before_anything_runs(web: Web, service: Any) -> None:
    model = make_model(service)
    inputs = {"energy": Variable(name="energy", kind="scalar", default=1.5, range=(0.0, 10.0), unit="GeV"),
              "charge": Variable(name="charge", kind="scalar", default=250.0, read_only=True)}  # fmt: skip
    deployment = make_deployment(service, model, variables=Variables(inputs=inputs, source_file="m.yml",
                                                                     format="lume-model-2"))  # fmt: skip
    make_flow(service, deployment, project_name=make_project(service))
    web.sign_in("write", then=f"/models/{model}/deployments/{deployment}")
    driver = web.driver
    energy, charge = driver.find_elements(By.CSS_SELECTOR, "form.run-form input[type=number]")
    assert (energy.get_attribute("min"), energy.get_attribute("max"), energy.get_attribute("value")) == ("0.0", "10.0", "1.5")
    assert charge.get_attribute("readonly") is not None and charge.get_attribute("value") == "250.0"
    label = driver.find_element(By.CSS_SELECTOR, f"label[for='{energy.get_attribute('id')}']").text
    assert label == "energy (GeV), 0.0 to 10.0"

    form = re.search(r'name="csrf" value="([0-9a-f]+)"', driver.page_source).group(1)
    path = f"/models/{model}/deployments/{deployment}/runs"
    with httpx.Client(base_url=web.base, cookies={"lume_session": web.cookie()["lume_session"]}) as client:
        outside = client.post(path, data={"csrf": form, "in:energy": "12", "in:charge": "250.0"})
        assert outside.status_code == 422 and "energy" in outside.text and "10" in outside.text
        constant = client.post(path, data={"csrf": form, "in:charge": "100"})
        assert constant.status_code == 422 and "constant" in constant.text
        not_json = client.post(path, data={"csrf": form, "extra": "{oops"})
        assert not_json.status_code == 422 and "not JSON" in not_json.text
        twice = client.post(path, data={"csrf": form, "extra": '{"energy": 3}'})
        assert twice.status_code == 422 and "own fields" in twice.text
        good = client.post(path, data={"csrf": form, "in:energy": "2.5"})
        # this server has no Prefect server: it refuses to run anything itself
        assert good.status_code == 503 and "LUME_PREFECT__API_URL" in html.unescape(good.text)
        assert client.post(path, data={"in:energy": "2.5"}).status_code == 403  # no CSRF value
    assert service.list_runs(model_id=model).items == []  # nothing was submitted


def test_the_pages_fit_a_narrow_screen_and_every_field_has_a_label(web: Web, service: Any) -> None:
    model = make_model(service, description="a long description " * 12)
    for _ in range(3):
        service.set_live(make_deployment(service, model), reason="a reason that is rather long " * 5)
    web.sign_in("admin", then=f"/models/{model}")
    driver = web.driver
    try:
        driver.set_window_size(400, 800)
        for path in ("/", f"/models/{model}", "/models", "/admin/tokens"):
            web.open(path)
            overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            wide = driver.execute_script(
                "return [...document.querySelectorAll('body *')].filter(e => !e.closest('table') && e.getBoundingClientRect().right > "
                "window.innerWidth + 1).slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)")  # fmt: skip
            assert overflow <= 1, (path, overflow, wide)
            unlabelled = driver.execute_script(
                "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
                ".filter(e => !e.labels || e.labels.length === 0).map(e => e.name)")  # fmt: skip
            assert unlabelled == [], (path, unlabelled)
    finally:
        driver.set_window_size(1280, 800)


def test_a_runs_page_shows_numbers_plots_and_images_escaped(web: Web, service: Any) -> None:
    model = make_model(service)
    deployment = make_deployment(service, model)
    run = service.record_run(prefect_run_id="web-result", model_id=model, deployment_id=deployment, flow_id="f",
                             parameters={"energy": 2.0})  # fmt: skip
    image = [[x * y for x in range(30)] for y in range(20)]
    service.finish_run(run.run_id, state="completed",
                       result={"sigma_x": 0.125, XSS: 1.0, "profile": [0.0, 1.0, 4.0, 9.0], "screen": image})  # fmt: skip
    web.sign_in("read", then=f"/runs/{run.run_id}")
    driver = web.driver
    assert web.text("#run-state") == "completed"
    rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "table.result tbody tr")]
    assert rows == ["sigma_x 0.125", f"{XSS} 1.0"] and driver.execute_script("return window.__xss") is None
    captions = [f.text.split("\n")[0] for f in driver.find_elements(By.CSS_SELECTOR, "figure figcaption")]
    assert captions == ["profile", "screen"]
    assert len(driver.find_elements(By.CSS_SELECTOR, "figure svg polyline")) == 1
    assert len(driver.find_elements(By.CSS_SELECTOR, "figure svg.image rect")) == 20 * 30
    assert "20 x 30 values" in driver.page_source


def test_signing_in_and_making_live_work_from_the_keyboard_alone(web: Web, service: Any) -> None:
    model = make_model(service)
    deployment = make_deployment(service, model)
    driver = web.open(f"/sign-in?next=/models/{model}")
    focused = driver.switch_to.active_element
    for _ in range(12):  # Tab from the page's start to the token field
        if focused.get_attribute("id") == "token":
            break
        focused.send_keys(Keys.TAB)
        focused = driver.switch_to.active_element
    assert focused.get_attribute("id") == "token"
    driver.execute_script("window.__old_page = true")
    focused.send_keys(web.principals.tokens["write"], Keys.ENTER)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return !window.__old_page"))
    reason = driver.find_element(By.ID, f"reason-{deployment}")
    driver.execute_script("window.__old_page = true")
    reason.send_keys("from the keyboard", Keys.ENTER)  # Enter in a form's field submits it
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return !window.__old_page"))
    assert web.message() == "The deployment is live now."
    assert service.get_live_history(model)[-1].reason == "from the keyboard"


def test_make_live_refuses_a_change_made_meanwhile(web: Web, service: Any) -> None:
    model = make_model(service)
    first, second = make_deployment(service, model), make_deployment(service, model)
    web.sign_in("write", then=f"/models/{model}")
    driver = web.driver
    assert web.text("#live-now") == "nothing"

    service.with_actor("colleague").set_live(second)  # while the page is open
    row = driver.find_element(By.ID, f"deployment-{first}")
    row.find_element(By.NAME, "reason").send_keys("back to the known good one")
    web.submit(row.find_element(By.TAG_NAME, "button"))
    assert "409" not in driver.title and "live" in web.message().lower()
    assert "moved" in web.message() or "changed" in web.message()
    assert service.get_live_deployment(model).deployment_id == second  # nothing overwritten

    web.submit(driver.find_element(By.LINK_TEXT, "Back"))
    assert web.text("#live-now").startswith("version")  # the page shows the new state ...
    row = driver.find_element(By.ID, f"deployment-{first}")
    row.find_element(By.NAME, "reason").send_keys("back to the known good one")
    web.submit(row.find_element(By.TAG_NAME, "button"))  # ... and now the expectation holds
    assert web.message() == "The deployment is live now."
    assert service.get_live_deployment(model).deployment_id == first
    latest = service.get_live_history(model)[-1]
    assert (latest.set_by, latest.reason) == ("writer", "back to the known good one")


def test_request_and_approve_by_two_people(web: Web, service: Any) -> None:
    model = make_model(service)
    service.update_model(model, require_approval=True)
    deployment = make_deployment(service, model)
    web.sign_in("write", then=f"/models/{model}")
    row = web.driver.find_element(By.ID, f"deployment-{deployment}")
    row.find_element(By.NAME, "reason").send_keys("validated on the injector")
    web.submit(row.find_element(By.TAG_NAME, "button"))
    assert "another person must approve" in web.message()
    request = service.list_live_requests(model_id=model).items[0]
    assert "awaiting another person" in web.text(f"#request-{request.request_id}")  # no approving one's own
    web.sign_out()

    web.sign_in("admin", then=f"/models/{model}")
    web.submit(web.driver.find_element(By.CSS_SELECTOR, f"#request-{request.request_id} form[action$='/approve'] button"))
    assert web.message() == "Approved: the deployment is live now."
    interval = service.get_live_history(model)[-1]
    assert (interval.deployment_id, interval.set_by, interval.approved_by) == (deployment, "writer", "admin")
    assert "approved by admin" in web.text("ol.timeline li")


def test_a_form_without_its_csrf_value_is_refused_and_changes_nothing(web: Web, service: Any) -> None:
    model = make_model(service)
    deployment = make_deployment(service, model)
    web.sign_in("write", then=f"/models/{model}")
    cookies = web.cookie()
    page = web.driver.page_source
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    form = {"deployment_id": str(deployment), "expected_live": "none"}
    with httpx.Client(base_url=web.base, cookies={"lume_session": cookies["lume_session"]}) as client:
        for forged in ({}, {"csrf": "0" * 64}, {"csrf": csrf[:-1]}):  # a page of another site cannot know it
            answer = client.post(f"/models/{model}/live", data={**form, **forged})
            assert answer.status_code in (403, 422)
        assert client.post(f"/models/{model}/live", data={**form, "csrf": "0" * 64}).status_code == 403
        assert service.get_deployment(deployment_id=deployment).is_live is False
        assert client.post(f"/models/{model}/live", data={**form, "csrf": csrf}).status_code == 303  # the page's own
    assert service.get_deployment(deployment_id=deployment).is_live is True


def test_a_read_only_session_cannot_post_even_with_its_csrf_value(web: Web, service: Any) -> None:
    model = make_model(service)
    deployment = make_deployment(service, model)
    web.sign_in("read", then=f"/models/{model}")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', web.driver.page_source).group(1)  # the sign-out form's
    with httpx.Client(base_url=web.base, cookies={"lume_session": web.cookie()["lume_session"]}) as client:
        answer = client.post(f"/models/{model}/live", data={"deployment_id": str(deployment),
                                                          "expected_live": "none", "csrf": csrf})  # fmt: skip
    assert answer.status_code == 403 and "scope 'read'" in html.unescape(answer.text)
    assert service.get_deployment(deployment_id=deployment).is_live is False


def test_signing_out_or_revoking_ends_the_session_at_once(web: Web, service: Any) -> None:
    web.sign_in("write")
    session = web.cookie()["lume_session"]
    with httpx.Client(base_url=web.base, cookies={"lume_session": session}) as client:
        assert client.get("/").status_code == 200
        service.revoke_token("writer")
        gone = client.get("/", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/sign-in")
    web.sign_in("admin")
    session = web.cookie()["lume_session"]
    web.sign_out()
    assert "lume_session" not in web.cookie()
    with httpx.Client(base_url=web.base, cookies={"lume_session": session}) as client:
        assert client.get("/", follow_redirects=False).status_code == 303  # the old cookie is worthless


# -- every page against every principal --------------------------------------------------------

KINDS = ("anonymous", "read", "write_other", "write", "admin", "revoked", "expired")


@contextmanager
def _session(base: str, token: Any) -> Iterator[httpx.Client]:
    """A client signed in through the form with ``token`` (None: not signed in)."""
    with httpx.Client(base_url=base) as client:
        if token is not None:
            form = client.get("/sign-in")
            check = re.search(r'name="check" value="([^"]+)"', form.text).group(1)
            client.post("/sign-in", data={"token": token, "check": check, "next": "/"})
        yield client


def test_every_page_and_form_against_every_principal(api: httpx.Client, principals: Any, service: Any) -> None:
    """Pages: 200 for every signed-in token, sign-in for the rest; make-live: write and admin only."""
    model = make_model(service, laboratory="slac", facility="lcls", beampath="cu_hxr")
    base = str(api.base_url).rstrip("/")
    for kind in KINDS:
        deployment = make_deployment(service, model)
        with _session(base, principals.tokens[kind]) as client:
            signed_in = "lume_session" in client.cookies
            assert signed_in == (kind in ("read", "write_other", "write", "admin")), kind
            run = service.record_run(prefect_run_id=f"matrix-{kind}", model_id=model, deployment_id=deployment,
                                     flow_id="f", parameters={})  # fmt: skip
            for path in ("/", "/beamline?laboratory=slac&facility=lcls&beampath=cu_hxr", "/models", f"/models/{model}",
                         f"/models/{model}/deployments/{deployment}", f"/runs/{run.run_id}"):  # fmt: skip
                answer = client.get(path, follow_redirects=False)
                if signed_in:
                    assert answer.status_code == 200, (kind, path)
                    assert answer.headers["content-security-policy"].startswith("default-src 'self'")
                    assert answer.headers["x-frame-options"] == "DENY"
                else:
                    assert answer.status_code == 303 and answer.headers["location"].startswith("/sign-in"), kind
            page = client.get(f"/models/{model}").text if signed_in else ""
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
            live = [d.deployment_id for d in service.get_deployments(model_id=model) if d.is_live]
            expected = live[0] if live else None
            form = {"deployment_id": str(deployment), "expected_live": str(expected or "none"),
                    "csrf": csrf.group(1) if csrf else ""}  # fmt: skip
            answer = client.post(f"/models/{model}/live", data=form, follow_redirects=False)
            status = {"write": 303, "admin": 303}.get(kind, 403 if signed_in else 401)
            assert answer.status_code == status, (kind, answer.status_code, html.unescape(answer.text)[-600:])
            assert service.get_deployment(deployment_id=deployment).is_live is (status == 303)
            assert principals.tokens[kind] is None or principals.tokens[kind] not in answer.text


# -- the administrator's pages -------------------------------------------------------------------


def test_an_admin_creates_a_token_shown_once_and_revokes_it(web: Web, service: Any) -> None:
    web.sign_in("admin", then="/admin/tokens")
    driver = web.driver
    driver.find_element(By.ID, "name").send_keys("new-operator")
    driver.find_element(By.CSS_SELECTOR, "#scope option[value='write']").click()
    web.submit(driver.find_element(By.CSS_SELECTOR, "form[action='/admin/tokens'] button"))
    token = driver.find_element(By.ID, "created-token").get_attribute("value")
    assert token.startswith("lume_") and service.authenticate(token).scope == "write"
    assert service.list_audit_events(action="token.*").items[-1].actor == "admin"  # audited as the admin
    web.open("/admin/tokens")
    assert token not in driver.page_source and driver.find_elements(By.ID, "created-token") == []  # never again

    with _session(web.base, token) as operator:
        assert operator.get("/").status_code == 200
        web.submit(driver.find_element(By.XPATH, "//button[text()='Revoke new-operator']"))
        assert service.list_tokens(include_revoked=True)[-1].revoked is not None
        assert operator.get("/", follow_redirects=False).status_code == 303  # its session ended with it


def test_an_admin_adds_a_webhook_sees_its_deliveries_and_replays_one(web: Web, service: Any) -> None:
    model = make_model(service)
    web.sign_in("admin", then="/admin/webhooks")
    driver = web.driver
    driver.find_element(By.ID, "url").send_keys("https://127.0.0.1/hook")  # an internal address
    web.submit(driver.find_element(By.CSS_SELECTOR, "form[action='/admin/webhooks'] button"))
    assert "127.0.0.1" in web.message() and service.list_webhooks() == []
    web.open("/admin/webhooks")
    driver.find_element(By.ID, "url").send_keys("https://93.184.215.14/hook")
    driver.find_element(By.ID, "model_id").send_keys(str(model))
    web.submit(driver.find_element(By.CSS_SELECTOR, "form[action='/admin/webhooks'] button"))
    assert len(driver.find_element(By.ID, "created-secret").get_attribute("value")) >= 32
    [hook] = service.list_webhooks()
    assert hook.model_id == model and hook.event_types == ["deployment.live_changed"]

    service.set_live(make_deployment(service, model))
    service.derive_deliveries()
    web.open(f"/admin/webhooks/{hook.webhook_id}")
    [row] = driver.find_elements(By.CSS_SELECTOR, "table.deliveries tbody tr")
    assert "deployment.live_changed" in row.text
    web.submit(row.find_element(By.TAG_NAME, "button"))
    assert web.message() == "The delivery is queued again."
    assert len(service.list_deliveries(webhook_id=hook.webhook_id).items) == 2


def test_the_admin_pages_against_every_principal(api: httpx.Client, principals: Any, service: Any) -> None:
    base = str(api.base_url).rstrip("/")
    for kind in KINDS:
        with _session(base, principals.tokens[kind]) as client:
            signed_in = "lume_session" in client.cookies
            for path in ("/admin/tokens", "/admin/webhooks"):
                status = client.get(path, follow_redirects=False).status_code
                assert status == {"admin": 200}.get(kind, 403 if signed_in else 303), (kind, path, status)
            page = client.get("/").text if signed_in else ""
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
            form = {"csrf": csrf.group(1) if csrf else "", "name": f"made-by-{kind}", "scope": "read"}
            status = client.post("/admin/tokens", data=form, follow_redirects=False).status_code
            assert status == {"admin": 201}.get(kind, 403 if signed_in else 401), (kind, status)
            made = [t.name for t in service.list_tokens()]
            assert (f"made-by-{kind}" in made) is (kind == "admin")


# (method, path template) -> (scope needed, the path for this principal's objects, the form); every UI route
RANK = {"public": 0, "read": 1, "write": 2, "admin": 3}
GRANTED = {"anonymous": -1, "revoked": -1, "expired": -1, "read": 1, "write_other": 2, "write": 2, "admin": 3}


def ui_routes(o: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str, dict[str, str]]]:
    m, d = o["model"], o["deployment"]
    return {
        ("GET", "/ui/static/{name}"): ("public", "/ui/static/ui.css", {}),
        ("GET", "/sign-in"): ("public", "/sign-in", {}),
        ("GET", "/"): ("read", "/", {}),
        ("GET", "/beamline"): ("read", "/beamline?laboratory=slac&facility=lcls&beampath=cu_hxr", {}),
        ("GET", "/models"): ("read", "/models?q=lcls", {}),
        ("GET", "/models/{model_id}"): ("read", f"/models/{m}", {}),
        ("GET", "/models/{model_id}/deployments/{deployment_id}"): ("read", f"/models/{m}/deployments/{d}", {}),
        ("GET", "/runs/{run_id}"): ("read", f"/runs/{o['run']}", {}),
        ("POST", "/models/{model_id}/live"): ("write", f"/models/{m}/live",
                                              {"deployment_id": str(d), "expected_live": "none"}),
        ("POST", "/models/{model_id}/live-requests"): (
            "write", f"/models/{o['protected']}/live-requests",
            {"deployment_id": str(o["candidate"]), "expected_live": "none", "reason": "validated"}),
        ("POST", "/live-requests/{request_id}/{decision}"): ("write", f"/live-requests/{o['request']}/reject",
                                                             {"reason": "not yet"}),
        ("POST", "/models/{model_id}/deployments/{deployment_id}/runs"): (
            "write", f"/models/{m}/deployments/{d}/runs", {"extra": '{"x": 1}'}),
        ("GET", "/admin/tokens"): ("admin", "/admin/tokens", {}),
        ("POST", "/admin/tokens"): ("admin", "/admin/tokens", {"name": o["new_token"], "scope": "read"}),
        ("POST", "/admin/tokens/{name}/revoke"): ("admin", f"/admin/tokens/{o['victim']}/revoke", {}),
        ("GET", "/admin/webhooks"): ("admin", "/admin/webhooks", {}),
        ("GET", "/admin/webhooks/{webhook_id}"): ("admin", f"/admin/webhooks/{o['webhook']}", {}),
        ("POST", "/admin/webhooks"): ("admin", "/admin/webhooks",
                                     {"url": "https://93.184.215.14/hook", "event_types": "model.created"}),
        ("POST", "/admin/deliveries/{delivery_id}/replay"): ("admin", f"/admin/deliveries/{o['delivery']}/replay", {}),
        ("POST", "/admin/webhooks/{webhook_id}/remove"): ("admin", f"/admin/webhooks/{o['webhook']}/remove", {}),
        ("POST", "/sign-out"): ("read", "/sign-out", {}),  # last: it ends the session
    }  # fmt: skip


def objects_for(service: Any, kind: str) -> dict[str, Any]:
    """Fresh objects for one principal's round, so that each of its changes can succeed."""
    model = make_model(service, laboratory="slac", facility="lcls", beampath="cu_hxr")
    deployment = make_deployment(service, model)
    make_flow(service, deployment, project_name=make_project(service))
    protected = make_model(service)
    service.update_model(protected, require_approval=True)
    pending, candidate = make_deployment(service, protected), make_deployment(service, protected)
    request = service.with_actor("someone-else").request_live(pending, reason="needs review").request_id
    run = service.record_run(prefect_run_id=f"ui-matrix-{kind}", model_id=model, deployment_id=deployment,
                             flow_id="f", parameters={}).run_id  # fmt: skip
    webhook = service.add_webhook("https://93.184.215.14/hook", event_types=["*"]).webhook.webhook_id
    make_model(service)  # an event for the webhook
    service.derive_deliveries()
    delivery = service.list_deliveries(webhook_id=webhook).items[0].delivery_id
    service.create_token(f"victim-{kind}", scope="read")
    return dict(model=model, deployment=deployment, protected=protected, candidate=candidate, request=request,
                run=run, webhook=webhook, delivery=delivery, victim=f"victim-{kind}", new_token=f"made-{kind}")  # fmt: skip


def test_every_ui_route_against_every_principal(api: httpx.Client, principals: Any, service: Any) -> None:
    """A principal below a route's scope gets sign-in (GET) or 401, or 403; one with it never does, nor a 5xx
    but the run form's 503 (this server has no Prefect). The table must name every route of the UI."""
    from lume_services.ui.site import ui_router

    served = {(method, r.path) for r in ui_router().routes for method in r.methods}
    assert served == set(ui_routes(objects_for(service, "table"))) | {("POST", "/sign-in")}  # sign-in: its own tests
    base = str(api.base_url).rstrip("/")
    for kind in KINDS:
        table = ui_routes(objects_for(service, kind))
        with _session(base, principals.tokens[kind]) as client:
            signed_in = "lume_session" in client.cookies
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/").text) if signed_in else None
            for (method, template), (needed, path, form) in table.items():
                if method == "GET":
                    status = client.get(path, follow_redirects=False).status_code
                else:
                    data = {**form, "csrf": csrf.group(1) if csrf else ""}
                    status = client.post(path, data=data, follow_redirects=False).status_code
                allowed = GRANTED[kind] >= RANK[needed] and not (kind == "write_other" and needed == "write")
                if allowed:
                    expected = {"/models/{model_id}/deployments/{deployment_id}/runs": {503}}.get(
                        template, {200, 201, 303})  # fmt: skip
                elif needed == "public":
                    expected = {200}
                elif not signed_in:
                    expected = {303} if method == "GET" else {401}
                else:
                    expected = {403}
                assert status in expected, (kind, method, template, status, path)


def test_the_admin_forms_refuse_bad_input_and_store_nothing(api: httpx.Client, principals: Any, service: Any) -> None:
    base = str(api.base_url).rstrip("/")
    with _session(base, principals.tokens["admin"]) as client:
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/admin/tokens").text).group(1)
        tokens_before, hooks_before = service.list_tokens(include_revoked=True), service.list_webhooks()
        for form, says in (({"name": "ok-name", "scope": "read", "expires_in_days": "0"}, "expires_in_days"),
                           ({"name": "ok-name", "scope": "read", "expires_in_days": "ten"}, "expires_in_days"),
                           ({"name": "two words", "scope": "read"}, "two words"),
                           ({"name": "ok-name", "scope": "root"}, "root"),
                           ({"name": "ok-name", "scope": "write", "project_name": "no-such-project"}, "no-such-project")):  # fmt: skip
            answer = client.post("/admin/tokens", data={**form, "csrf": csrf})
            assert answer.status_code in (404, 422) and says in html.unescape(answer.text), (form, answer.status_code)
        for form, says in (({"url": "https://93.184.215.14/h", "event_types": "*", "model_id": "x1"}, "model_id"),
                           ({"url": "ftp://93.184.215.14/h", "event_types": "*"}, "ftp"),
                           ({"url": "https://93.184.215.14/h", "event_types": "bogus.type"}, "bogus")):  # fmt: skip
            answer = client.post("/admin/webhooks", data={**form, "csrf": csrf})
            assert answer.status_code == 422 and says in html.unescape(answer.text), (form, answer.status_code)
        assert client.post("/admin/tokens/nobody/revoke", data={"csrf": csrf}).status_code == 404
    assert service.list_tokens(include_revoked=True) == tokens_before and service.list_webhooks() == hooks_before
