// oidc-provider (a certified OpenID Provider) standing in for Cognito's hosted UI in
// tests/federation: the same /oauth2/authorize, /oauth2/token and /oauth2/revoke paths,
// PKCE S256 required, and JWT access tokens with Cognito's claims (token_use, client_id,
// username) so that authsvc handles them like Cognito's.
//
// Environment: OP_PORT, OP_CLIENT_ID, OP_CLIENT_SECRET (empty: a public client),
// OP_PUBLIC_CLIENT_ID (optional second client, public), OP_REDIRECT_URIS (comma-separated). Prints "ready <issuer>" when listening.
//
// The login page is /interaction/:uid. A test finishes it with ?login=<account id>
// (signs in and consents) or ?deny=1 (the user cancels: access_denied).
import Provider from "oidc-provider";

const port = Number(process.env.OP_PORT || 0);
const issuer = `http://127.0.0.1:${port}`;
const clientId = process.env.OP_CLIENT_ID;
const clientSecret = process.env.OP_CLIENT_SECRET || "";
const redirectUris = (process.env.OP_REDIRECT_URIS || "").split(",").filter(Boolean);
const resource = "urn:authsvc";

const client = {
  client_id: clientId,
  redirect_uris: redirectUris,
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: clientSecret ? "client_secret_basic" : "none",
  ...(clientSecret ? { client_secret: clientSecret } : {}),
};

// A second, public client (no secret): authsvc then names itself in the token request body.
const publicClient = process.env.OP_PUBLIC_CLIENT_ID
  ? [{
      client_id: process.env.OP_PUBLIC_CLIENT_ID,
      redirect_uris: redirectUris,
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    }]
  : [];

const provider = new Provider(issuer, {
  clients: [client, ...publicClient],
  cookies: { keys: ["authsvc-test-op-cookie-key-0123456789"] },
  pkce: { required: () => true },
  routes: {
    authorization: "/oauth2/authorize",
    token: "/oauth2/token",
    revocation: "/oauth2/revoke",
    userinfo: "/oauth2/userInfo",
    jwks: "/.well-known/jwks.json",
  },
  scopes: ["openid", "email", "profile", "offline_access"],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["given_name", "family_name"],
  },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: "",
        audience: resource,
        accessTokenTTL: 3600,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
  // What Cognito puts in its access tokens and authsvc relies on.
  extraTokenClaims: (_ctx, token) =>
    token.kind === "AccessToken"
      ? { token_use: "access", client_id: token.clientId, username: token.accountId }
      : undefined,
  issueRefreshToken: async (_ctx, c) => c.grantTypeAllowed("refresh_token"),
  findAccount: (_ctx, id) => ({
    accountId: id,
    claims: () => ({
      sub: id,
      email: `${id}@op.example`,
      email_verified: true,
      given_name: id,
      family_name: "Tester",
    }),
  }),
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
});

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match || ctx.method !== "GET") return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  let result;
  if (ctx.query.deny) {
    result = { error: "access_denied", error_description: "The user cancelled." };
  } else if (ctx.query.login) {
    const accountId = String(ctx.query.login);
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: details.params.client_id });
    const missing = details.prompt.details || {};
    grant.addOIDCScope(details.params.scope);
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(" "));
    }
    grant.addResourceScope(resource, "");
    result = { login: { accountId }, consent: { grantId: await grant.save() } };
  } else {
    ctx.type = "html";
    ctx.body = `<!doctype html><p>login for ${details.params.client_id}</p>`;
    return undefined;
  }
  const redirectTo = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: false,
  });
  ctx.status = 303;
  ctx.redirect(redirectTo);
  return undefined;
});

const server = provider.listen(port, "127.0.0.1", () => {
  process.stdout.write(`ready ${issuer}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
