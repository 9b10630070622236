#!/usr/bin/env bash
# Smoke test of the oidc-provider comparison server (server.mjs): installs the pinned
# oidc-provider into a temporary folder, starts the server and a back-channel receiver on
# free ports of 127.0.0.1, and walks the whole conversation a load driver performs, with
# curl and a cookie jar. Exits non-zero at the first thing that is not as expected.
#
#   bash bench/compare/oidc-provider/smoke.sh        (KEEP_TMP=1 keeps the temporary folder)
#
# Needs node (>= 20), npm (the npm registry), curl, jq, openssl and python3.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/op-smoke.XXXXXX")
server_pid=
receiver_pid=

cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
  [[ -n $receiver_pid ]] && kill "$receiver_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [[ ${KEEP_TMP:-} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  if [[ -f $tmp/server.err ]] && [[ -s $tmp/server.err ]]; then
    echo "--- server stderr:" >&2
    cat "$tmp/server.err" >&2
  fi
  exit 1
}

for tool in node npm curl jq openssl python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# Prints a JWT's header and claims as two compact JSON lines.
jwt_parts() {
  python3 - "$1" <<'PY'
import base64, json, sys
for part in sys.argv[1].split('.')[:2]:
    print(json.dumps(json.loads(base64.urlsafe_b64decode(part + '=' * (-len(part) % 4))), separators=(',', ':')))
PY
}

# ---------------------------------------------------------------- install
echo "== install (npm ci) into $tmp"
cp "$here/package.json" "$here/package-lock.json" "$here/server.mjs" "$tmp/"
(cd "$tmp" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>"$tmp/npm.err") \
  || { cat "$tmp/npm.err" >&2; fail "npm ci"; }
echo "oidc-provider $(jq -r .version "$tmp/node_modules/oidc-provider/package.json") installed"

# ---------------------------------------------------------------- back-channel receiver
# Records every POST as one JSON line {path, body, t} (t: seconds since the epoch, when it
# arrived) and answers 200 after DELAY_MS, so that the timing of the confirm request shows
# whether the provider sends its logout requests in parallel or one after another.
cat >"$tmp/receiver.py" <<'PY'
import json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

record, port_file, delay = sys.argv[1], sys.argv[2], int(os.environ.get('DELAY_MS', '0')) / 1000
lock = threading.Lock()

class Receiver(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def do_POST(self):
        arrived = time.time()
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0)).decode()
        with lock, open(record, 'a') as f:
            f.write(json.dumps({'path': self.path, 'body': body, 't': arrived}) + '\n')
        time.sleep(delay)
        self.send_response(200)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(('127.0.0.1', 0), Receiver)
with open(port_file, 'w') as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
PY
DELAY_MS=300 python3 "$tmp/receiver.py" "$tmp/received.jsonl" "$tmp/receiver.port" &
receiver_pid=$!

# ---------------------------------------------------------------- server
port=$(free_port)
ISSUER="http://127.0.0.1:$port"
IAT=$(openssl rand -hex 16)
(cd "$tmp" && PORT=$port INITIAL_ACCESS_TOKEN=$IAT exec node server.mjs >"$tmp/server.out" 2>"$tmp/server.err") &
server_pid=$!
for _ in $(seq 100); do
  grep -q '^ready ' "$tmp/server.out" 2>/dev/null && [[ -s $tmp/receiver.port ]] && break
  kill -0 "$server_pid" 2>/dev/null || fail "server exited"
  sleep 0.1
done
grep -qx "ready $ISSUER" "$tmp/server.out" || fail "server did not print 'ready $ISSUER'"
rport=$(cat "$tmp/receiver.port")
echo "== server: $(cat "$tmp/server.out"); receiver on 127.0.0.1:$rport"

# ---------------------------------------------------------------- discovery
echo "== discovery"
disc=$(curl -fsS "$ISSUER/.well-known/openid-configuration") || fail "discovery"
jq -e --arg iss "$ISSUER" '.issuer == $iss and .backchannel_logout_supported == true
  and .backchannel_logout_session_supported == true and (.code_challenge_methods_supported | index("S256"))
  and (.id_token_signing_alg_values_supported | index("ES256"))' <<<"$disc" >/dev/null \
  || fail "discovery document: $disc"
jq -r '"  \(.authorization_endpoint)\n  \(.token_endpoint)\n  \(.registration_endpoint)\n  \(.end_session_endpoint)\n  \(.jwks_uri)"' <<<"$disc"
REG=$(jq -r .registration_endpoint <<<"$disc")
AUTHZ=$(jq -r .authorization_endpoint <<<"$disc")
TOKEN=$(jq -r .token_endpoint <<<"$disc")
END=$(jq -r .end_session_endpoint <<<"$disc")
jwks=$(curl -fsS "$(jq -r .jwks_uri <<<"$disc")") || fail "jwks"
jq -e '.keys | length == 1 and .[0].kty == "EC" and .[0].crv == "P-256" and .[0].alg == "ES256" and (.[0] | has("d") | not)' \
  <<<"$jwks" >/dev/null || fail "jwks: $jwks"

# ---------------------------------------------------------------- registration
REDIRECT_URI=http://127.0.0.1:9/cb
declare -A CID SECRET
echo "== register two clients"
for n in 1 2; do
  meta=$(jq -nc --arg bc "http://127.0.0.1:$rport/logout/$n" --arg ru "$REDIRECT_URI" \
    '{redirect_uris: [$ru], token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: "ES256", backchannel_logout_uri: $bc,
      backchannel_logout_session_required: true, grant_types: ["authorization_code"],
      response_types: ["code"]}')
  resp=$(curl -sS -w '\n%{http_code}' -H "Authorization: Bearer $IAT" -H 'Content-Type: application/json' \
    --data "$meta" "$REG")
  [[ ${resp##*$'\n'} == 201 ]] || fail "registration $n: $resp"
  body=${resp%$'\n'*}
  CID[$n]=$(jq -r .client_id <<<"$body")
  SECRET[$n]=$(jq -r .client_secret <<<"$body")
  [[ ${CID[$n]} != null && ${SECRET[$n]} != null ]] || fail "registration $n: $body"
  echo "  client $n: 201, client_id ${CID[$n]}, fields: $(jq -r 'keys | join(" ")' <<<"$body")"
done
# Without the initial access token registration must be refused.
code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data "$meta" "$REG")
[[ $code == 401 ]] || fail "registration without initial access token answered $code, not 401"

# ---------------------------------------------------------------- authorization
JAR=$tmp/cookies.txt
: >"$JAR"

# authorize N: one authorization request for client N, following the redirects by hand
# (the last one points at the client's redirect_uri, which is never fetched). Sets CODE,
# VERIFIER, HOPS and AUTH_TIME (the last request's time), and prints each hop with the
# cookies it set.
authorize() {
  local n=$1 quiet=${2:-} state nonce url out status location hdrs cookies
  VERIFIER=$(openssl rand 48 | b64url)
  local challenge; challenge=$(printf %s "$VERIFIER" | openssl dgst -sha256 -binary | b64url)
  state=$(openssl rand -hex 8)
  nonce=$(openssl rand -hex 8)
  url="$AUTHZ?client_id=${CID[$n]}&response_type=code&scope=openid&redirect_uri=$(jq -rn --arg u "$REDIRECT_URI" '$u|@uri')&state=$state&nonce=$nonce&code_challenge=$challenge&code_challenge_method=S256"
  HOPS=0
  while :; do
    hdrs=$tmp/hdrs
    out=$(curl -sS -o /dev/null -D "$hdrs" -b "$JAR" -c "$JAR" -w '%{http_code} %{redirect_url} %{time_total}' "$url") \
      || fail "GET $url"
    read -r status location t <<<"$out"
    HOPS=$((HOPS + 1))
    cookies=$(grep -i '^set-cookie:' "$hdrs" | sed -E 's/^[Ss]et-[Cc]ookie: ([^=]+)=.*/\1/' | tr '\n' ' ' || true)
    [[ -n $quiet ]] || printf '  %d. GET %s -> %s %s  [set-cookie: %s] %ss\n' \
      "$HOPS" "${url#"$ISSUER"}" "$status" "${location#"$ISSUER"}" "${cookies:-none}" "$t"
    [[ $status == 303 || $status == 302 ]] || fail "expected a redirect, got $status at $url"
    AUTH_TIME=$t
    if [[ $location == "$REDIRECT_URI"* ]]; then break; fi
    [[ $HOPS -lt 8 ]] || fail "too many redirects"
    url=$location
  done
  [[ $location == *"state=$state"* ]] || fail "state not returned: $location"
  [[ $location == *"iss=$(jq -rn --arg u "$ISSUER" '$u|@uri')"* ]] || fail "iss not returned: $location"
  CODE=$(sed -E 's/.*[?&]code=([^&]+).*/\1/' <<<"$location")
  [[ -n $CODE && $CODE != "$location" ]] || fail "no code in $location"
}

# exchange N: code -> tokens with client_secret_basic and the PKCE verifier. Sets
# ID_TOKEN, ACCESS_TOKEN and EXCHANGE_TIME.
exchange() {
  local n=$1 resp body
  resp=$(curl -sS -u "${CID[$n]}:${SECRET[$n]}" -w '\n%{http_code} %{time_total}' \
    --data-urlencode grant_type=authorization_code --data-urlencode "code=$CODE" \
    --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER" "$TOKEN")
  body=${resp%$'\n'*}
  read -r status EXCHANGE_TIME <<<"${resp##*$'\n'}"
  [[ $status == 200 ]] || fail "token endpoint answered $status: $body"
  ID_TOKEN=$(jq -r .id_token <<<"$body")
  ACCESS_TOKEN=$(jq -r .access_token <<<"$body")
  [[ $ID_TOKEN != null && $ACCESS_TOKEN != null ]] || fail "token response: $body"
  TOKEN_FIELDS=$(jq -c 'with_entries(if (.key | test("token$")) then .value = "..." else . end)' <<<"$body")
}

echo "== first sign-in, client 1 (no session yet)"
authorize 1
[[ $HOPS == 3 ]] || fail "first sign-in took $HOPS requests, expected 3"
exchange 1
ID_TOKEN_1=$ID_TOKEN
echo "  token: 200 in ${EXCHANGE_TIME}s: $TOKEN_FIELDS; id_token header+claims:"
jwt_parts "$ID_TOKEN_1" | sed 's/^/    /'

echo "== client 2 in the same session (first consent for client 2)"
authorize 2
[[ $HOPS == 3 ]] || fail "consent for client 2 took $HOPS requests, expected 3"
exchange 2
ID_TOKEN_2=$ID_TOKEN
echo "  token: 200 in ${EXCHANGE_TIME}s"

echo "== client 1 again: existing session and grant, no interaction"
authorize 1
[[ $HOPS == 1 ]] || fail "repeat authorization took $HOPS requests, expected 1"
exchange 1
echo "  token: 200 in ${EXCHANGE_TIME}s"
status=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ACCESS_TOKEN" "$ISSUER/me")
[[ $status == 200 ]] || fail "userinfo answered $status"

echo "== timing: 40 x (authorize with the existing session + code exchange), client 1"
times=()
atimes=()
for _ in $(seq 40); do
  authorize 1 quiet
  [[ $HOPS == 1 ]] || fail "repeat authorization took $HOPS requests, expected 1"
  atimes+=("$AUTH_TIME")
  exchange 1
  times+=("$EXCHANGE_TIME")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "  code exchange (curl time_total, new connection each): min %.1f ms, median %.1f ms, max %.1f ms\n", a[1]*1000, a[int((NR+1)/2)]*1000, a[NR]*1000}'
printf '%s\n' "${atimes[@]}" | sort -n | awk '{a[NR]=$1} END {printf "  authorize with the session (one 303, same measure):      min %.1f ms, median %.1f ms, max %.1f ms\n", a[1]*1000, a[int((NR+1)/2)]*1000, a[NR]*1000}'

echo "== a code is single-use; its replay revokes the grant and its tokens"
status=$(curl -sS -o /dev/null -w '%{http_code}' -u "${CID[1]}:${SECRET[1]}" --data-urlencode grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER" "$TOKEN")
[[ $status == 400 ]] || fail "a reused code answered $status, not 400"
status=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ACCESS_TOKEN" "$ISSUER/me")
[[ $status == 401 ]] || fail "userinfo with a token of the replayed code's grant answered $status, not 401"
authorize 1 quiet
echo "  replay: 400; that grant's access token: 401; next authorization of client 1 took $HOPS requests (consent again)"
exchange 1
ID_TOKEN_1=$ID_TOKEN

# ---------------------------------------------------------------- RP-initiated logout
echo "== RP-initiated logout with client 1's id_token, confirm with logout=yes"
sid1=$(jwt_parts "$ID_TOKEN_1" | sed -n 2p | jq -r .sid)
sid2=$(jwt_parts "$ID_TOKEN_2" | sed -n 2p | jq -r .sid)
: >"$tmp/received.jsonl"
page=$(curl -sS -D "$tmp/hdrs" -b "$JAR" -c "$JAR" -w '\n%{http_code}' \
  "$END?id_token_hint=$ID_TOKEN_1") || fail "GET end_session"
[[ ${page##*$'\n'} == 200 ]] || fail "end_session answered ${page##*$'\n'}: $page"
page=${page%$'\n'*}
xsrf=$(sed -nE 's/.*name="xsrf" value="([^"]+)".*/\1/p' <<<"$page" | head -n1)
xsrf_header=$(sed -nE 's/^[Xx]-[Ll]ogout-[Xx]srf: ([^[:space:]]+).*/\1/p' "$tmp/hdrs")
[[ -n $xsrf && $xsrf == "$xsrf_header" ]] || fail "xsrf not found (body '$xsrf', header '$xsrf_header'): $page"
grep -q 'name="logout" value="yes"' <<<"$page" || fail "form lacks logout=yes: $page"
echo "  1. GET /session/end?id_token_hint=... -> 200, set-cookie: $(grep -i '^set-cookie:' "$tmp/hdrs" | sed -E 's/^[Ss]et-[Cc]ookie: ([^=]+)=.*/\1/' | tr '\n' ' ')"
echo "     form: $(grep -o '<form.*</form>' <<<"$page")"
out=$(curl -sS -o /dev/null -D "$tmp/hdrs" -b "$JAR" -c "$JAR" -w '%{http_code} %{redirect_url} %{time_total}' \
  --data-urlencode "xsrf=$xsrf" --data-urlencode logout=yes "$ISSUER/session/end/confirm") || fail "POST confirm"
read -r status location confirm_time <<<"$out"
[[ $status == 303 ]] || fail "confirm answered $status"
echo "  2. POST /session/end/confirm xsrf=...&logout=yes -> $status ${location#"$ISSUER"} in ${confirm_time}s, set-cookie: $(grep -i '^set-cookie:' "$tmp/hdrs" | sed -E 's/^([^;]*);.*/\1/; s/^[Ss]et-[Cc]ookie: //' | tr '\n' ' ')"
# The back-channel requests were awaited before the 303 (see README): no waiting needed.
lines=$(wc -l <"$tmp/received.jsonl")
[[ $lines == 2 ]] || fail "receiver got $lines back-channel requests when confirm returned, expected 2"
python3 - "$tmp/received.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
spread = max(r['t'] for r in rows) - min(r['t'] for r in rows)
print('  back-channel requests arrived %.1f ms apart: %s' % (spread * 1000, ', '.join(r['path'] for r in rows)))
PY
if awk -v t="$confirm_time" 'BEGIN { exit !(t < 0.55) }'; then
  echo "  confirm took ${confirm_time}s with a receiver that answers after 300 ms: the two requests went out in parallel"
else
  echo "  confirm took ${confirm_time}s with a receiver that answers after 300 ms: the two requests went out one after another"
fi

# Check both logout tokens: claims, and signature against the provider's JWKS (jose, the
# library oidc-provider itself uses, from the temporary node_modules).
cat >"$tmp/verify.mjs" <<'JS'
import { createLocalJWKSet, jwtVerify } from 'jose';
const [token, jwks, issuer, audience] = process.argv.slice(2);
const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(JSON.parse(jwks)), {
  issuer, audience, typ: 'logout+jwt', algorithms: ['ES256'],
});
console.log(JSON.stringify({ protectedHeader, payload }));
JS
for n in 1 2; do
  token=$(jq -r --arg p "/logout/$n" 'select(.path == $p) | .body' "$tmp/received.jsonl" \
    | python3 -c 'import sys, urllib.parse; print(urllib.parse.parse_qs(sys.stdin.read())["logout_token"][0])') \
    || fail "no logout_token posted to /logout/$n"
  verified=$(cd "$tmp" && node verify.mjs "$token" "$jwks" "$ISSUER" "${CID[$n]}") || fail "logout token $n does not verify"
  sid=$([[ $n == 1 ]] && echo "$sid1" || echo "$sid2")
  jq -e --arg sid "$sid" '.protectedHeader.typ == "logout+jwt" and .protectedHeader.alg == "ES256"
    and .payload.sid == $sid and .payload.sub == "alice" and (.payload | has("nonce") | not)
    and (.payload.events | has("http://schemas.openid.net/event/backchannel-logout"))' <<<"$verified" >/dev/null \
    || fail "logout token $n: $verified"
  if [[ $n == 1 ]]; then
    echo "  logout_token posted to /logout/1 (signature verified against the JWKS):"
    jwt_parts "$token" | sed 's/^/    /'
  fi
done
echo "  both logout tokens: typ logout+jwt, alg ES256, sub alice, sid = the id_token's sid, events claim"

# After the logout the session is gone: a new authorization request needs the interaction.
out=$(curl -sS -o /dev/null -b "$JAR" -c "$JAR" -w '%{http_code} %{redirect_url}' \
  "$AUTHZ?client_id=${CID[1]}&response_type=code&scope=openid&redirect_uri=$(jq -rn --arg u "$REDIRECT_URI" '$u|@uri')&code_challenge=$(openssl rand 32 | b64url)&code_challenge_method=S256")
[[ $out == "303 $ISSUER/interaction/"* ]] || fail "after logout expected a redirect to the interaction, got: $out"
echo "  after logout: GET /auth -> ${out%% *} ${out#* }" | sed "s#$ISSUER##"

if grep -v 'oidc-provider WARNING' "$tmp/server.err" | grep -q .; then fail "server wrote errors"; fi
echo "PASS"
