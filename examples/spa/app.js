// authsvc example SPA — plain JavaScript, no build step. Copy what you need.
//
// Token handling, the point of this example:
// - every auth call sends `X-Token-Transport: cookie`, so the refresh token comes back as
//   an HttpOnly `__Host-` cookie that JavaScript cannot read (XSS cannot steal it);
// - the access token is kept in a variable, never in localStorage;
// - on page load the app refreshes silently (the cookie does the work);
// - refresh and sign-out send `X-CSRF: 1`: with SameSite=Strict and the Origin check on
//   the server, another site cannot make the browser use the cookie.
"use strict";

const API = "";  // same origin as the page; set to "https://auth.example.com" otherwise
let accessToken = null;
let pending = null;  // a sign-in challenge: {challenge, session, email}

const $ = (id) => document.getElementById(id);

async function api(method, path, body, { auth = false, csrf = false, retry = true } = {}) {
  const headers = { "X-Token-Transport": "cookie" };
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
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error((data && data.detail) || response.statusText);
    error.code = data && data.code;
    error.status = response.status;
    throw error;
  }
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

function show(section) {
  for (const id of ["signin", "mfa", "newpassword", "accept", "profile"]) {
    $(id).hidden = id !== section;
  }
}

function say(text, isError = false) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

function formData(form) {
  return Object.fromEntries(new FormData(form).entries());
}

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
  else say(`Unsupported challenge ${result.challenge}`, true);
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const { email, password } = formData(event.target);
  try {
    await handleResult(await api("POST", "/v1/auth/sign-in", { email, password }), email);
    event.target.reset();
    say("");
  } catch (error) {
    say(error.message, true);
  }
});

async function answer(extra) {
  const result = await api("POST", "/v1/auth/challenge", {
    challenge: pending.challenge, session: pending.session, email: pending.email, ...extra,
  });
  await handleResult(result, pending.email);
}

$("mfa-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await answer({ code: formData(event.target).code });
    event.target.reset();
    say("");
  } catch (error) {
    say(error.message, true);
  }
});

$("newpassword-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await answer({ new_password: formData(event.target).new_password });
    event.target.reset();
  } catch (error) {
    say(error.message, true);
  }
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
    say("This invitation link is no longer valid.", true);
    show("signin");
  }
}

$("accept-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = invitationToken();
  const { password, given_name, family_name } = formData(event.target);
  try {
    const result = await api("POST", "/v1/invitations/accept", {
      token, password, given_name: given_name || undefined, family_name,
    });
    history.replaceState(null, "", location.pathname.replace(/accept-invitation$/, ""));
    say("Welcome! Your account is ready.");
    await handleResult(result, null);
  } catch (error) {
    say(error.message, true);
  }
});

// Profile, password, TOTP ---------------------------------------------------------------

async function showProfile() {
  const me = await api("GET", "/v1/me", undefined, { auth: true });
  const session = await api("GET", "/v1/auth/session", undefined, { auth: true });
  $("profile-email").textContent = me.email;
  const form = $("profile-form");
  form.given_name.value = me.given_name || "";
  form.family_name.value = me.family_name || "";
  form.test_attribute1.value = (me.attributes && me.attributes.test_attribute1) || "";
  $("profile-mfa").textContent = me.mfa_enabled ? "on" : "off";
  $("totp-start").hidden = Boolean(me.mfa_enabled);
  $("totp-off").hidden = !me.mfa_enabled;
  $("totp-setup").hidden = true;
  document.title = `authsvc — ${me.email} (${session.groups.join(", ") || "no groups"})`;
  show("profile");
}

$("profile-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const { given_name, family_name, test_attribute1 } = formData(event.target);
  try {
    await api("PATCH", "/v1/me", {
      given_name: given_name || null, family_name, attributes: { test_attribute1 },
    }, { auth: true });
    await showProfile();
    say("Profile saved.");
  } catch (error) {
    say(error.message, true);
  }
});

$("password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("POST", "/v1/me/password", formData(event.target), { auth: true });
    event.target.reset();
    // A password change ends every session, this one included: sign in again.
    accessToken = null;
    show("signin");
    say("Password changed. Sign in with the new password.");
  } catch (error) {
    say(error.message, true);
  }
});

$("totp-start").addEventListener("click", async () => {
  try {
    const setup = await api("POST", "/v1/me/mfa/totp", undefined, { auth: true });
    $("totp-secret").textContent = setup.secret_code;
    $("totp-uri").textContent = setup.otpauth_uri;
    $("totp-uri").href = setup.otpauth_uri;
    $("totp-setup").hidden = false;
  } catch (error) {
    say(error.message, true);
  }
});

$("totp-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("POST", "/v1/me/mfa/totp/verify", formData(event.target), { auth: true });
    event.target.reset();
    await showProfile();
    say("Two-factor authentication is on.");
  } catch (error) {
    say(error.message, true);
  }
});

$("totp-off").addEventListener("click", async () => {
  try {
    await api("DELETE", "/v1/me/mfa/totp", undefined, { auth: true });
    // Turning it off ends every session, this one included: sign in again.
    accessToken = null;
    show("signin");
    say("Two-factor authentication is off. Every session was signed out: sign in again.");
  } catch (error) {
    say(error.message, true);
  }
});

$("signout").addEventListener("click", async () => {
  try {
    await api("POST", "/v1/auth/sign-out", undefined, { auth: true, csrf: true });
  } finally {
    accessToken = null;
    show("signin");
    say("Signed out.");
  }
});

// Start-up: an invitation link, or a silent refresh from the cookie ---------------------

async function start() {
  const token = invitationToken();
  if (token) return showInvitation(token);
  try {
    if (await silentRefresh()) await showProfile();
    else show("signin");
  } catch (error) {
    show("signin");
  }
}

start();
