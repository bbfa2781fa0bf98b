#!/usr/bin/python3
"""Walks Moat's owner console in a real headless Chromium.

Reads six lines on stdin: the gateway's origin, the owner password, the id of a pending approval (a
hostile model's held call), the folder for screenshots, the code of a pending pairing request and the
ceilings to approve it with (`web=2 files=0`; the other domains keep the page's defaults). Logs in,
checks the overview, opens the approvals page, approves the held call with the page's own form, sees
the result in the conversation, approves the pairing request on the contacts page with those ceilings,
lowers the files domain on the trust page, filters the audit log to that change and exports it, opens
the vault page, and fails on any browser console error or Content-Security-Policy violation. Saves a PNG of each page.
Prints a JSON summary (the steps, and the new contact's ceilings as the page lists them); exits 1
with a message on the first failure.
"""

import json
import os
import sys
from urllib.parse import urlparse

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from browser_support import WAIT, chromium, fail, step, steps


def shot(driver, folder, name):
    """A PNG of the whole page at the window's width, no taller than its content."""
    width = driver.get_window_size()["width"]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(400, min(height + 20, 2000)))
    driver.save_screenshot(os.path.join(folder, name))


def approve(driver, wait, button, pending, what):
    """Clicks the Approve button `button`; the page that comes back says so and no longer shows `pending`."""
    driver.find_element(By.ID, button).click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "notice"), "Approved"))
    if driver.find_elements(By.ID, pending):
        fail("the approved {} is still pending".format(what), driver)


def console_problems(driver):
    """Every console error (a CSP violation is one) so far."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def main():
    origin = sys.stdin.readline().strip()
    password = sys.stdin.readline().rstrip("\n")
    approval = sys.stdin.readline().strip()
    shots = sys.stdin.readline().strip()
    code = sys.stdin.readline().strip()
    ceilings = dict(pair.split("=", 1) for pair in sys.stdin.readline().split())
    if not origin or not password or not approval or not shots or not code or not ceilings:
        fail("stdin must hold the origin, the password, the approval id, the screenshot folder, a pairing code"
             " and the ceilings")
    os.makedirs(shots, exist_ok=True)

    driver = chromium("--window-size=1000,800", "--hide-scrollbars")
    wait = WebDriverWait(driver, WAIT)
    try:
        # 1. A page without a session leads to the login page.
        driver.get(origin + "/approvals")
        wait.until(lambda d: urlparse(d.current_url).path == "/login")
        wait.until(EC.presence_of_element_located((By.ID, "login-form")))
        shot(driver, shots, "login.png")
        step("login page")
        driver.find_element(By.ID, "login-username").send_keys("owner")
        driver.find_element(By.ID, "login-password").send_keys(password)
        driver.find_element(By.ID, "login-submit").click()

        # 2. The overview: posture, one pending approval, the activity chart.
        wait.until(EC.text_to_be_present_in_element((By.ID, "owner-name"), "owner"))
        if urlparse(driver.current_url).path != "/":
            fail("after login the browser is not on the overview", driver)
        if driver.find_element(By.ID, "pending-count").text != "1":
            fail("the overview does not count the one pending approval", driver)
        if driver.find_element(By.ID, "pairing-count").text != "1":
            fail("the overview does not count the one pairing request", driver)
        driver.find_element(By.ID, "activity")
        if not driver.find_elements(By.CSS_SELECTOR, "#posture li"):
            fail("the overview shows no posture check", driver)
        shot(driver, shots, "overview.png")
        step("overview")

        # 3. Keyboard: the first link of the navigation takes focus with Tab.
        driver.find_element(By.TAG_NAME, "body").send_keys("\t")
        step("keyboard focus")

        # 4. The approvals page shows the held call; approve it with the page's form.
        driver.find_element(By.CSS_SELECTOR, "nav a[href='/approvals']").click()
        wait.until(EC.presence_of_element_located((By.ID, "approve-" + approval)))
        article = driver.find_element(By.ID, "approval-" + approval)
        if "read_file" not in article.text or "notes.txt" not in article.text:
            fail("the approval does not show the exact call", driver)
        shot(driver, shots, "approvals.png")
        step("approvals page")
        approve(driver, wait, "approve-" + approval, "approve-" + approval, "call")
        shot(driver, shots, "approvals-decided.png")
        step("approved")

        # 4b. The conversation shows the approved call's result; the turn that read it is marked tainted.
        driver.find_element(By.CSS_SELECTOR, "nav a[href='/conversations']").click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table.conversations a"))).click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "article.turn")))
        if "groceries" not in driver.find_element(By.TAG_NAME, "main").text:
            fail("the conversation does not show the approved call's result", driver)
        if not driver.find_elements(By.CSS_SELECTOR, "article.turn.tainted"):
            fail("the turn that read the file is not marked tainted", driver)
        shot(driver, shots, "conversation.png")
        step("conversation")

        # 4c. The contacts page shows the pending pairing request; approve it with the chosen ceilings.
        driver.find_element(By.CSS_SELECTOR, "nav a[href='/contacts']").click()
        wait.until(EC.presence_of_element_located((By.ID, "approve-pairing-" + code)))
        if code not in driver.find_element(By.ID, "pairing-" + code).text:
            fail("the pairing request does not show its code", driver)
        if driver.find_elements(By.CSS_SELECTOR, "#contacts tbody tr"):
            fail("a contact exists before the pairing request was approved", driver)
        for domain, level in ceilings.items():
            Select(driver.find_element(By.ID, "ceiling-{}-{}".format(code, domain))).select_by_value(level)
        shot(driver, shots, "contacts.png")
        step("pairing request shown")
        approve(driver, wait, "approve-pairing-" + code, "pairing-" + code, "pairing request")
        contacts = driver.find_elements(By.CSS_SELECTOR, "#contacts tbody tr")
        if len(contacts) != 1:
            fail("the contacts page lists {} contacts, not the one approved".format(len(contacts)), driver)
        listed = contacts[0].find_element(By.CSS_SELECTOR, "td.ceilings-list").text
        for domain, level in ceilings.items():
            if "{} {}".format(domain, level) not in listed.split(", "):
                fail("the contact's ceilings are not the chosen ones: " + listed, driver)
        shot(driver, shots, "contacts-approved.png")
        step("pairing approved with ceilings")

        # 4d. Lower the files domain from the trust page, with a reason.
        driver.find_element(By.CSS_SELECTOR, "nav a[href='/trust']").click()
        wait.until(EC.presence_of_element_located((By.ID, "level-files")))
        Select(driver.find_element(By.ID, "level-files")).select_by_value("1")
        driver.find_element(By.ID, "reason-files").send_keys("lowered from the console")
        driver.find_element(By.ID, "set-files").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "notice"), "files 2 \u2192 1"))
        shot(driver, shots, "trust.png")
        step("trust lowered")

        # 4e. The audit page: filter to the trust change just made, then export what the filter selects.
        driver.find_element(By.CSS_SELECTOR, "nav a[href='/audit']").click()
        wait.until(EC.presence_of_element_located((By.ID, "filter-action")))
        driver.find_element(By.ID, "filter-action").send_keys("trust.*")
        driver.find_element(By.ID, "filter-actor").send_keys("owner")
        driver.find_element(By.ID, "filter-apply").click()
        wait.until(lambda d: "action=trust.*" in d.current_url.replace("%2A", "*"))
        rows = driver.find_elements(By.CSS_SELECTOR, "#audit-entries tbody tr")
        actions = [row.find_elements(By.TAG_NAME, "td")[3].text for row in rows]
        if not actions or any(not action.startswith("trust.") for action in actions):
            fail("the audit filter did not narrow the list to trust entries: {}".format(actions), driver)
        shot(driver, shots, "audit.png")
        href = driver.find_element(By.ID, "export-csv").get_attribute("href")
        exported = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => r.text().then(t => done([r.status,"
            " r.headers.get('content-disposition'), t])));", href)
        status, disposition, text = exported
        lines = [line for line in text.split("\n") if line]
        if status != 200 or not disposition or not disposition.startswith("attachment"):
            fail("the CSV export is not a download: {} {}".format(status, disposition), driver)
        if len(lines) != len(rows) + 1 or any(line.split(",")[3][:6] != "trust." for line in lines[1:]):
            fail("the CSV export does not hold exactly the filtered entries", driver)
        step("audit filtered and exported")

        # 4f. The vault page: names, policies and last use, never a value.
        driver.find_element(By.CSS_SELECTOR, "nav a[href='/vault']").click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#secrets td.last-use")))
        uses = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#secrets td.last-use")]
        if not any(use.endswith(" by http_request to 127.0.0.1") for use in uses):
            fail("the vault page does not show the secret's last use: {}".format(uses), driver)
        shot(driver, shots, "vault.png")
        step("vault")

        # 5. A phone-sized overview.
        driver.set_window_size(390, 844)
        driver.get(origin + "/")
        wait.until(EC.presence_of_element_located((By.ID, "pending-count")))
        if driver.find_element(By.ID, "pending-count").text != "0":
            fail("the overview still counts the approved call", driver)
        if driver.find_element(By.ID, "pairing-count").text != "0":
            fail("the overview still counts the approved pairing request", driver)
        width = driver.execute_script("return document.documentElement.scrollWidth")
        if width > 390:
            fail("the overview is wider than a phone's screen ({} px)".format(width), driver)
        shot(driver, shots, "overview-phone.png")
        step("phone layout")

        # 6. No script error and no CSP violation on any page.
        problems = console_problems(driver)
        if problems:
            fail("browser console errors: " + " | ".join(problems), driver)
        step("console clean")
        print(json.dumps({"ok": True, "steps": steps, "ceilings": listed}))
    except Exception as error:  # a timeout or a missing element: say where
        fail("{}: {}".format(type(error).__name__, str(error).splitlines()[0] if str(error) else ""), driver)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
