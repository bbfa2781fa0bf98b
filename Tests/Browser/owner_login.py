#!/usr/bin/python3
"""Drives a real headless Chromium through Moat's owner pages.

Reads two lines on stdin: the setup link printed by `moat serve` and the owner password (neither
goes on the command line). Sets the owner up through the link, creates an API token on the dashboard,
logs out, fails a login with a wrong password, logs in again, and checks that the browser console
recorded no JavaScript error or Content-Security-Policy violation. Prints a JSON summary; exits 1 with
a message on the first failure.
"""

import json
import sys
from urllib.parse import urlparse

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from browser_support import WAIT, chromium, fail, step, steps

def main():
    link = sys.stdin.readline().strip()
    password = sys.stdin.readline().rstrip("\n")
    if not link or not password:
        fail("stdin must hold the setup link and the password, one per line")
    origin = "{0.scheme}://{0.netloc}".format(urlparse(link))

    driver = chromium()
    wait = WebDriverWait(driver, WAIT)
    try:
        # 1. Setup through the one-time link.
        driver.get(link)
        wait.until(EC.presence_of_element_located((By.ID, "setup-form")))
        step("setup page")
        wait.until(lambda d: "#" not in d.current_url)
        step("setup token removed from the address bar")
        driver.find_element(By.ID, "setup-username").clear()
        driver.find_element(By.ID, "setup-username").send_keys("owner")
        driver.find_element(By.ID, "setup-password").send_keys(password)
        driver.find_element(By.ID, "setup-confirm").send_keys(password)
        driver.find_element(By.ID, "setup-submit").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "owner-name"), "owner"))
        if urlparse(driver.current_url).path != "/":
            fail("after setup the browser is not on the dashboard", driver)
        step("set up and logged in")

        # 2. An API token from the settings page, shown once, listed by prefix.
        driver.find_element(By.CSS_SELECTOR, "nav a[href='/settings']").click()
        wait.until(EC.visibility_of_element_located((By.ID, "token-form")))
        driver.find_element(By.ID, "token-name").send_keys("browser")
        driver.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
        wait.until(lambda d: d.find_element(By.ID, "token-value").text.startswith("moat_"))
        token = driver.find_element(By.ID, "token-value").text
        prefix = token.split("_")[1]
        wait.until(EC.text_to_be_present_in_element((By.ID, "token-rows"), prefix))
        if token in driver.find_element(By.ID, "token-rows").text:
            fail("the token list shows the whole token", driver)
        step("API token created")

        # 3. Log out: back on the login page, and the dashboard sends us there again.
        driver.find_element(By.ID, "logout").click()
        wait.until(lambda d: urlparse(d.current_url).path == "/login")
        if driver.execute_script("return localStorage.getItem('moat.csrf')") is not None:
            fail("logging out left the CSRF token in localStorage", driver)
        driver.get(origin + "/")
        wait.until(lambda d: urlparse(d.current_url).path == "/login")
        step("logged out")

        # 4. A wrong password is refused with a message and no navigation.
        wait.until(EC.presence_of_element_located((By.ID, "login-form")))
        driver.find_element(By.ID, "login-username").send_keys("owner")
        driver.find_element(By.ID, "login-password").send_keys(password + "-wrong")
        driver.find_element(By.ID, "login-submit").click()
        wait.until(lambda d: d.find_element(By.ID, "message").text != "")
        if "invalid" not in driver.find_element(By.ID, "message").text:
            fail("a wrong password did not show the refusal", driver)
        if urlparse(driver.current_url).path != "/login":
            fail("a wrong password left the login page", driver)
        step("wrong password refused")

        # 5. The right one logs in.
        driver.find_element(By.ID, "login-password").clear()
        driver.find_element(By.ID, "login-password").send_keys(password)
        driver.find_element(By.ID, "login-submit").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "owner-name"), "owner"))
        step("logged in")

        # 5b. A reload keeps the session: the CSRF token login gave is kept in this origin's storage.
        driver.refresh()
        wait.until(EC.text_to_be_present_in_element((By.ID, "owner-name"), "owner"))
        if urlparse(driver.current_url).path != "/":
            fail("a reload of the dashboard lost the session", driver)
        step("reload keeps the session")

        # 6. The session cookie is not readable from JavaScript (HttpOnly).
        if "moat_session" in driver.execute_script("return document.cookie"):
            fail("the session cookie is visible to JavaScript", driver)
        step("cookie is HttpOnly")

        # 7. No script error and no CSP violation on any page.
        problems = [entry["message"] for entry in driver.get_log("browser")
                    if entry["level"] == "SEVERE" and "401" not in entry["message"]
                    and "403" not in entry["message"]]
        if problems:
            fail("browser console errors: " + " | ".join(problems), driver)
        step("console clean")
        print(json.dumps({"ok": True, "steps": steps, "token_prefix": prefix}))
    except Exception as error:  # a timeout or a missing element: say where
        fail("{}: {}".format(type(error).__name__, str(error).splitlines()[0] if str(error) else ""), driver)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
