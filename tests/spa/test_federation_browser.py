"""The example SPA's "Sign in with Google" button in headless Chromium against `authsvc dev`:
the button comes from /v1/auth/federation/providers, the dev stand-in for Cognito's hosted
UI shows made-up identities, and the page ends signed in through the handoff code and the
refresh cookie (Chromium enforces the __Host- cookies for real)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.spa.test_browser import (  # noqa: F401  (fixtures)
    DevServer,
    Page,
    browser_binaries,
    dev_server,
    driver,
)

pytestmark = pytest.mark.slow


def test_sign_in_with_google_button(dev_server: DevServer, driver: WebDriver) -> None:  # noqa: F811
    page = Page(driver)
    driver.get(f"{dev_server.base_url}/dev/spa/")
    page.visible("signin")
    button = page.visible("federation-google")
    assert button.text == "Sign in with Google"
    assert page.visible("federation-facebook").text == "Sign in with Facebook"
    button.click()
    # The stand-in's page: pick the first made-up identity.
    page.wait.until(lambda d: "/dev/cognito/oauth2/authorize" in d.current_url)
    assert "Sign in with Google" in driver.title
    driver.find_element(By.CSS_SELECTOR, "button[data-identity='ada']").click()
    page.visible("profile")
    page.text_in("profile-email", "ada@google.example")
    # The handoff code is gone from the address bar; no token was ever in a URL.
    assert "handoff_code" not in driver.current_url
    assert driver.current_url.rstrip("/").endswith("/dev/spa")
    cookies = {c["name"]: c for c in driver.get_cookies()}
    assert cookies["__Host-authsvc_refresh"]["httpOnly"] is True
    # Signing out works as after a password sign-in.
    driver.find_element(By.ID, "signout").click()
    page.visible("signin")
