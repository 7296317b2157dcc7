#!/usr/bin/env bash
# Soak: dcrgate (release build, the seed policy, 2 proxy threads) under mixed new-connection and
# keep-alive load for SOAK_DURATION seconds, everything on 127.0.0.1. Passes only with zero
# transport errors and every answer a 200.
#
# Load, repeated until the time is up (the sequence that once made the head-timeout guard of a
# finished connection cut a live one reusing its descriptor and addresses):
#   10 s of new connections (2 at a time, a full handshake each), 2 s of keep-alive, then 12 s of
#   keep-alive; and, the whole time, 2 paced keep-alive connections (20 requests/s in all) whose
#   idle gaps let head clocks run.
#
#   benches/soak.sh                       # 10 minutes
#   SOAK_DURATION=60 benches/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${SOAK_DURATION:-600}
OUT=${SOAK_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/dcrgate-soak.XXXXXX")}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
log() { printf '== %s\n' "$*" >&2; }
die() {
  printf 'soak.sh: %s\n' "$*" >&2
  exit 1
}

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

log "building release binaries"
cargo build --release -p dcrgate -p dcrgate-benches --bins
BIN=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
until_present() { # path seconds
  local i
  for i in $(seq 1 $(($2 * 10))); do
    [ -e "$1" ] && return 0
    sleep 0.1
  done
  die "timed out waiting for $1"
}
until_listening() { # port
  local i
  for i in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "nothing listens on 127.0.0.1:$1"
}

ENVDIR=$OUT/env
"$BIN/dcrgate-bench-env" --dir "$ENVDIR" >"$OUT/bench-env.log" 2>&1 &
PIDS+=("$!")
until_present "$ENVDIR/ready" 60
# shellcheck disable=SC1091
. "$ENVDIR/ports.env"
"$BIN/dcrgate-stub" --listen "127.0.0.1:$STUB_PORT" >"$OUT/stub.log" 2>&1 &
PIDS+=("$!")
until_listening "$STUB_PORT"
RUST_LOG=info "$BIN/dcrgate" run --config "$ENVDIR/dcrgate-threads2.toml" >"$OUT/dcrgate.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
until_listening "$GATEWAY_PORT"

LOAD=(--target "127.0.0.1:$GATEWAY_PORT" --ca "$ENVDIR/server-ca.pem" --cert "$ENVDIR/tpp.pem"
  --key "$ENVDIR/tpp.key" --server-name localhost --request "$ENVDIR/requests/compliant.http"
  --threads 1)
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
run() { # label loadgen-args...
  local label=$1 out
  shift
  out=$("$BIN/dcrgate-loadgen" --label "$label" "${LOAD[@]}" "$@") ||
    die "load generator failed ($label)"
  head -n1 <<<"$out" >>"$RESULTS"
}

log "soak: $DURATION s of mixed load; results in $OUT"
run paced/keepalive --mode keepalive --concurrency 2 --rate 20 --duration "$DURATION" &
PACED=$!
started=$(date +%s)
round=0
while [ $(($(date +%s) - started + 24)) -le "$DURATION" ]; do
  round=$((round + 1))
  run "round$round/new-connection" --mode new-connection --concurrency 2 --duration 10
  run "round$round/keepalive-short" --mode keepalive --concurrency 2 --duration 2
  run "round$round/keepalive-long" --mode keepalive --concurrency 2 --duration 12
done
wait "$PACED" || die "the paced load generator failed"

cut=$(grep -c "client too slow to send a request head" "$OUT/dcrgate.log" || true)
summary=$(python3 - "$RESULTS" "$cut" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
requests = sum(r["requests"] for r in rows)
ok = sum(r["ok"] for r in rows)
errors = {}
for r in rows:
    for kind, n in (r.get("errors") or {}).items():
        errors[kind] = errors.get(kind, 0) + n
print(f"runs {len(rows)}, requests {requests}, ok {ok}, transport/status errors {sum(errors.values())} {errors}, head-timeout cuts {sys.argv[2]}")
sys.exit(0 if rows and ok == requests and not errors and sys.argv[2] == "0" else 1)
PY
) && status=0 || status=$?
printf 'soak (%s s): %s\n' "$DURATION" "$summary" | tee "$OUT/soak.md"
exit "$status"
