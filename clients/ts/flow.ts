// One full flow with the generated TypeScript client (openapi-typescript types + openapi-fetch):
// sign-up -> code from the dev outbox -> confirm -> sign-in -> /v1/me -> sign-out -> the old
// token refused. tests/frontend/test_clients.py generates schema.d.ts from a live
// `authsvc dev`, type-checks this file with `tsc --strict --noEmit`, then runs it.
import createClient from "openapi-fetch";
import type { paths } from "./schema.js";

const baseUrl = process.env.AUTHSVC_URL;
if (!baseUrl) throw new Error("set AUTHSVC_URL");
const api = createClient<paths>({ baseUrl });

function expect(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`unexpected: ${what}`);
}

const email = `ts-client-${Date.now()}@example.com`;
const password = "Correct-Horse-7";

const signUp = await api.POST("/v1/auth/sign-up", {
  body: { email, password, given_name: "Tess", family_name: "Script" },
});
expect(signUp.response.status === 202, `sign-up ${signUp.response.status}`);

const outbox = await api.GET("/dev/outbox", {
  params: { query: { to: email, kind: "sign_up_code" } },
});
// The outbox also answers HTML to browsers: a script gets the JSON list.
const messages = Array.isArray(outbox.data) ? outbox.data : [];
const code = messages[0]?.code;
expect(typeof code === "string", "a sign-up code in the dev outbox");

const confirm = await api.POST("/v1/auth/sign-up/confirm", { body: { email, code } });
expect(confirm.response.status === 204, `confirm ${confirm.response.status}`);

const signIn = await api.POST("/v1/auth/sign-in", { body: { email, password } });
expect(signIn.data?.kind === "tokens", `sign-in ${signIn.response.status}`);
const headers = { Authorization: `Bearer ${signIn.data.access_token}` };

const me = await api.GET("/v1/me", { headers });
expect(me.data?.email === email, `me ${me.response.status}`);

const signOut = await api.POST("/v1/auth/sign-out", { headers });
expect(signOut.response.status === 204, `sign-out ${signOut.response.status}`);

const after = await api.GET("/v1/me", { headers });
const problem = after.error as { code?: string } | undefined;
expect(after.response.status === 401, `old token ${after.response.status}`);

console.log(
  JSON.stringify({
    email,
    me: me.data.email,
    given_name: me.data.given_name,
    mfa_enabled: me.data.mfa_enabled,
    after_sign_out: { status: after.response.status, code: problem?.code },
  }),
);
