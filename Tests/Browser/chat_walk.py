#!/usr/bin/python3
"""Chats with the agent on Moat's /chat page in a real headless Chromium.

Reads four lines on stdin: the gateway's origin, the owner password, the reply the scripted model
gives and the folder for the screenshot (chat.png). Logs in, opens /chat (its script fetches a live token and opens the WebSocket), sends a message,
waits for the streamed reply, then a second message whose answer holds a call for approval and must
link to /approvals. Fails on any browser console error or Content-Security-Policy violation. Prints a
JSON summary; exits 1 with a message on the first failure.
"""

import json
import os
import sys
from urllib.parse import urlparse

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from browser_support import WAIT, chromium, fail, step, steps


def console_problems(driver):
    """Every console error (a CSP violation is one) so far."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def send(driver, wait, text):
    wait.until(lambda d: d.find_element(By.ID, "chat-send").is_enabled())
    driver.find_element(By.ID, "chat-text").send_keys(text)
    driver.find_element(By.ID, "chat-send").click()


def main():
    origin = sys.stdin.readline().strip()
    password = sys.stdin.readline().rstrip("\n")
    reply = sys.stdin.readline().rstrip("\n")
    shots = sys.stdin.readline().strip()
    if not origin or not password or not reply or not shots:
        fail("stdin must hold the origin, the password, the expected reply and the screenshot folder")
    os.makedirs(shots, exist_ok=True)

    driver = chromium("--window-size=1000,800")
    wait = WebDriverWait(driver, WAIT)
    try:
        driver.get(origin + "/chat")
        wait.until(lambda d: urlparse(d.current_url).path == "/login")
        wait.until(EC.presence_of_element_located((By.ID, "login-form")))
        driver.find_element(By.ID, "login-username").send_keys("owner")
        driver.find_element(By.ID, "login-password").send_keys(password)
        driver.find_element(By.ID, "login-submit").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "owner-name"), "owner"))
        step("logged in")

        driver.find_element(By.CSS_SELECTOR, "nav a[href='/chat']").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "chat-state"), "Connected"))
        step("socket open")

        send(driver, wait, "hello")
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#chat-log .chat-agent"), reply))
        wait.until(lambda d: d.find_element(By.ID, "chat-send").is_enabled())
        if driver.find_element(By.CSS_SELECTOR, "#chat-log .chat-owner").text != "hello":
            fail("the owner's message is not shown", driver)
        step("streamed reply")

        send(driver, wait, "what is in notes.txt?")
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#chat-log .chat-approval a[href='/approvals']")))
        approval = driver.find_element(By.CSS_SELECTOR, "#chat-log .chat-approval").text
        if "read_file" not in approval:
            fail("the held call does not name its tool", driver)
        wait.until(lambda d: d.find_element(By.ID, "chat-send").is_enabled())
        driver.save_screenshot(os.path.join(shots, "chat.png"))
        step("approval linked")

        # A reload opens a new socket with a new token (the old one is used up).
        driver.refresh()
        wait.until(EC.text_to_be_present_in_element((By.ID, "chat-state"), "Connected"))
        step("reconnected")

        problems = console_problems(driver)
        if problems:
            fail("browser console errors: " + json.dumps(problems), driver)
        step("console clean")
        print(json.dumps({"ok": True, "steps": steps}))
    except SystemExit:
        raise
    except Exception as error:  # a timeout names no element: report the page as it was
        fail(type(error).__name__ + ": " + str(error), driver)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
