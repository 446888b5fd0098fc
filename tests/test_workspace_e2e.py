"""End to end in headless Chromium against a live server: a reviewer's case and a reporter's grievance."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.workspace_helpers import PASSWORD, case_of, fixture, make_user

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HERE = Path(__file__).parent

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def live(app_config):
    """The app on a real HTTP server thread, with a stand-in restricted-party list plugin."""
    from werkzeug.serving import make_server

    from server import create_app
    app = create_app({**app_config, "HRDD_PLUGINS_DIR": str(HERE / "e2e_plugins"),
                      "HRDD_SESSION_COOKIE_SECURE": False})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.base_url = f"http://127.0.0.1:{server.server_port}"
    yield app
    server.shutdown()
    thread.join(timeout=10)
    app.extensions["hrdd"].store.engine.dispose()


@pytest.fixture
def browser(tmp_path):
    """Headless Debian Chromium driven by Selenium through chromedriver, with a fresh profile."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # Content Security Policy reports
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def _screenshot(driver, name: str) -> None:
    """Save a full-page screenshot when HRDD_SCREENSHOTS_DIR is set (used to refresh docs/screenshots)."""
    target = os.environ.get("HRDD_SCREENSHOTS_DIR")
    if not target:
        return
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(height + 40, 800), 4000))
    driver.execute_script("window.scrollTo(0, 0); document.activeElement && document.activeElement.blur()")
    driver.save_screenshot(str(Path(target) / f"{name}.png"))
    driver.set_window_size(1280, 1000)


def _seed(app) -> dict:
    """A realistic mix of screened deals; returns the escalated deal with a possible list match."""
    svc = app.extensions["hrdd"]
    body = fixture("transaction_egypt_biometric.json")
    deals = [("SA", "Presidency of State Security", "intrusion_software", "intelligence"),
             ("AE", "Abu Dhabi Police GHQ", "location_tracking", "law_enforcement"),
             ("VN", "Ministry of Public Security", "social_media_monitoring", "internal_security"),
             ("BR", "Prefeitura de Curitiba", "data_analytics", "civil_administration"),
             ("IN", "Delhi Metro Rail Corporation", "recording_devices", "critical_infrastructure"),
             ("NO", "Statens vegvesen", "data_storage", "civil_administration")]
    for n, (country, name, cap, sector) in enumerate(deals):
        svc.screen_and_store({**body, "reference": {"system": "salesforce", "object_type": "opportunity",
                                                     "object_id": f"SEED-{n}"},
                              "end_user": {"name": name, "country": country, "type": "government", "sector": sector},
                              "parties": [], "deployment_countries": [country],
                              "items": [{**body["items"][0], "sku": f"SKU-{n}", "capabilities": [cap]}]})
    svc.screen_and_store(fixture("transaction_norway_storage.json"))
    _backdate_some(svc)
    screening, _ = svc.screen_and_store(body)
    return screening


def _backdate_some(svc) -> None:
    """Spread earlier screenings over past months so the dashboard shows a history."""
    from datetime import UTC, datetime, timedelta

    from hrdd.tables import screenings
    base = fixture("transaction_norway_storage.json")
    for month in range(1, 7):
        for i in range(month % 3 + 1):
            stored, _ = svc.screen_and_store({**base, "reference": {"system": "hubspot", "object_type": "deal",
                                                                     "object_id": f"H-{month}-{i}"}})
            with svc.store.begin() as conn:
                conn.execute(screenings.update().where(screenings.c.id == stored["id"]).values(
                    created_at=datetime.now(UTC) - timedelta(days=30 * month + i)))


def _submit_and_wait_for_the_next_page(browser, wait, button) -> None:
    """Click a form's submit button and wait until the page it was on is gone.

    The case page already shows a flash message (the false positive's): waiting for the next one's text
    straight away could read the old page while Chromium replaced it ("Node with given id does not belong
    to the document").
    """
    # A mark on the old document's window: the next document starts without it. (Selenium's staleness_of
    # can itself fail with that inspector error when it asks about the element mid-navigation.)
    browser.execute_script("window.__hrddOldPage = true")
    button.click()

    def next_page_loaded(driver) -> bool:
        try:
            return driver.execute_script(
                "return !window.__hrddOldPage && document.readyState === 'complete'")
        except WebDriverException:  # the page is being replaced: ask again
            return False

    wait.until(next_page_loaded)


def test_reviewer_marks_a_false_positive_approves_with_conditions_and_the_gate_changes(live, browser):
    make_user(live)
    target = _seed(live)
    assert target["gate"] == "hold" and "RF-4.3" in [f["id"] for f in target["red_flags"]]
    wait = WebDriverWait(browser, 10)

    browser.get(live.base_url + "/workspace/")
    assert "/workspace/login" in browser.current_url
    browser.find_element(By.ID, "name").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    wait.until(EC.title_contains("Cases"))
    _screenshot(browser, "queue")

    browser.find_element(By.LINK_TEXT, "Directorate of Public Security").click()
    wait.until(EC.presence_of_element_located((By.ID, "gate")))
    case_id = browser.current_url.rstrip("/").rsplit("/", 1)[-1]
    assert browser.find_element(By.ID, "gate").get_attribute("data-gate") == "hold"
    assert "RF-4.3" in browser.find_element(By.ID, "flags").text
    _screenshot(browser, "case")

    browser.find_element(By.CSS_SELECTOR, "#matches details summary").click()
    browser.find_element(By.ID, "fp-reason-0").send_keys("Different company: Dubai trade licence 778812, no link to the listed FZE")
    _submit_and_wait_for_the_next_page(browser, wait, browser.find_element(By.CSS_SELECTOR,
                                                                           "#matches form button[type=submit]"))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".flash")))
    assert "false positive" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert "Dubai trade licence 778812" in browser.find_element(By.ID, "matches").text

    browser.find_element(By.ID, "dec-approve_with_conditions").click()
    browser.find_element(By.ID, "rationale").send_keys("Access control only; the list match was a false positive")
    browser.find_element(By.ID, "conditions").send_keys("Quarterly audit logs; no use at public gatherings")
    boxes = browser.find_elements(By.CSS_SELECTOR, "input[name=safeguards]")
    if boxes:
        boxes[0].click()
    _submit_and_wait_for_the_next_page(browser, wait, browser.find_element(By.ID, "submit-decision"))
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "Decision recorded"))
    assert browser.find_element(By.ID, "gate").get_attribute("data-gate") == "release_with_conditions"
    _screenshot(browser, "case-decided")
    assert "Approve with conditions" in browser.find_element(By.ID, "decisions").text

    svc = live.extensions["hrdd"]
    assert svc.gate_of(target["transaction_id"], svc.store.latest_screening(target["transaction_id"]))[0] \
        == "release_with_conditions"
    # The order arrives: the mark keeps the look-alike out, so the reviewer's decision still governs,
    # and the order waits only for the executed rider.
    order, _ = svc.screen_and_store({**fixture("transaction_egypt_biometric.json"), "stage": "order"})
    assert "RF-4.3" not in [f["id"] for f in order["red_flags"]]
    # The rider hold comes first (it is why the gate is held); the reviewer's decision still governs after it.
    assert order["gate"] == "hold" and order["hold_reasons"][-1].startswith("reviewer decision")
    assert all("rider" in reason for reason in order["hold_reasons"][:-1]) and len(order["hold_reasons"]) > 1
    _, contracts_key = svc.store.create_api_key("contracts-desk", "contracts")
    executed = live.test_client().post(
        f"/v1/transactions/{target['transaction_id']}/rider-executed",
        headers={"Authorization": f"Bearer {contracts_key}"},
        json={"executed_by": "Ministry legal office", "executed_at": datetime.now(UTC).isoformat()})
    assert executed.status_code == 201, executed.get_data(as_text=True)
    browser.get(live.base_url + f"/workspace/cases/{case_id}")
    assert browser.find_element(By.ID, "gate").get_attribute("data-gate") == "release_with_conditions"

    browser.get(live.base_url + "/workspace/dashboard")
    wait.until(EC.presence_of_element_located((By.ID, "chart-over-time")))
    assert browser.find_element(By.ID, "chart-country").is_displayed()
    _screenshot(browser, "dashboard")


def test_reporter_submits_a_grievance_and_follows_it_with_the_token(live, browser):
    wait = WebDriverWait(browser, 10)
    browser.get(live.base_url + "/grievances/")
    browser.find_element(By.ID, "subject_name").send_keys("Directorate of Public Security")
    browser.find_element(By.ID, "country").send_keys("Egypt")
    browser.find_element(By.ID, "product").send_keys("FaceFind Enterprise")
    browser.find_element(By.ID, "description").send_keys(
        "Face recognition cameras were used to identify people at a peaceful protest, who were then detained.")
    _screenshot(browser, "grievance-form")
    browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    token = wait.until(EC.presence_of_element_located((By.ID, "token"))).get_attribute("value")
    assert token.startswith("trk_")

    browser.get(live.base_url + "/grievances/status")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    status = wait.until(EC.presence_of_element_located((By.ID, "grievance-status")))
    assert status.text.startswith("Received")

    # A reviewer's public note reaches the reporter through the same token.
    from hrdd.workspace import grievances
    with live.extensions["hrdd"].store.begin() as conn:
        gid = grievances.listing(conn)[0][0]["id"]
        grievances.triage(conn, gid, "user:alice", status="investigating", credible=True,
                          public_note="We have asked the customer for its audit logs.")
    browser.get(live.base_url + "/grievances/status")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "grievance-status"), "Investigating"))
    assert "audit logs" in browser.find_element(By.CSS_SELECTOR, ".status-card").text


_WIDEST = """return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
  && !e.closest('.scroll')).slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));"""


def test_on_a_500_px_window_pages_do_not_scroll_sideways_and_tables_scroll_in_their_own_box(live, browser):
    make_user(live)
    target = _seed(live)
    browser.set_window_size(500, 900)
    browser.get(live.base_url + "/workspace/login")
    browser.find_element(By.ID, "name").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    WebDriverWait(browser, 10).until(EC.title_contains("Cases"))
    case_id = case_of(live, target["transaction_id"])["id"]
    for path in ("/workspace/", f"/workspace/cases/{case_id}", "/workspace/?status=bogus"):
        browser.get(live.base_url + path)
        width = browser.execute_script("return window.innerWidth")
        assert width <= 500
        scroll_width = browser.execute_script("return document.documentElement.scrollWidth")
        assert scroll_width <= width, (path, scroll_width, width, browser.execute_script(_WIDEST))
    # The queue's table is wider than the window: it scrolls inside its box, whose content is all there.
    browser.get(live.base_url + "/workspace/")
    box = browser.find_element(By.CSS_SELECTOR, ".scroll")
    assert browser.execute_script("return arguments[0].scrollWidth > arguments[0].clientWidth", box)


def test_a_decision_typed_as_the_session_ends_is_sent_after_signing_in_again(live, browser):
    import sqlalchemy as sa

    from hrdd.workspace.tables import case_decisions, workspace_sessions
    make_user(live)
    target = _seed(live)
    wait = WebDriverWait(browser, 10)
    browser.get(live.base_url + f"/workspace/cases/{case_of(live, target['transaction_id'])['id']}")
    browser.find_element(By.ID, "name").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    wait.until(EC.presence_of_element_located((By.ID, "rationale")))
    browser.find_element(By.ID, "dec-decline").click()
    rationale = "Biometric identification for a security service with a record of abuse: decline."
    browser.find_element(By.ID, "rationale").send_keys(rationale)
    store = live.extensions["hrdd"].store
    with store.begin() as conn:  # meanwhile the password was changed (or 8 hours went by)
        conn.execute(sa.delete(workspace_sessions))
    _submit_and_wait_for_the_next_page(browser, wait, browser.find_element(By.ID, "submit-decision"))
    assert "Sign in again" in browser.find_element(By.ID, "signed-out").text
    assert rationale in [t.get_attribute("value") for t in browser.find_elements(By.CSS_SELECTOR, "textarea.typed")]
    browser.find_element(By.ID, "name").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    _submit_and_wait_for_the_next_page(browser, wait, browser.find_element(By.CSS_SELECTOR, "form.stack button"))
    assert "not saved" in browser.find_element(By.ID, "resend-note").text
    _submit_and_wait_for_the_next_page(browser, wait, browser.find_element(By.CSS_SELECTOR, "#resend-form button"))
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "Decision recorded"))
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(case_decisions.c.rationale, case_decisions.c.outcome)).one() == (rationale, "decline")


def _sign_in(live, browser, wait) -> None:
    browser.get(live.base_url + "/workspace/login")
    browser.find_element(By.ID, "name").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    wait.until(EC.title_contains("Cases"))


def test_a_decision_on_a_page_the_deal_has_moved_on_from_is_refused_with_the_text_kept(live, browser):
    make_user(live)
    svc = live.extensions["hrdd"]
    body = fixture("transaction_egypt_biometric.json")
    shown, _ = svc.screen_and_store(body)
    wait = WebDriverWait(browser, 10)
    _sign_in(live, browser, wait)
    from tests.workspace_helpers import case_of
    case_id = case_of(live, shown["transaction_id"])["id"]
    browser.get(live.base_url + f"/workspace/cases/{case_id}")
    assert browser.find_element(By.ID, "shown-screening").text == shown["id"]

    # The CRM screens the deal again, with an interception gateway, while the page is open.
    newer, _ = svc.screen_and_store({**body, "items": [*body["items"], {
        "sku": "CI-9", "name": "LawfulTap Gateway", "capabilities": ["communications_interception"]}]})
    browser.find_element(By.ID, "dec-approve").click()
    browser.find_element(By.ID, "rationale").send_keys("Access control at ministry buildings only")
    _submit_and_wait_for_the_next_page(browser, wait, browser.find_element(By.ID, "submit-decision"))
    alert = wait.until(EC.presence_of_element_located((By.ID, "screening-changed")))
    assert "CI-9" in alert.text and "communications_interception" in alert.text and newer["id"] in alert.text
    assert browser.find_element(By.ID, "rationale").get_attribute("value") == "Access control at ministry buildings only"
    assert browser.find_element(By.ID, "dec-approve").is_selected()
    assert browser.find_element(By.ID, "gate").get_attribute("data-gate") == "hold"
    assert "No decision yet" in browser.find_element(By.ID, "decisions").text
    assert browser.find_element(By.ID, "shown-screening").text == newer["id"]
    assert "LawfulTap Gateway" in browser.find_element(By.ID, "transaction").text

    # Reviewed again on what the page shows now, the same decision is recorded on the newer screening.
    _submit_and_wait_for_the_next_page(browser, wait, browser.find_element(By.ID, "submit-decision"))
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "Decision recorded"))
    assert browser.find_element(By.ID, "gate").get_attribute("data-gate") == "release"
    assert f"on screening {newer['id']}" in browser.find_element(By.ID, "decisions").text


def test_another_site_cannot_frame_the_workspace_and_its_pages_work_under_the_policy(live, browser, tmp_path):
    make_user(live)
    _seed(live)
    browser.get(live.base_url + "/workspace/login")
    browser.find_element(By.ID, "name").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    WebDriverWait(browser, 10).until(EC.title_contains("Cases"))
    case_url = browser.find_element(By.LINK_TEXT, "Directorate of Public Security").get_attribute("href")
    for path in ("/workspace/", case_url, "/workspace/dashboard", "/workspace/reports/transparency",
                 "/workspace/grievances/", "/grievances/"):
        browser.get(path if path.startswith("http") else live.base_url + path)
        # The stylesheet applies (it sets no margin on the body; a browser's default is 8px).
        assert browser.execute_script("return getComputedStyle(document.body).margin") == "0px", path
    refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not refused, refused

    # Another site puts the case page, with its decision form, in a frame under its own buttons.
    (tmp_path / "trap.html").write_text(f'<iframe id="trap" src="{case_url}" width="900" height="700"></iframe>')
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    other_site = http.server.ThreadingHTTPServer(("localhost", 0), handler)
    threading.Thread(target=other_site.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://localhost:{other_site.server_port}/trap.html")
        WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")
        browser.switch_to.frame("trap")
        # Nothing of hrdd shows in it: not the case (the session cookie is not sent to a frame on another
        # site), and not the sign-in form it would be sent to instead, whose typed password another site's
        # overlay could capture by being clicked through.
        assert browser.find_elements(By.TAG_NAME, "form") == []
        assert "hrdd" not in browser.find_element(By.TAG_NAME, "body").text
    finally:
        browser.switch_to.default_content()
        other_site.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server for the other site's page, without a line on stderr per request."""

    def log_message(self, format, *args):  # noqa: A002 - the signature of the method it replaces
        """Say nothing."""
