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
SCRIPT=soak.sh
# shellcheck source=benches/lib.sh
. benches/lib.sh

ENVDIR=$OUT/env
"$BIN/dcrgate-bench-env" --dir "$ENVDIR" >"$OUT/bench-env.log" 2>&1 &
PIDS+=("$!")
wait_file "$ENVDIR/ready" 60
# shellcheck disable=SC1091
. "$ENVDIR/ports.env"
"$BIN/dcrgate-stub" --listen "127.0.0.1:$STUB_PORT" >"$OUT/stub.log" 2>&1 &
PIDS+=("$!")
wait_port "$STUB_PORT"
RUST_LOG=info "$BIN/dcrgate" run --config "$ENVDIR/dcrgate-threads2.toml" >"$OUT/dcrgate.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
wait_port "$GATEWAY_PORT"

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
