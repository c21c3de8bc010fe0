"""End to end in a real browser: `authsvc dev` serves the example SPA, headless Chromium
drives it through an invitation, a silent refresh, an access token that dies while the page
is open, TOTP set-up, an MFA sign-in and sign-out.

This is the proof that the cookie transport works where it matters: Chromium enforces the
``__Host-`` prefix, ``Secure`` (http://127.0.0.1 counts as a secure context), ``HttpOnly``
and ``SameSite=Strict`` for real. Needs Debian's ``chromium`` and ``chromium-driver``
(``make browser``); without them the test skips on a laptop and fails under ``CI=true``.
Selenium Manager never runs: the browser and the driver are given by path.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from authsvc.auth.transport import COOKIE
from tests.conftest import IN_CI
from tests.mfa.support import MOTO_SECRET, current_code

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AUTHSVC = Path(sys.executable).with_name("authsvc")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Dev-Adm1n-Passw0rd!"
CHOSEN_PASSWORD = "Chosen-Passw0rd!"
WAIT_S = 30.0  # generous: CI machines run the rest of the suite beside this test
# Typing the code and the round trip to the server must fit in what is left of its step;
# if a loaded machine still misses the step, the code is entered once more (see enter_code).
TOTP_MARGIN_S = 5.0
STEP_S = 30


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser_binaries() -> tuple[Path, Path]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        reason = (
            f"headless Chromium is not installed ({', '.join(missing)} missing);"
            " `make browser` (as root) installs Debian's chromium and chromium-driver"
        )
        if IN_CI:
            pytest.fail(reason + " — required under CI=true")
        pytest.skip(reason)
    return CHROMIUM, CHROMEDRIVER


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DevServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # `authsvc dev` shuts down cleanly on SIGTERM
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def dev_server(
    browser_binaries: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevServer]:
    """`authsvc dev` on a free port, with a fresh data directory."""
    work = tmp_path_factory.mktemp("spa-dev")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env.update(AUTHSVC_DEV_ADMIN_PASSWORD=ADMIN_PASSWORD, PYTHONUNBUFFERED="1")
    log = work / "authsvc-dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(AUTHSVC), "dev", "--port", str(port), "--data-dir", str(work / "data")],
            env=env,
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = DevServer(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"authsvc dev exited: {server.output()}"
            try:
                if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"authsvc dev never got ready: {server.output()}"
            time.sleep(0.1)
        yield server
    finally:
        _stop(process)


@pytest.fixture
def driver(
    browser_binaries: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WebDriver]:
    chromium, chromedriver = browser_binaries
    # Belt and braces: Selenium Manager is not needed when both paths are given; offline,
    # it could not download anything even if something asked it to.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1100,1400",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    service = Service(executable_path=str(chromedriver), log_output=str(tmp_path / "driver.log"))
    browser = webdriver.Chrome(options=options, service=service)
    try:
        yield browser
    finally:
        browser.quit()


# --------------------------------------------------------------------------- page helpers


class Page:
    """The example SPA (examples/spa/index.html): sections and forms by element id."""

    def __init__(self, driver: WebDriver) -> None:
        self.driver = driver
        self.wait = WebDriverWait(driver, WAIT_S)

    def visible(self, element_id: str) -> WebElement:
        element: WebElement = self.wait.until(
            ec.visibility_of_element_located((By.ID, element_id)),
            message=f"#{element_id} never became visible; {self.state()}",
        )
        return element

    def hidden(self, element_id: str) -> None:
        self.wait.until(
            ec.invisibility_of_element_located((By.ID, element_id)),
            message=f"#{element_id} never went away; {self.state()}",
        )

    def text_in(self, element_id: str, text: str) -> None:
        self.wait.until(
            ec.text_to_be_present_in_element((By.ID, element_id), text),
            message=f"#{element_id} never showed {text!r}; {self.state()}",
        )

    def text(self, element_id: str) -> str:
        return str(self.driver.find_element(By.ID, element_id).text)

    def fill(self, form_id: str, **fields: str) -> None:
        form = self.driver.find_element(By.ID, form_id)
        for name, value in fields.items():
            field = form.find_element(By.NAME, name)
            field.clear()
            field.send_keys(value)

    def submit(self, form_id: str) -> None:
        form = self.driver.find_element(By.ID, form_id)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def click(self, element_id: str) -> None:
        self.wait.until(ec.element_to_be_clickable((By.ID, element_id))).click()

    def message(self) -> WebElement:
        element: WebElement = self.driver.find_element(By.ID, "message")
        return element

    def shown_section(self) -> str | None:
        for section in ("signin", "mfa", "newpassword", "accept", "profile"):
            if self.driver.find_element(By.ID, section).is_displayed():
                return section
        return None

    def state(self) -> str:
        try:
            return (
                f"url={self.driver.current_url} section={self.shown_section()}"
                f" message={self.text('message')!r}"
            )
        except Exception as exc:  # noqa: BLE001 - only for an error message
            return f"(page state unavailable: {exc})"

    def refresh_cookie(self) -> dict[str, Any] | None:
        cookies = [c for c in self.driver.get_cookies() if c["name"] == COOKIE]
        return cookies[0] if cookies else None

    def fetch_refresh(self) -> dict[str, Any]:
        """A refresh made by the page itself: same origin, X-CSRF, credentials included."""
        result: dict[str, Any] = self.driver.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            fetch("/v1/auth/refresh", {
              method: "POST",
              headers: {"X-CSRF": "1", "X-Token-Transport": "cookie"},
              credentials: "include",
            })
              .then(async (r) => done({status: r.status, body: await r.json()}))
              .catch((e) => done({status: -1, body: String(e)}));
            """
        )
        return result


def enter_code(page: Page, form_id: str, secret: str, done: Callable[[WebDriver], bool]) -> None:
    """Type a fresh TOTP code into ``form_id`` and submit it until ``done`` holds.

    moto accepts only the current 30 s step. A refusal is retried once, and only if the step
    changed between computing the code and the answer (the code expired on the way): a
    refusal within one step is a real failure.
    """
    for attempt in (1, 2):
        step = int(time.time() // STEP_S)
        page.fill(form_id, code=current_code(secret, margin=TOTP_MARGIN_S))
        page.submit(form_id)
        page.wait.until(
            lambda d: done(d) or "error" in (page.message().get_attribute("class") or ""),
            message=f"no answer to the code in #{form_id}; {page.state()}",
        )
        if done(page.driver):
            return
        refused = page.text("message")
        assert attempt == 1 and int(time.time() // STEP_S) != step, (
            f"the code in #{form_id} was refused: {refused!r}; {page.state()}"
        )
        # Clear the error so the next attempt's outcome is told apart from this one's.
        page.driver.execute_script(
            "const m = document.getElementById('message'); m.textContent = ''; m.className = '';"
        )


def kill_access_token(driver: WebDriver) -> None:
    """Swap the page's in-memory access token (app.js's global ``accessToken``) for one the
    server refuses, as if it had expired."""
    driver.execute_script("accessToken = 'eyJhbGciOiJub25lIn0.e30.' + Date.now();")


def admin_token(base_url: str) -> str:
    response = httpx.post(
        f"{base_url}/v1/auth/sign-in",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def invitation_link(base_url: str, email: str) -> str:
    """Invite ``email`` as the seeded admin; read the link from the dev outbox."""
    bearer = {"Authorization": f"Bearer {admin_token(base_url)}"}
    body = {"email": email, "given_name": "Ivy", "family_name": "Invitee"}
    response = httpx.post(f"{base_url}/v1/invitations", json=body, headers=bearer, timeout=10)
    assert response.status_code == 201, response.text
    deadline = time.monotonic() + 10
    while True:
        outbox = httpx.get(
            f"{base_url}/dev/outbox", params={"to": email, "kind": "invitation"}, timeout=10
        )
        assert outbox.status_code == 200, outbox.text
        links = [m["link"] for m in outbox.json() if m.get("link")]
        if links:
            return str(links[0])
        assert time.monotonic() < deadline, f"no invitation email for {email}: {outbox.json()}"
        time.sleep(0.1)


def save_screenshot(driver: WebDriver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    return path


# --------------------------------------------------------------------------- the test


def test_invitation_to_mfa_sign_in_and_sign_out(driver: WebDriver, dev_server: DevServer) -> None:
    base = dev_server.base_url
    page = Page(driver)
    email = f"spa-{uuid.uuid4().hex[:10]}@example.com"
    try:
        _flow(page, base, email)
    except (AssertionError, TimeoutException):
        save_screenshot(driver, "spa-failure.png")
        (ARTIFACTS / "spa-failure.html").write_text(driver.page_source)
        (ARTIFACTS / "spa-failure-server.log").write_text(dev_server.output())
        raise


def _flow(page: Page, base: str, email: str) -> None:
    driver = page.driver

    # -- the admin invites someone; the link opens the SPA served by `authsvc dev` ---------
    link = invitation_link(base, email)
    prefix = f"{base}/dev/spa/accept-invitation#token="
    assert link.startswith(prefix), link
    driver.get(link)

    page.visible("accept")
    page.text_in("accept-email", email)
    assert page.text("accept-email") == email
    form = driver.find_element(By.ID, "accept-form")
    assert form.find_element(By.NAME, "given_name").get_attribute("value") == "Ivy"
    assert form.find_element(By.NAME, "family_name").get_attribute("value") == "Invitee"
    page.fill("accept-form", password=CHOSEN_PASSWORD)
    page.submit("accept-form")

    # -- signed in: the profile ---------------------------------------------------------------
    page.visible("profile")
    page.text_in("profile-email", email)
    assert page.text("profile-mfa") == "off"
    assert "/accept-invitation" not in driver.current_url  # the token left the address bar
    assert "token=" not in driver.current_url
    save_screenshot(driver, "spa-profile.png")

    # The refresh token is a __Host- cookie the browser accepted, and the page cannot read.
    cookie = page.refresh_cookie()
    assert cookie is not None, driver.get_cookies()
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    assert not cookie["domain"].startswith(".")  # host-only
    assert COOKIE not in driver.execute_script("return document.cookie")
    # The access token lives in a variable only.
    storage = driver.execute_script(
        "return [Object.keys(localStorage).length, Object.keys(sessionStorage).length]"
    )
    assert storage == [0, 0]

    # -- reload: a silent refresh through the cookie signs the page in again ----------------
    driver.refresh()
    page.visible("profile")
    page.text_in("profile-email", email)
    assert page.shown_section() == "profile"

    # -- the access token in memory dies (it expires while a page stays open): the page
    #    refreshes once through the cookie and retries -----------------------------------------
    kill_access_token(driver)
    page.fill("profile-form", given_name="Ivy-Renamed")
    page.submit("profile-form")
    page.text_in("message", "Profile saved.")
    assert (
        page.driver.find_element(By.ID, "profile-form")
        .find_element(By.NAME, "given_name")
        .get_attribute("value")
        == "Ivy-Renamed"
    )

    # -- turn TOTP on in the UI ---------------------------------------------------------------
    page.click("totp-start")
    page.visible("totp-setup")
    page.text_in("totp-secret", MOTO_SECRET)
    secret = page.text("totp-secret")
    assert secret == MOTO_SECRET
    assert page.text("totp-uri").startswith("otpauth://totp/")
    assert f"secret={secret}" in page.text("totp-uri")
    enter_code(page, "totp-form", secret, lambda d: page.text("profile-mfa") == "on")
    page.text_in("profile-mfa", "on")
    page.hidden("totp-setup")
    page.visible("totp-off")
    page.text_in("message", "Two-factor authentication is on.")

    # -- sign out -------------------------------------------------------------------------------
    page.click("signout")
    page.visible("signin")
    page.text_in("message", "Signed out.")
    assert page.refresh_cookie() is None, driver.get_cookies()

    # -- sign in again: password, then the MFA form ----------------------------------------------
    page.fill("signin-form", email=email, password=CHOSEN_PASSWORD)
    page.submit("signin-form")
    page.visible("mfa")
    enter_code(page, "mfa-form", secret, lambda d: page.shown_section() == "profile")
    page.visible("profile")
    page.text_in("profile-email", email)
    page.text_in("profile-mfa", "on")
    last = page.refresh_cookie()
    assert last is not None, driver.get_cookies()

    # -- sign out, with a dead access token this time: the page must still reach the server,
    #    or the cookie would outlive the sign-out and a reload would sign the user back in ----
    kill_access_token(driver)
    page.click("signout")
    page.visible("signin")
    page.text_in("message", "Signed out.")
    assert page.refresh_cookie() is None, driver.get_cookies()
    refused = page.fetch_refresh()
    assert refused["status"] == 401, refused
    assert refused["body"]["code"] == "not_authenticated", refused

    # The old cookie, replayed by hand, is dead at the server too (GlobalSignOut).
    replay = httpx.post(
        f"{base}/v1/auth/refresh",
        headers={"Cookie": f"{COOKIE}={last['value']}", "Origin": base, "X-CSRF": "1"},
        timeout=10,
    )
    assert replay.status_code == 401, replay.text
    assert replay.json()["code"] == "invalid_token"

    # A reload stays signed out.
    driver.refresh()
    page.visible("signin")
    assert page.shown_section() == "signin"
