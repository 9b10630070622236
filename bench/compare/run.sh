#!/usr/bin/env bash
# Side-by-side benchmark: Portcullis against the npm library oidc-provider.
#
#   bash bench/compare/run.sh                       5 alternated rounds, writes REPORT.md + chart.png
#   RUNS=7 bash bench/compare/run.sh                more rounds
#   QUICK=1 RUNS=1 bash bench/compare/run.sh        smoke run (short workloads)
#   COMPARE_POSTGRES=auto bash bench/compare/run.sh also Portcullis on PostgreSQL
#
# Environment:
#   RUNS                rounds to run (default 5). Each round runs every target once, in
#                       alternating order: odd rounds Portcullis first, even rounds
#                       oidc-provider first. REPORT.md takes the median over the rounds.
#   QUICK               1: pass --quick to the driver (short workloads, for a smoke run).
#   ALG                 ES256 (default) or RS256: the ID/logout token signing algorithm.
#   COMPARE_POSTGRES    unset, empty, "off" or "0" (default): Portcullis on SQLite only.
#                       "auto": also run Portcullis on PostgreSQL when `pg_isready -h 127.0.0.1`
#                       answers, as postgres://postgres@127.0.0.1:5432 (trust auth).
#                       A URL base such as postgres://postgres@127.0.0.1:5432 (no database
#                       name): also run Portcullis on PostgreSQL there. Each such run gets the
#                       database portcullis_compare dropped and created anew (it is dropped
#                       again at the end).
#   MEMORY_MAX_ENTRIES  capacity of oidc-provider's in-memory store (default 2000000), set
#                       large so that its LRU does not forget sessions during a run.
#   DRIVER_TIMEOUT      seconds one driver run may take before it is stopped (default 3600).
#
# Where things go:
#   bench/compare/results/<timestamp>/   raw results (git-ignored): meta.json, and per driver
#                                        run round-<i>-<target>-<store>.jsonl (its stdout) and
#                                        .log (its stderr)
#   bench/compare/REPORT.md, chart.png   the report (committed). Only a full run writes them:
#                                        with QUICK=1 or RUNS < 5 the report and chart are
#                                        written into the results folder instead.
#
# Needs: cargo, node >= 20, npm (npm registry), python3 with venv (PyPI), and for PostgreSQL
# psql and pg_isready. Every server listens on 127.0.0.1 only.
#
# Exit status: 0 when every driver run succeeded; non-zero when any failed (the report is
# still written from the runs that succeeded) or when something before the runs failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

RUNS=${RUNS:-5}
QUICK=${QUICK:-0}
ALG=${ALG:-ES256}
COMPARE_POSTGRES=${COMPARE_POSTGRES:-}
MEMORY_MAX_ENTRIES=${MEMORY_MAX_ENTRIES:-2000000}
DRIVER_TIMEOUT=${DRIVER_TIMEOUT:-3600}
PG_DB=portcullis_compare

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive whole number, not '$RUNS'"
[[ $QUICK == 0 || $QUICK == 1 ]] || die "QUICK must be 0 or 1, not '$QUICK'"
[[ $ALG == ES256 || $ALG == RS256 ]] || die "ALG must be ES256 or RS256, not '$ALG'"
[[ $MEMORY_MAX_ENTRIES =~ ^[1-9][0-9]*$ ]] || die "MEMORY_MAX_ENTRIES must be a positive whole number"
[[ $DRIVER_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "DRIVER_TIMEOUT must be a positive whole number of seconds"

# ---------------------------------------------------------------- PostgreSQL or not
pg_base=
case $COMPARE_POSTGRES in
  '' | off | 0) ;;
  auto)
    if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
      pg_base=postgres://postgres@127.0.0.1:5432
    else
      say "COMPARE_POSTGRES=auto: no PostgreSQL answers on 127.0.0.1:5432, running without it"
    fi
    ;;
  postgres://* | postgresql://*) pg_base=${COMPARE_POSTGRES%/} ;;
  *) die "COMPARE_POSTGRES must be empty, off, auto or a postgres:// URL base, not '$COMPARE_POSTGRES'" ;;
esac
# psql: no NOTICE chatter ("database ... does not exist, skipping"); errors still show.
export PGOPTIONS='--client-min-messages=warning'

# ---------------------------------------------------------------- prerequisites
missing=()
command -v cargo >/dev/null || missing+=("cargo (the Rust toolchain, e.g. via rustup)")
if ! command -v node >/dev/null; then
  missing+=("node >= 20 (Node.js)")
else
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  ((node_major >= 20)) || missing+=("node >= 20 (found $(node --version))")
fi
command -v npm >/dev/null || missing+=("npm (comes with Node.js; Debian: apt-get install npm)")
if ! command -v python3 >/dev/null; then
  missing+=("python3 (with the venv module)")
elif ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing+=("the python3 venv module (Debian: apt-get install python3-venv)")
fi
command -v timeout >/dev/null || missing+=("timeout (coreutils)")
if [[ -n $pg_base ]]; then
  command -v psql >/dev/null || missing+=("psql (Debian: apt-get install postgresql-client), for COMPARE_POSTGRES")
fi
if ((${#missing[@]})); then
  printf 'run.sh: missing prerequisites; please install:\n' >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi

# ---------------------------------------------------------------- temp folder and cleanup
tmp=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-compare.XXXXXX")
current_pid=  # the driver run in progress (its own process group, see run_one)

# running PID: the process exists and has not exited (a zombie waiting to be reaped has).
running() {
  local state=
  [[ -r /proc/$1/stat ]] || return 1
  read -r _ _ state _ <"/proc/$1/stat" || return 1
  [[ $state != Z ]]
}

cleanup() {
  if [[ -n $current_pid ]]; then
    # The driver and the server it started share the process group that `timeout` made.
    kill -TERM -- "-$current_pid" 2>/dev/null || kill -TERM "$current_pid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      running "$current_pid" || break
      sleep 0.5
    done
    kill -KILL -- "-$current_pid" 2>/dev/null || true
    wait "$current_pid" 2>/dev/null || true
  fi
  if [[ -n $pg_base ]]; then
    psql -q -X -d "$pg_base/postgres" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- build
say "build (cargo build --release)"
cargo build --release -p server --bin portcullis -p compare-driver --bin compare-driver
portcullis=$root/target/release/portcullis
driver=$root/target/release/compare-driver
[[ -x $portcullis ]] || die "the build did not produce $portcullis"
[[ -x $driver ]] || die "the build did not produce $driver"

# ---------------------------------------------------------------- oidc-provider
say "install oidc-provider (npm ci) into $tmp/op"
mkdir -p "$tmp/op"
cp "$here/oidc-provider/server.mjs" "$here/oidc-provider/package.json" \
  "$here/oidc-provider/package-lock.json" "$tmp/op/"
if ! (cd "$tmp/op" && npm ci --no-audit --no-fund --loglevel=error >"$tmp/npm.log" 2>&1); then
  cat "$tmp/npm.log" >&2
  die "npm ci failed (it needs the npm registry)"
fi
op_version=$(node -p 'require(process.argv[1]).version' "$tmp/op/node_modules/oidc-provider/package.json")
say "oidc-provider $op_version"

# ---------------------------------------------------------------- python for the report
say "python venv for report.py (pip install -r bench/compare/requirements.txt)"
python3 -m venv "$tmp/venv"
if ! "$tmp/venv/bin/pip" install --quiet --disable-pip-version-check \
  -r "$here/requirements.txt" >"$tmp/pip.log" 2>&1; then
  cat "$tmp/pip.log" >&2
  die "pip install failed (it needs PyPI)"
fi
py=$tmp/venv/bin/python

# ---------------------------------------------------------------- results folder, machine
stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=$here/results/$stamp
mkdir -p "$results"
failures=$results/failures.tsv  # round, target, store, exit status of each failed run
: >"$failures"

git_commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
git_dirty=false
[[ -n $(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null) ]] && git_dirty=true
pg_version=
if [[ -n $pg_base ]]; then
  pg_version=$(psql -qtAX -d "$pg_base/postgres" -c 'SHOW server_version' 2>/dev/null || echo unknown)
fi

os_name=
if [[ -r /etc/os-release ]]; then
  # shellcheck source=/dev/null
  os_name=$(. /etc/os-release && echo "${PRETTY_NAME:-}") || os_name=
fi

# write_meta FINISHED: meta.json from the machine and the settings (again at the end, with
# the finish time and the failed runs).
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
write_meta() {
  META_FINISHED=$1 META_STARTED=$started META_RUNS=$RUNS META_QUICK=$QUICK META_ALG=$ALG \
    META_NPROC=$(nproc) \
    META_MEM_KIB=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null || echo 0) \
    META_CPU=$( (lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1) || true) \
    META_KERNEL="$(uname -srm)" \
    META_OS=$os_name \
    META_RUSTC=$(rustc --version 2>/dev/null || echo unknown) \
    META_NODE=$(node --version) META_OP=$op_version \
    META_COMMIT=$git_commit META_DIRTY=$git_dirty \
    META_PG=${pg_base:+$pg_base/$PG_DB} META_PG_VERSION=$pg_version \
    META_MEMORY_MAX_ENTRIES=$MEMORY_MAX_ENTRIES META_FAILURES=$failures \
    python3 - "$results/meta.json" <<'PY'
import json, os, sys
e = os.environ
cpu = e['META_CPU']
if not cpu:
    try:
        cpu = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration):
        cpu = 'unknown'
failed = []
for line in open(e['META_FAILURES']):
    parts = line.rstrip('\n').split('\t')
    if len(parts) == 4:
        failed.append({'round': int(parts[0]), 'target': parts[1], 'store': parts[2], 'exit': int(parts[3])})
meta = {
    'date': e['META_STARTED'],
    'finished': e['META_FINISHED'] or None,
    'runs': int(e['META_RUNS']),
    'quick': e['META_QUICK'] == '1',
    'alg': e['META_ALG'],
    'machine': {
        'nproc': int(e['META_NPROC']),
        'memory_gib': round(int(e['META_MEM_KIB'] or 0) / 1024 / 1024, 1),
        'cpu': cpu,
        'kernel': e['META_KERNEL'],
        'os': e['META_OS'] or None,
    },
    'rustc': e['META_RUSTC'],
    'node': e['META_NODE'],
    'oidc_provider_version': e['META_OP'],
    'portcullis_commit': e['META_COMMIT'],
    'portcullis_dirty': e['META_DIRTY'] == 'true',
    'postgres': ({'url': e['META_PG'], 'server_version': e['META_PG_VERSION']} if e['META_PG'] else None),
    'oidc_provider_memory_max_entries': int(e['META_MEMORY_MAX_ENTRIES']),
    'failed_runs': failed,
}
with open(sys.argv[1], 'w') as f:
    json.dump(meta, f, indent=2)
    f.write('\n')
PY
}
write_meta ""

# ---------------------------------------------------------------- one driver run
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
new_secret() {
  python3 -c 'import secrets; print(secrets.token_hex(24))'  # 48 characters
}
recreate_db() {
  psql -q -X -v ON_ERROR_STOP=1 -d "$pg_base/postgres" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null
  psql -q -X -v ON_ERROR_STOP=1 -d "$pg_base/postgres" -c "CREATE DATABASE $PG_DB" >/dev/null
}

failed_count=0

# run_one ROUND TARGET STORE: one driver run against a freshly started server; appends its
# stdout to round-ROUND-TARGET-STORE.jsonl and its stderr to the matching .log.
run_one() {
  local round=$1 target=$2 store=$3
  local name=round-$round-$target-$store
  local port secret data rc=0 t0 envs=() cmd=() args=()
  port=$(free_port)
  secret=$(new_secret)
  case $target in
    portcullis)
      data=$tmp/data-$name
      rm -rf "$data"
      mkdir -p "$data"
      envs=(
        "PORTCULLIS_SERVER__LISTEN=127.0.0.1:$port"
        "PORTCULLIS_SERVER__EXTERNAL_URL=http://127.0.0.1:$port"
        "PORTCULLIS_ADMIN__INITIAL_TOKEN=$secret"
        "PORTCULLIS_FEATURES__BACK_CHANNEL_LOGOUT=true"
        "PORTCULLIS_DATABASE__DATA_DIR=$data"
        "PORTCULLIS_LOG__LEVEL=warn"
      )
      if [[ $store == postgres ]]; then
        if ! recreate_db; then
          say "round $round: $target ($store): could not recreate database $PG_DB"
          printf '%s\t%s\t%s\t%s\n' "$round" "$target" "$store" 1 >>"$failures"
          failed_count=$((failed_count + 1))
          return 0
        fi
        envs+=("PORTCULLIS_DATABASE__URL=$pg_base/$PG_DB")
      fi
      cmd=("$portcullis" start)
      ;;
    oidc-provider)
      envs=(
        "PORT=$port"
        "INITIAL_ACCESS_TOKEN=$secret"
        "ALG=$ALG"
        "MEMORY_MAX_ENTRIES=$MEMORY_MAX_ENTRIES"
      )
      cmd=(node "$tmp/op/server.mjs")
      ;;
  esac
  args=(--target "$target" --store "$store" --port "$port" --credential "$secret" --alg "$ALG")
  if [[ $QUICK == 1 ]]; then args+=(--quick); fi

  say "round $round/$RUNS: $target ($store) on 127.0.0.1:$port"
  t0=$SECONDS
  # `timeout` puts itself, the driver and the server the driver starts into one process
  # group of their own, whose id is $!: cleanup() stops that group if we are interrupted.
  timeout --kill-after=30 "$DRIVER_TIMEOUT" \
    env "${envs[@]}" "$driver" "${args[@]}" -- "${cmd[@]}" \
    >>"$results/$name.jsonl" 2>>"$results/$name.log" </dev/null &
  current_pid=$!
  wait "$current_pid" || rc=$?
  current_pid=
  if [[ $target == portcullis ]]; then rm -rf "$data"; fi

  local lines
  lines=$(grep -c . "$results/$name.jsonl" || true)
  if ((rc != 0)); then
    failed_count=$((failed_count + 1))
    printf '%s\t%s\t%s\t%s\n' "$round" "$target" "$store" "$rc" >>"$failures"
    if ((rc == 124)); then
      say "round $round: $target ($store) FAILED: stopped after DRIVER_TIMEOUT=${DRIVER_TIMEOUT}s ($lines result lines kept)"
    else
      say "round $round: $target ($store) FAILED with exit status $rc ($lines result lines kept); last lines of $name.log:"
    fi
    tail -n 15 "$results/$name.log" | sed 's/^/    /' >&2 || true
  else
    say "round $round: $target ($store) done in $((SECONDS - t0)) s, $lines result lines"
  fi
}

# ---------------------------------------------------------------- the rounds
portcullis_runs() {
  run_one "$1" portcullis sqlite
  if [[ -n $pg_base ]]; then run_one "$1" portcullis postgres; fi
}

say "results in ${results#"$root"/}; $RUNS round(s), ALG=$ALG, QUICK=$QUICK, PostgreSQL: ${pg_base:-off}"
for ((round = 1; round <= RUNS; round++)); do
  if ((round % 2 == 1)); then
    portcullis_runs "$round"
    run_one "$round" oidc-provider memory
  else
    run_one "$round" oidc-provider memory
    portcullis_runs "$round"
  fi
done
write_meta "$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# ---------------------------------------------------------------- report
if [[ $QUICK == 1 || $RUNS -lt 5 ]]; then
  out=$results/REPORT.md
  chart=$results/chart.png
  say "QUICK=1 or RUNS < 5: the report goes into the results folder, not bench/compare/REPORT.md"
else
  out=$here/REPORT.md
  chart=$here/chart.png
fi
report_rc=0
"$py" "$here/report.py" "$results" --out "$out" --chart "$chart" || report_rc=$?
if ((report_rc != 0)); then
  die "report.py failed (exit status $report_rc); raw results are in $results"
fi
say "report: ${out#"$root"/}, chart: ${chart#"$root"/}"

if ((failed_count > 0)); then
  say "$failed_count driver run(s) FAILED (listed in ${failures#"$root"/} and in the report's notes)"
  exit 1
fi
say "all driver runs succeeded"
