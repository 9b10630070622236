// Comparison target for the Portcullis benchmarks: an OpenID Provider built on the
// npm library `oidc-provider` (version pinned in package.json beside this file).
//
// Run it from a folder where `oidc-provider` is installed in ./node_modules, i.e. copy
// this file beside the node_modules that `npm ci` created (see README.md). ES modules do
// not consult NODE_PATH, so that variable is of no use here.
//
// Environment:
//   PORT                  listen port on 127.0.0.1 (required); issuer http://127.0.0.1:$PORT
//   INITIAL_ACCESS_TOKEN  bearer token that protects dynamic client registration (required)
//   ALG                   ES256 (default: one P-256 key) or RS256 (one RSA-2048 key)
//   COOKIE_KEYS           comma-separated keys for signing cookies (default: random per start)
//   MEMORY_MAX_ENTRIES    unset: the library's default in-memory adapter, unchanged (an LRU
//                         that holds between 1,000 and 2,000 entries, then forgets the least
//                         recently used). Set to N: the same adapter class over a store of
//                         capacity N. See README.md, "Storage".
//
// Every request follows the same path a real deployment would take; only the user
// interaction is automatic: the user is always `alice`, and every requested scope and
// claim is granted.

import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';

// Set before Koa (inside oidc-provider) is loaded: it reads NODE_ENV when the app is made.
process.env.NODE_ENV ||= 'production';

const { default: Provider } = await import('oidc-provider');

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`server.mjs: environment variable ${name} is required`);
    process.exit(2);
  }
  return value;
}

const PORT = Number.parseInt(required('PORT'), 10);
const INITIAL_ACCESS_TOKEN = required('INITIAL_ACCESS_TOKEN');
const ALG = process.env.ALG || 'ES256';
const ISSUER = `http://127.0.0.1:${PORT}`;
const ACCOUNT = 'alice';

if (!['ES256', 'RS256'].includes(ALG)) {
  console.error(`server.mjs: ALG must be ES256 or RS256, not ${ALG}`);
  process.exit(2);
}

// One signing key, made at start. oidc-provider takes private JWKs in `jwks`.
function signingKey(alg) {
  const { privateKey } = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}` };
}

const cookieKeys = process.env.COOKIE_KEYS
  ? process.env.COOKIE_KEYS.split(',').filter(Boolean)
  : [randomBytes(32).toString('base64url')];

// Storage. Sessions, grants, interactions, codes, tokens and the registered clients all
// live in oidc-provider's in-memory adapter, which is how the library is usually
// benchmarked. Left unconfigured (`adapter: undefined`) the library uses its default
// adapter, whose store is an LRU of 1,000 entries (lib/adapters/memory_adapter.js,
// lib/helpers/lru.js). MEMORY_MAX_ENTRIES keeps the very same adapter code and only gives
// it a larger store, for runs that keep more live sessions than that.
let adapter;
if (process.env.MEMORY_MAX_ENTRIES) {
  const maxSize = Number.parseInt(process.env.MEMORY_MAX_ENTRIES, 10);
  const { default: MemoryAdapter } = await import('oidc-provider/lib/adapters/memory_adapter.js');
  const { default: LRU } = await import('oidc-provider/lib/helpers/lru.js');
  const store = new LRU({ maxSize });
  adapter = (model) => new MemoryAdapter(model, store, 15 /* = clockTolerance below */);
}

const page = (title, body) => `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${title}</title></head><body>\n${body}\n</body></html>\n`;

const configuration = {
  adapter,
  clockTolerance: 15,
  jwks: { keys: [signingKey(ALG)] },
  cookies: {
    keys: cookieKeys,
    // Plain http on 127.0.0.1: no `secure` flag is set here, and oidc-provider only adds
    // it when the request itself arrived over https (ctx.secure), so cookies flow over http.
    long: { httpOnly: true, sameSite: 'lax' },
    short: { httpOnly: true, sameSite: 'lax' },
  },
  // Clients that register without these get the benchmark's defaults.
  clientDefaults: {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: ALG,
  },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub };
      },
    };
  },
  features: {
    devInteractions: { enabled: false }, // our own routes below
    registration: {
      enabled: true,
      initialAccessToken: INITIAL_ACCESS_TOKEN, // a string: that one bearer token is accepted
    },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // The confirmation page. `form` is the library's own form (action
      // /session/end/confirm, hidden input xsrf). We add `logout=yes` so that submitting
      // the form as it is ends the whole session, and repeat the xsrf value in a
      // response header so that a load driver needs no HTML parsing.
      async logoutSource(ctx, form) {
        const xsrf = ctx.oidc.session.state.secret;
        const withLogout = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
        ctx.set('X-Logout-Xsrf', xsrf);
        ctx.type = 'html';
        ctx.body = page('Sign out', `${withLogout}\n<button type="submit" form="op.logoutForm">Sign out</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.type = 'html';
        ctx.body = page('Signed out', '<p>Signed out.</p>');
      },
    },
    // PKCE: allowed for every client (S256 is the only method oidc-provider accepts);
    // required only where the library requires it by default (public clients).
  },
  // loadExistingGrant is left at the library default: it loads the grant named by the
  // interaction result, else the grant this session already holds for the client
  // (session.grantIdFor(clientId)). So after the first consent, later authorization
  // requests of the same session and client need no interaction at all.
  // Lifetimes: the library defaults, written out so it prints no notice about them.
  ttl: {
    AccessToken: 60 * 60,
    AuthorizationCode: 60,
    IdToken: 60 * 60,
    Interaction: 60 * 60,
    Session: 14 * 24 * 60 * 60,
    Grant: 14 * 24 * 60 * 60,
    RefreshToken: 14 * 24 * 60 * 60,
  },
  // oidc-provider refuses by default to send any outgoing request (back-channel logout
  // included) to loopback and other special-use addresses: lib/helpers/fetch_request.js
  // hands `fetch` an undici dispatcher that destroys such sockets. Every back-channel
  // URI of this benchmark is on 127.0.0.1, so this `fetch` drops that dispatcher and
  // uses Node's global one. The 2.5 s timeout the library sets stays in place.
  fetch(url, options) {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', Object.entries(out)
      .map(([key, value]) => `<p>${key}: ${String(value).replace(/[<>&"]/g, '')}</p>`).join('\n'));
  },
};

const provider = new Provider(ISSUER, configuration);

// Failures are rare and worth seeing; nothing is logged per request.
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.on('backchannel.error', (ctx, err, client) => console.error(`backchannel.error ${client.clientId}: ${err.message}`));

// The interaction: sign `alice` in and grant everything asked for, then send the
// browser back to the authorization endpoint's resume URL (303).
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  const result = {};
  let accountId = details.session?.accountId;

  if (prompt.name === 'login') {
    accountId = ACCOUNT;
    result.login = { accountId };
  }

  // Grant in the same step, whichever prompt brought us here: at the first sign-in the
  // login and the consent are finished together, so the provider does not send the
  // browser to a second interaction for the consent.
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (params.scope) grant.addOIDCScope(params.scope);
  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
  if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
  if (missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  result.consent = { grantId: await grant.save() };

  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

const handleProvider = provider.callback();
const server = createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      if (!res.headersSent) {
        res.statusCode = err.statusCode || 500;
        res.setHeader('Content-Type', 'text/plain');
      }
      res.end(`${err.name}: ${err.message}\n`);
      if (res.statusCode >= 500) console.error('interaction', err);
    });
    return;
  }
  handleProvider(req, res);
});

server.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`ready ${ISSUER}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)).closeAllConnections());
}
