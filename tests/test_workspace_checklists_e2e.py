"""End to end in headless Chromium: export-control staff upload a filled-in checklist through the page's file input."""

from __future__ import annotations

from tests.test_checklists import fill
from tests.test_workspace_e2e import (  # noqa: F401 - the live server and browser fixtures
    _WIDEST,
    EC,
    By,
    WebDriverWait,
    _screenshot,
    _submit_and_wait_for_the_next_page,
    browser,
    live,
)
from tests.workspace_helpers import PASSWORD, fixture, login, make_user


def test_export_user_finds_the_deal_and_uploads_through_the_file_input(live, browser, tmp_path):  # noqa: F811
    svc = live.extensions["hrdd"]
    screening, _ = svc.screen_and_store(fixture("transaction_egypt_biometric.json"))
    make_user(live, "erin", role="export")
    # The workbook as downloaded from the page, filled in as in Excel.
    downloader = live.test_client()
    login(downloader, "erin")
    workbook = downloader.get(f"/workspace/checklists/{screening['id']}.xlsx").data
    path = tmp_path / "filled-checklist.xlsx"
    path.write_bytes(fill(workbook, {"past_misuse": "Yes"}))
    wait = WebDriverWait(browser, 10)

    browser.get(live.base_url + "/workspace/")
    browser.find_element(By.ID, "name").send_keys("erin")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    wait.until(EC.title_contains("Checklists"))
    assert browser.current_url.endswith("/workspace/checklists/")
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "header nav a")] == ["Checklists"]

    browser.find_element(By.ID, "find-q").send_keys("0067F000003pmdW")
    _submit_and_wait_for_the_next_page(browser, wait, browser.find_element(By.CSS_SELECTOR, "#find button"))
    assert browser.find_element(By.ID, "deal-screening").text == screening["id"]
    _screenshot(browser, "checklists-deal")

    browser.find_element(By.ID, "checklist-file").send_keys(str(path))
    _submit_and_wait_for_the_next_page(browser, wait, browser.find_element(By.CSS_SELECTOR, "#upload button"))
    result = browser.find_element(By.ID, "result")
    assert "Checklist recorded" in result.text and "filled-checklist.xlsx" in result.text
    assert browser.find_element(By.ID, "result-decision").text == "do not proceed"
    assert browser.find_element(By.ID, "result-gate").get_attribute("data-gate") == "block"
    assert "past_misuse" in browser.find_element(By.ID, "answers-recorded").text
    new = browser.find_element(By.ID, "new-screening").text
    _screenshot(browser, "checklists-uploaded")
    assert svc.store.latest_screening(screening["transaction_id"])["id"] == new
    refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not refused
    # On a narrow window the page (the menu, the forms, the deal's uploads) does not scroll sideways.
    browser.set_window_size(500, 900)
    for query in ("", f"?q={screening['transaction_id']}"):
        browser.get(live.base_url + "/workspace/checklists/" + query)
        width = browser.execute_script("return window.innerWidth")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width, \
            (query, browser.execute_script(_WIDEST))
