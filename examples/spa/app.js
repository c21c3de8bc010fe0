// authsvc example app — plain JavaScript, no build step. Copy what you need.
//
// Token handling, the point of this example:
// - every auth call sends `X-Token-Transport: cookie`, so the refresh token comes back as
//   an HttpOnly `__Host-` cookie that JavaScript cannot read (XSS cannot steal it);
// - the access token is kept in a variable, never in localStorage;
// - on page load the app refreshes silently (the cookie does the work);
// - refresh and sign-out send `X-CSRF: 1`: with SameSite=Strict and the Origin check on
//   the server, another site cannot make the browser use the cookie.
//
// Errors are RFC 9457 problem documents: the app branches on `code` and shows `detail`
// (plus the field messages of a `validation_error`) to the person.
"use strict";

const API = "";  // same origin as the page; set to "https://auth.example.com" otherwise
let accessToken = null;
let pending = null;  // a sign-in challenge: {challenge, session, email}

const $ = (id) => document.getElementById(id);
const SECTIONS = [
  "signin", "signup", "confirm", "forgot", "reset", "mfa", "newpassword", "accept", "profile",
];

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `Request failed (${status})`);
    this.status = status;
    this.code = problem && problem.code;
    this.problem = problem || {};
  }
}

async function api(method, path, body, { auth = false, csrf = false, retry = true } = {}) {
  const headers = { "X-Token-Transport": "cookie", Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth && accessToken) headers["Authorization"] = `Bearer ${accessToken}`;
  if (csrf) headers["X-CSRF"] = "1";
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "include",
  });
  // The access token died (it expires while the page stays open): refresh once, retry once.
  // Sign-out depends on this too: it must reach the server to remove the refresh cookie.
  if (response.status === 401 && auth && retry && (await silentRefresh())) {
    return api(method, path, body, { auth, csrf, retry: false });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (error) {
    data = null;  // not JSON (a proxy's error page): the status says enough
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// A new access token from the refresh cookie. When the session is over, the server's
// refusal also deletes the cookie.
async function silentRefresh() {
  try {
    const result = await api("POST", "/v1/auth/refresh", undefined, { csrf: true });
    accessToken = result.access_token;
    return true;
  } catch (error) {
    accessToken = null;
    return false;
  }
}

// Screens, messages, the loading state ---------------------------------------------------

function show(section, { focus = true } = {}) {
  for (const id of SECTIONS) $(id).hidden = id !== section;
  if (focus) {
    // Move focus to the new screen's heading, so keyboard and screen-reader users land on it.
    const heading = $(section).querySelector("h1");
    if (heading) heading.focus();
  }
}

function say(text, isError = false, details = []) {
  const box = $("message");
  box.textContent = text;
  box.className = isError ? "error" : "";
  box.setAttribute("role", isError ? "alert" : "status");
  if (details.length) {
    const list = document.createElement("ul");
    for (const detail of details) {
      const item = document.createElement("li");
      item.textContent = detail;
      list.append(item);
    }
    box.append(list);
  }
  // The message sits above the forms: bring it into view (a long page may be scrolled).
  if (text && box.scrollIntoView) box.scrollIntoView({ block: "nearest" });
}

function sayError(error, form) {
  const problem = error.problem || {};
  const details = (problem.errors || []).map((e) => {
    const field = (e.loc || []).filter((part) => part !== "body").join(".");
    return field ? `${field}: ${e.msg}` : e.msg;
  });
  say(error.message || "Something went wrong.", true, details);
  if (form) {
    for (const input of form.querySelectorAll("input")) input.removeAttribute("aria-invalid");
    for (const e of problem.errors || []) {
      const loc = e.loc || [];
      const name = loc[loc.length - 1];
      const input = name && form.elements.namedItem(String(name));
      if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
    }
    if (error.code === "invalid_password") {
      for (const name of ["password", "new_password"]) {
        const input = form.elements.namedItem(name);
        if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
      }
    }
  }
}

let busyCount = 0;
function setBusy(on) {
  busyCount += on ? 1 : -1;
  const busy = busyCount > 0;
  $("busy").hidden = !busy;
  $("main").setAttribute("aria-busy", String(busy));
  for (const button of document.querySelectorAll("main button")) button.disabled = busy;
}

// Runs `work` with the loading state on; a failure is shown from the problem document.
async function run(work, form) {
  setBusy(true);
  try {
    await work();
    if (form) for (const input of form.querySelectorAll("input")) input.removeAttribute("aria-invalid");
  } catch (error) {
    sayError(error, form);
  } finally {
    setBusy(false);
  }
}

function onSubmit(formId, handler) {
  $(formId).addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    run(() => handler(Object.fromEntries(new FormData(form).entries()), form), form);
  });
}

function navigate(section) {
  say("");
  show(section);
}

for (const link of document.querySelectorAll("a.to-signin")) {
  link.addEventListener("click", (event) => {
    event.preventDefault();
    pending = null;
    navigate("signin");
  });
}
$("to-signup").addEventListener("click", (event) => { event.preventDefault(); navigate("signup"); });
$("to-forgot").addEventListener("click", (event) => {
  event.preventDefault();
  $("forgot-email").value = $("signin-email").value;
  navigate("forgot");
});

// Sign-up, confirmation, resend ----------------------------------------------------------

onSubmit("signup-form", async ({ email, password, given_name, family_name }, form) => {
  const result = await api("POST", "/v1/auth/sign-up", {
    email, password, given_name: given_name || undefined, family_name,
  });
  form.reset();
  $("confirm-email").value = email;
  $("confirm-destination").textContent = result.delivery.destination;
  show("confirm");
  say("Check your email for the code.");
});

onSubmit("confirm-form", async ({ email, code }, form) => {
  await api("POST", "/v1/auth/sign-up/confirm", { email, code });
  form.reset();
  $("signin-email").value = email;
  show("signin");
  say("Email confirmed. You can sign in now.");
});

$("resend").addEventListener("click", () => run(async () => {
  const email = $("confirm-email").value;
  const result = await api("POST", "/v1/auth/sign-up/resend", { email });
  $("confirm-destination").textContent = result.delivery.destination;
  $("confirm-code").value = "";
  say(`A new code is on its way to ${result.delivery.destination}.`);
}, $("confirm-form")));

// Forgotten password ---------------------------------------------------------------------

onSubmit("forgot-form", async ({ email }) => {
  const result = await api("POST", "/v1/auth/password/forgot", { email });
  $("reset-email").value = email;
  $("reset-destination").textContent = result.delivery.destination;
  show("reset");
  say("If that email has an account, a code is on its way.");
});

onSubmit("reset-form", async ({ email, code, new_password }, form) => {
  await api("POST", "/v1/auth/password/reset", { email, code, new_password });
  form.reset();
  $("signin-email").value = email;
  show("signin");
  say("Password reset. Sign in with your new password.");
});

// Sign-in and its challenges ------------------------------------------------------------

async function handleResult(result, email) {
  if (result.kind === "tokens") {
    accessToken = result.access_token;
    pending = null;
    await showProfile();
    return;
  }
  pending = { challenge: result.challenge, session: result.session, email };
  if (result.challenge === "SOFTWARE_TOKEN_MFA") show("mfa");
  else if (result.challenge === "NEW_PASSWORD_REQUIRED") show("newpassword");
  else say(`This app cannot answer the ${result.challenge} challenge.`, true);
}

onSubmit("signin-form", async ({ email, password }, form) => {
  const result = await api("POST", "/v1/auth/sign-in", { email, password });
  form.reset();
  say("");
  await handleResult(result, email);
});

// The session names the user; `email` is sent too (the server checks it matches).
async function answer(extra) {
  const result = await api("POST", "/v1/auth/challenge", {
    challenge: pending.challenge, session: pending.session, email: pending.email, ...extra,
  });
  await handleResult(result, pending.email);
}

onSubmit("mfa-form", async ({ code }, form) => {
  await answer({ code });
  form.reset();
  say("");
});

onSubmit("newpassword-form", async ({ new_password }, form) => {
  await answer({ new_password });
  form.reset();
  say("Password set. Welcome!");
});

// Invitations ---------------------------------------------------------------------------

function invitationToken() {
  // The token is in the fragment: it never reaches a server log or a Referer header.
  if (!location.pathname.endsWith("/accept-invitation")) return null;
  return new URLSearchParams(location.hash.slice(1)).get("token");
}

async function showInvitation(token) {
  try {
    const invitation = await api("POST", "/v1/invitations/lookup", { token });
    $("accept-email").textContent = invitation.email;
    const form = $("accept-form");
    form.given_name.value = invitation.given_name || "";
    form.family_name.value = invitation.family_name || "";
    show("accept");
  } catch (error) {
    show("signin");
    say("This invitation link is no longer valid. Ask for a new one.", true);
  }
}

onSubmit("accept-form", async ({ password, given_name, family_name }) => {
  const result = await api("POST", "/v1/invitations/accept", {
    token: invitationToken(), password, given_name: given_name || undefined, family_name,
  });
  history.replaceState(null, "", location.pathname.replace(/accept-invitation$/, ""));
  await handleResult(result, null);
  say("Welcome! Your account is ready.");
});

// Profile, password, TOTP ---------------------------------------------------------------

async function showProfile() {
  const me = await api("GET", "/v1/me", undefined, { auth: true });
  const session = await api("GET", "/v1/auth/session", undefined, { auth: true });
  $("profile-email").textContent = me.email;
  $("profile-name").textContent = [me.given_name, me.family_name].filter(Boolean).join(" ") || "—";
  $("profile-verified").textContent = me.email_verified ? "yes" : "no";
  $("profile-groups").textContent = session.groups.join(", ") || "none";
  const form = $("profile-form");
  form.given_name.value = me.given_name || "";
  form.family_name.value = me.family_name || "";
  form.test_attribute1.value = (me.attributes && me.attributes.test_attribute1) || "";
  $("profile-mfa").textContent = me.mfa_enabled ? "on" : "off";
  $("totp-status").textContent = me.mfa_enabled
    ? "On: signing in asks for a code from your authenticator app."
    : "Off: add an authenticator app to protect your account with a second step.";
  $("totp-start").hidden = Boolean(me.mfa_enabled);
  $("totp-off").hidden = !me.mfa_enabled;
  $("totp-setup").hidden = true;
  $("totp-reauth").hidden = true;
  const wasShown = !$("profile").hidden;
  show("profile", { focus: !wasShown });
}

onSubmit("profile-form", async ({ given_name, family_name, test_attribute1 }) => {
  await api("PATCH", "/v1/me", {
    given_name: given_name || null, family_name, attributes: { test_attribute1 },
  }, { auth: true });
  await showProfile();
  say("Profile saved.");
});

onSubmit("password-form", async (fields, form) => {
  await api("POST", "/v1/me/password", fields, { auth: true });
  form.reset();
  // A password change ends every session, this one included: sign in again.
  accessToken = null;
  show("signin");
  say("Password changed. Sign in with the new password.");
});

function qrImage(text) {
  // qrcode-generator (vendor/qrcode.js, MIT): type 0 picks the smallest size that fits.
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  return qr.createDataURL(5, 4);
}

$("totp-start").addEventListener("click", () => run(async () => {
  const setup = await api("POST", "/v1/me/mfa/totp", undefined, { auth: true });
  $("totp-secret").textContent = setup.secret_code;
  $("totp-uri").textContent = setup.otpauth_uri;
  $("totp-uri").href = setup.otpauth_uri;
  $("totp-qr").src = qrImage(setup.otpauth_uri);
  $("totp-qr").removeAttribute("width");
  $("totp-qr").removeAttribute("height");
  $("totp-start").hidden = true;
  $("totp-setup").hidden = false;
  $("totp-code").focus();
}));

onSubmit("totp-form", async (fields, form) => {
  await api("POST", "/v1/me/mfa/totp/verify", fields, { auth: true });
  form.reset();
  await showProfile();
  say("Two-factor authentication is on.");
});

// Turning TOTP off is privileged: without a recent sign-in the server answers 403
// `reauthentication_required`, and the app asks for the password and sends it along.
// Turning it off ends every session, this one included: the app signs in again.
async function totpOff(body) {
  await api("DELETE", "/v1/me/mfa/totp", body, { auth: true });
  accessToken = null;
  show("signin");
  say("Two-factor authentication is off. Every session was signed out: sign in again.");
}

$("totp-off").addEventListener("click", () => run(async () => {
  try {
    await totpOff(undefined);
  } catch (error) {
    if (error.code !== "reauthentication_required") throw error;
    // Not a failure, a step: the server's own words go beside the password field.
    say("");
    $("totp-reauth-detail").textContent = error.message;
    $("totp-off").hidden = true;
    $("totp-reauth").hidden = false;
    $("reauth-password").focus();
  }
}));

onSubmit("reauth-form", async ({ current_password }, form) => {
  await totpOff({ current_password });
  form.reset();
});

$("signout").addEventListener("click", () => run(async () => {
  try {
    await api("POST", "/v1/auth/sign-out", undefined, { auth: true, csrf: true });
  } catch (error) {
    // The session was over already (or the network failed): this page forgets it anyway.
  } finally {
    accessToken = null;
    show("signin");
    say("Signed out.");
  }
}));

// Start-up: an invitation link, or a silent refresh from the cookie ---------------------

async function start() {
  setBusy(true);
  try {
    const token = invitationToken();
    if (token) return await showInvitation(token);
    if (await silentRefresh()) await showProfile();
    else show("signin", { focus: false });
  } catch (error) {
    show("signin", { focus: false });
  } finally {
    setBusy(false);
  }
}

start();
