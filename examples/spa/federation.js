// "Sign in with Google" (and every other provider authsvc lists) — a separate file so that
// any SPA can add it: include it after its own script and give it a place for the buttons.
//
// The flow (authsvc does the OAuth part; the page never sees a code verifier or a token
// in a URL):
// 1. GET /v1/auth/federation/providers → one button per provider;
// 2. click → POST /v1/auth/federation/{provider}/start {redirect_uri: this page} (sets a
//    short-lived cookie binding the sign-in to this browser) → go to authorization_url;
// 3. the provider (through Cognito's hosted UI) sends the browser to authsvc's callback,
//    which sends it back here with #handoff_code=… (one use, 60 s);
// 4. POST /v1/auth/federation/exchange {handoff_code} with X-Token-Transport: cookie → the
//    refresh token lands in the HttpOnly cookie; reloading lets the app's silent refresh
//    start the session as after any sign-in.
"use strict";

(function federation() {
  const API = "";  // same origin as the page, like app.js
  const LABELS = {
    google: "Google", facebook: "Facebook", amazon: "Amazon", apple: "Apple",
  };

  async function call(method, path, body, headers = {}) {
    const response = await fetch(API + path, {
      method,
      credentials: "include",
      headers: body === undefined ? headers : { "Content-Type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new Error((data && data.detail) || response.statusText);
    return data;
  }

  function here() {
    return window.location.origin + window.location.pathname;
  }

  function report(text) {
    const message = document.getElementById("message");
    if (message) { message.textContent = text; message.className = "error"; }
  }

  async function finish(handoffCode) {
    // The code must not stay in the address bar or the history.
    history.replaceState(null, "", window.location.pathname + window.location.search);
    try {
      await call("POST", "/v1/auth/federation/exchange", { handoff_code: handoffCode },
        { "X-Token-Transport": "cookie" });
      window.location.reload();  // the app's start-up refresh now finds the cookie
    } catch (error) {
      report(`Sign-in failed: ${error.message}`);
    }
  }

  async function buttons() {
    const signin = document.getElementById("signin");
    if (!signin) return;
    let providers;
    try {
      providers = (await call("GET", "/v1/auth/federation/providers")).items;
    } catch (error) {
      return;  // federation not offered: no buttons
    }
    if (!providers.length) return;
    const box = document.createElement("div");
    box.id = "federation";
    for (const provider of providers) {
      const button = document.createElement("button");
      button.type = "button";
      button.id = `federation-${provider.name.toLowerCase()}`;
      button.textContent = `Sign in with ${LABELS[provider.kind] || provider.name}`;
      button.addEventListener("click", async () => {
        try {
          const started = await call(
            "POST", `/v1/auth/federation/${encodeURIComponent(provider.name)}/start`,
            { redirect_uri: here() });
          window.location.assign(started.authorization_url);
        } catch (error) {
          report(`Sign-in with ${provider.name} failed: ${error.message}`);
        }
      });
      const line = document.createElement("p");
      line.appendChild(button);
      box.appendChild(line);
    }
    signin.appendChild(box);
  }

  const back = new URLSearchParams(window.location.hash.slice(1));
  const handoff = back.get("handoff_code");
  if (handoff) finish(handoff);
  else {
    if (back.get("error")) {
      // authsvc sent the browser back with #error=<code>&error_description=… (cancelled at
      // the provider, an expired sign-in, …): say so, and offer the buttons again.
      history.replaceState(null, "", window.location.pathname + window.location.search);
      report(`Sign-in failed: ${back.get("error_description") || back.get("error")}`);
    }
    buttons();
  }
})();
