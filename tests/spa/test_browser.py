"""End to end in a real browser: `authsvc dev` serves the example SPA (examples/spa), and
headless Chromium drives every flow the API has through it: sign-up, confirmation (with a
resent code), sign-in, NEW_PASSWORD_REQUIRED, the MFA challenge, forgotten password, an
invitation, profile view and edit, password change, TOTP set-up (QR code) and turning it off,
sign-out, and the silent refresh on reload. On each screen axe-core (vendored, tests/spa/
vendor) must find no serious or critical violation, and a screenshot is saved to
test-artifacts/.

This is also the proof that the cookie transport works where it matters: Chromium enforces the
``__Host-`` prefix, ``Secure`` (http://127.0.0.1 counts as a secure context), ``HttpOnly``
and ``SameSite=Strict`` for real. Needs Debian's ``chromium`` and ``chromium-driver``
(``make browser``); without them the tests skip on a laptop and fail under ``CI=true``.
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
from authsvc.config import Settings
from tests.conftest import IN_CI
from tests.mfa.support import MOTO_SECRET, current_code, totp_at

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AUTHSVC = Path(sys.executable).with_name("authsvc")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
SECTIONS = (
    "signin",
    "signup",
    "confirm",
    "forgot",
    "reset",
    "mfa",
    "newpassword",
    "accept",
    "profile",
)
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Dev-Adm1n-Passw0rd!"
CHOSEN_PASSWORD = "Chosen-Passw0rd!"
PASSWORD = "Passw0rd!"
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


def reauth_window() -> int | None:
    """The shortest AUTHSVC_REAUTH_MAX_AGE the server takes (at most 60 s), when it has that
    setting: the dev server runs with it, so that turning TOTP off a little later needs the
    password again and the page's re-authentication step is driven for real."""
    field = Settings.model_fields.get("reauth_max_age")
    if field is None or field.annotation not in (int, float):
        return None
    minimum = 1
    for constraint in field.metadata:
        for name, extra in (("ge", 0), ("gt", 1)):
            bound = getattr(constraint, name, None)
            if bound is not None:
                minimum = max(minimum, int(bound) + extra)
    return minimum if minimum <= 60 else None


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
    window = reauth_window()
    if window is not None:
        env["AUTHSVC_REAUTH_MAX_AGE"] = str(window)
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
        for section in SECTIONS:
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


def assert_accessible(driver: WebDriver, screen: str) -> None:
    """axe-core on what is on screen now: no serious or critical violation (WCAG 2.x A/AA
    and best practices). Hidden screens are not checked, as a person cannot reach them."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(AXE.read_text())
    result: dict[str, Any] = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        axe.run(document, {resultTypes: ["violations"]})
          .then((r) => done({violations: r.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5)}))}))
          .catch((e) => done({error: String(e)}));
        """
    )
    assert "error" not in result, result
    serious = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], f"axe on {screen}: {serious}"


def screen(page: Page, name: str) -> None:
    """A screen the flow reached: check it with axe-core and keep a screenshot of it."""
    page.wait.until(
        lambda d: d.find_element(By.ID, "busy").get_attribute("hidden") is not None,
        message=f"still loading on {name}; {page.state()}",
    )
    save_screenshot(page.driver, f"spa-{name}.png")
    assert_accessible(page.driver, name)


def outbox_code(base_url: str, email: str, kind: str, *, not_in: tuple[str, ...] = ()) -> str:
    """The newest code of ``kind`` sent to ``email``, other than ``not_in``."""
    deadline = time.monotonic() + 20
    while True:
        response = httpx.get(
            f"{base_url}/dev/outbox", params={"to": email, "kind": kind}, timeout=10
        )
        assert response.status_code == 200, response.text
        codes = [m["code"] for m in response.json() if m.get("code")]
        if codes and codes[0] not in not_in:
            return str(codes[0])
        assert time.monotonic() < deadline, f"no new {kind} for {email}: {response.json()}"
        time.sleep(0.1)


def clear_message(page: Page) -> None:
    """Empty the message box, so that the next outcome is told apart from the last one."""
    page.driver.execute_script(
        "const m = document.getElementById('message'); m.textContent = ''; m.className = '';"
    )


def expect_error(page: Page, text: str) -> None:
    """A refusal is shown to the person: the problem's detail, styled as an error."""
    page.wait.until(
        lambda d: "error" in (page.message().get_attribute("class") or ""),
        message=f"no error shown; {page.state()}",
    )
    assert page.message().get_attribute("role") == "alert"
    message = page.text("message")
    assert text.lower() in message.lower(), message


def run_flow(driver: WebDriver, dev_server: DevServer, name: str, flow: Callable[[], None]) -> None:
    try:
        flow()
    except (AssertionError, TimeoutException):
        save_screenshot(driver, f"spa-failure-{name}.png")
        (ARTIFACTS / f"spa-failure-{name}.html").write_text(driver.page_source)
        (ARTIFACTS / f"spa-failure-{name}-server.log").write_text(dev_server.output())
        raise


def sign_up_over_http(base: str, email: str, password: str = PASSWORD) -> None:
    """A confirmed account, made over the API (for flows that start after sign-up)."""
    body = {"email": email, "password": password, "given_name": "Sam", "family_name": "Ple"}
    response = httpx.post(f"{base}/v1/auth/sign-up", json=body, timeout=10)
    assert response.status_code == 202, response.text
    code = outbox_code(base, email, "sign_up_code")
    confirm = httpx.post(
        f"{base}/v1/auth/sign-up/confirm", json={"email": email, "code": code}, timeout=10
    )
    assert confirm.status_code == 204, confirm.text


# --------------------------------------------------------------------------- the tests


def test_sign_up_confirm_profile_and_password(driver: WebDriver, dev_server: DevServer) -> None:
    run_flow(driver, dev_server, "sign-up", lambda: _sign_up_flow(Page(driver), dev_server))


def _sign_up_flow(page: Page, server: DevServer) -> None:
    base, driver = server.base_url, page.driver
    email = f"spa-up-{uuid.uuid4().hex[:10]}@example.com"

    driver.get(f"{base}/dev/spa/")
    page.visible("signin")
    screen(page, "sign-in")
    page.click("to-signup")
    page.visible("signup")
    assert driver.switch_to.active_element.get_attribute("id") == "signup-title"  # focus moved

    # The server's password policy says which rule failed; the page shows it.
    page.fill("signup-form", email=email, family_name="Ple", password="alllowercase1!")
    page.submit("signup-form")
    expect_error(page, "uppercase")
    password = driver.find_element(By.ID, "signup-password")
    assert password.get_attribute("aria-invalid") == "true"
    screen(page, "sign-up-error")

    page.fill("signup-form", email=email, given_name="Sam", family_name="Ple", password=PASSWORD)
    page.submit("signup-form")
    page.visible("confirm")
    page.text_in("confirm-destination", "***")
    first = outbox_code(base, email, "sign_up_code")
    screen(page, "confirm")

    # Resend: a new code arrives, and the old one is dead.
    page.click("resend")
    page.text_in("message", "A new code is on its way")
    second = outbox_code(base, email, "sign_up_code", not_in=(first,))
    page.fill("confirm-form", code=first)
    page.submit("confirm-form")
    expect_error(page, "code")
    page.fill("confirm-form", code=second)
    page.submit("confirm-form")
    page.visible("signin")
    page.text_in("message", "Email confirmed")
    signin = driver.find_element(By.ID, "signin-form")
    assert signin.find_element(By.NAME, "email").get_attribute("value") == email

    # Sign in, see the profile.
    page.fill("signin-form", password="Wrong-Passw0rd!")
    page.submit("signin-form")
    expect_error(page, "password")
    page.fill("signin-form", email=email, password=PASSWORD)
    page.submit("signin-form")
    page.visible("profile")
    page.text_in("profile-email", email)
    page.text_in("profile-name", "Sam Ple")
    assert page.text("profile-verified") == "yes"
    assert page.text("profile-mfa") == "off"
    screen(page, "profile")
    # A phone-sized window: one column, nothing wider than the screen.
    size = driver.get_window_size()
    driver.set_window_size(390, 844)
    try:
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the profile is {overflow}px wider than a phone screen"
        screen(page, "profile-phone")
    finally:
        driver.set_window_size(size["width"], size["height"])

    # Edit the profile; a reload signs in silently and shows the saved values.
    page.fill("profile-form", given_name="Samantha", test_attribute1="hello")
    page.submit("profile-form")
    page.text_in("message", "Profile saved.")
    page.text_in("profile-name", "Samantha Ple")
    driver.refresh()
    page.visible("profile")
    page.text_in("profile-name", "Samantha Ple")
    form = driver.find_element(By.ID, "profile-form")
    assert form.find_element(By.NAME, "test_attribute1").get_attribute("value") == "hello"

    # Change the password: every session ends, this one too; the new password works.
    page.fill("password-form", current_password="Wrong-Passw0rd!", new_password=CHOSEN_PASSWORD)
    page.submit("password-form")
    expect_error(page, "password")
    page.fill("password-form", current_password=PASSWORD, new_password=CHOSEN_PASSWORD)
    page.submit("password-form")
    page.visible("signin")
    page.text_in("message", "Password changed")
    assert page.fetch_refresh()["status"] == 401
    page.fill("signin-form", email=email, password=CHOSEN_PASSWORD)
    page.submit("signin-form")
    page.visible("profile")
    page.text_in("profile-email", email)
    page.click("signout")
    page.visible("signin")
    page.text_in("message", "Signed out.")


def test_forgot_and_reset_password(driver: WebDriver, dev_server: DevServer) -> None:
    run_flow(driver, dev_server, "reset", lambda: _reset_flow(Page(driver), dev_server))


def _reset_flow(page: Page, server: DevServer) -> None:
    base, driver = server.base_url, page.driver
    email = f"spa-reset-{uuid.uuid4().hex[:10]}@example.com"
    sign_up_over_http(base, email)

    driver.get(f"{base}/dev/spa/")
    page.visible("signin")
    page.fill("signin-form", email=email)
    page.click("to-forgot")
    page.visible("forgot")
    form = driver.find_element(By.ID, "forgot-form")
    assert form.find_element(By.NAME, "email").get_attribute("value") == email  # carried over
    screen(page, "forgot")
    page.submit("forgot-form")
    page.visible("reset")
    page.text_in("reset-destination", "***")
    code = outbox_code(base, email, "password_reset_code")
    screen(page, "reset")

    wrong = "000000" if code != "000000" else "111111"
    page.fill("reset-form", code=wrong, new_password=CHOSEN_PASSWORD)
    page.submit("reset-form")
    expect_error(page, "code")
    page.fill("reset-form", code=code, new_password=CHOSEN_PASSWORD)
    page.submit("reset-form")
    page.visible("signin")
    page.text_in("message", "Password reset")

    page.fill("signin-form", email=email, password=CHOSEN_PASSWORD)
    page.submit("signin-form")
    page.visible("profile")
    page.text_in("profile-email", email)


def test_new_password_required(driver: WebDriver, dev_server: DevServer) -> None:
    run_flow(
        driver, dev_server, "new-password", lambda: _new_password_flow(Page(driver), dev_server)
    )


def _new_password_flow(page: Page, server: DevServer) -> None:
    base, driver = server.base_url, page.driver
    email = f"spa-temp-{uuid.uuid4().hex[:10]}@example.com"
    sign_up_over_http(base, email)
    # An admin gives the user a temporary password: the next sign-in is a challenge.
    bearer = {"Authorization": f"Bearer {admin_token(base)}"}
    users = httpx.get(
        f"{base}/v1/admin/users", params={"email_prefix": email}, headers=bearer, timeout=10
    )
    assert users.status_code == 200, users.text
    (user,) = users.json()["items"]
    temporary = "Temp-Passw0rd!"
    response = httpx.post(
        f"{base}/v1/admin/users/{user['username']}/password",
        json={"password": temporary, "permanent": False},
        headers=bearer,
        timeout=10,
    )
    assert response.status_code == 204, response.text

    driver.get(f"{base}/dev/spa/")
    page.visible("signin")
    page.fill("signin-form", email=email, password=temporary)
    page.submit("signin-form")
    page.visible("newpassword")
    screen(page, "new-password")
    page.fill("newpassword-form", new_password=CHOSEN_PASSWORD)
    page.submit("newpassword-form")
    page.visible("profile")
    page.text_in("profile-email", email)
    page.text_in("message", "Password set")


def test_invitation_totp_mfa_sign_in_and_sign_out(driver: WebDriver, dev_server: DevServer) -> None:
    email = f"spa-{uuid.uuid4().hex[:10]}@example.com"
    run_flow(driver, dev_server, "invitation", lambda: _flow(Page(driver), dev_server, email))


def _flow(page: Page, server: DevServer, email: str) -> None:
    base, driver = server.base_url, page.driver

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
    screen(page, "accept-invitation")
    page.fill("accept-form", password=CHOSEN_PASSWORD)
    page.submit("accept-form")

    # -- signed in: the profile ---------------------------------------------------------------
    page.visible("profile")
    page.text_in("profile-email", email)
    page.text_in("message", "Welcome!")
    assert page.text("profile-mfa") == "off"
    assert "/accept-invitation" not in driver.current_url  # the token left the address bar
    assert "token=" not in driver.current_url

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

    # -- turn TOTP on in the UI: a QR code and a real secret (dev mode's own, 160 bits) -------
    page.click("totp-start")
    page.visible("totp-setup")
    page.wait.until(lambda d: len(page.text("totp-secret")) == 32, message=page.state())
    secret = page.text("totp-secret")
    assert secret != MOTO_SECRET
    uri = page.text("totp-uri")
    assert uri.startswith("otpauth://totp/")
    assert f"secret={secret}" in uri
    qr_width = driver.execute_script(
        "const img = document.getElementById('totp-qr');"
        " return img.complete && img.src.startsWith('data:image/') ? img.naturalWidth : 0;"
    )
    assert qr_width >= 150, qr_width  # a version-5+ code of 5 px modules, not an empty image
    # The image encodes exactly the URI shown (the vendored encoder, run on that text).
    assert driver.execute_script(
        "return document.getElementById('totp-qr').src === qrImage(arguments[0]);", uri
    )
    screen(page, "totp-setup")

    wrong = next(
        c
        for c in ("000000", "111111", "222222")
        if c not in {totp_at(secret, time.time() + k * STEP_S) for k in (-1, 0, 1, 2)}
    )
    page.fill("totp-form", code=wrong)
    page.submit("totp-form")
    expect_error(page, "code")
    clear_message(page)
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
    screen(page, "mfa")
    enter_code(page, "mfa-form", secret, lambda d: page.shown_section() == "profile")
    page.visible("profile")
    page.text_in("profile-email", email)
    page.text_in("profile-mfa", "on")
    screen(page, "profile-mfa-on")
    last = page.refresh_cookie()
    assert last is not None, driver.get_cookies()

    # -- turn TOTP off. Without a recent sign-in the server answers 403
    #    reauthentication_required and the page asks for the password. When the server has
    #    AUTHSVC_REAUTH_MAX_AGE (reauth_window), the sign-in is let grow old first, so the page
    #    must ask; a server without that rule turns TOTP off at once ----------------------------
    window = reauth_window()
    if window is not None:
        time.sleep(window + 1.5)
    page.click("totp-off")
    page.wait.until(
        lambda d: (
            page.shown_section() == "signin" or d.find_element(By.ID, "totp-reauth").is_displayed()
        ),
        message=f"TOTP off got no answer; {page.state()}",
    )
    if window is not None:
        assert driver.find_element(By.ID, "totp-reauth").is_displayed(), page.state()
    if driver.find_element(By.ID, "totp-reauth").is_displayed():
        screen(page, "totp-reauth")
        clear_message(page)
        page.fill("reauth-form", current_password="Wrong-Passw0rd!")
        page.submit("reauth-form")
        expect_error(page, "")
        assert page.text("profile-mfa") == "on"
        page.fill("reauth-form", current_password=CHOSEN_PASSWORD)
        page.submit("reauth-form")
    # Turning TOTP off ends every session, this one included: the page signs in again, and
    # the password alone is enough now.
    page.visible("signin")
    page.text_in("message", "Two-factor authentication is off.")
    page.fill("signin-form", email=email, password=CHOSEN_PASSWORD)
    page.submit("signin-form")
    page.text_in("profile-mfa", "off")
    page.visible("totp-start")

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

    # A reload stays signed out, and the invitation link is dead.
    driver.refresh()
    page.visible("signin")
    assert page.shown_section() == "signin"
    driver.get(link)
    page.visible("signin")
    expect_error(page, "no longer valid")


def test_dev_inbox_page(driver: WebDriver, dev_server: DevServer) -> None:
    """The dev outbox as a browser sees it: readable, codes large, accessible."""
    email = f"spa-inbox-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": PASSWORD, "family_name": "Box"}
    assert httpx.post(f"{dev_server.base_url}/v1/auth/sign-up", json=body).status_code == 202
    code = outbox_code(dev_server.base_url, email, "sign_up_code")
    driver.get(f"{dev_server.base_url}/dev/outbox")
    codes = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "p.code")]
    assert code in codes
    assert driver.find_element(By.TAG_NAME, "h1").text == "Dev outbox"
    save_screenshot(driver, "dev-outbox.png")
    assert_accessible(driver, "dev outbox")
