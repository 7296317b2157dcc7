#!/usr/bin/env bash
# What a hostile key set can cost dcrgate, end to end on 127.0.0.1 (release build, the seed
# policy, 2 proxy threads):
#   1. CPU per request, keep-alive, 2 connections: a compliant update (PS256, RSA-2048) against
#      the most expensive forgeries a key set can ask for: a hundred 4096-bit keys under one kid
#      with a signature of the modulus' length (one full RSA-4096 verification, on the blocking
#      pool), and the same with a 1024-byte signature (refused before any arithmetic);
#   2. resident memory after N forged requests each naming its own URL of that key set on the
#      one allowlisted key host (`?v=1` ... `?v=N`).
# Prints a markdown summary (also $OUT/hostile.md).
#
#   benches/hostile.sh                       # 10 s per CPU run, 10,000 URLs
#   HOSTILE_DURATION=5 HOSTILE_URLS=2000 benches/hostile.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${HOSTILE_DURATION:-10}
URLS=${HOSTILE_URLS:-10000}
OUT=${HOSTILE_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/dcrgate-hostile.XXXXXX")}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SCRIPT=hostile.sh
# shellcheck source=benches/lib.sh
. benches/lib.sh
rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status"; }

ENVDIR=$OUT/env
"$BIN/dcrgate-bench-env" --dir "$ENVDIR" --hostile-urls "$URLS" >"$OUT/bench-env.log" 2>&1 &
PIDS+=("$!")
wait_file "$ENVDIR/ready" 60
# shellcheck disable=SC1091
. "$ENVDIR/ports.env"
"$BIN/dcrgate-stub" --listen "127.0.0.1:$STUB_PORT" >"$OUT/stub.log" 2>&1 &
PIDS+=("$!")
wait_port "$STUB_PORT"
RUST_LOG=warn "$BIN/dcrgate" run --config "$ENVDIR/dcrgate-threads2.toml" >"$OUT/dcrgate.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
wait_port "$GATEWAY_PORT"

TLS=(--ca "$ENVDIR/server-ca.pem" --cert "$ENVDIR/tpp.pem" --key "$ENVDIR/tpp.key" --server-name localhost)
HOSTILE_TLS=(--ca "$ENVDIR/server-ca.pem" --cert "$ENVDIR/hostile.pem" --key "$ENVDIR/hostile.key" --server-name localhost)
RUN=(--target "127.0.0.1:$GATEWAY_PORT" --concurrency 2 --duration "$DURATION" --warmup 2 --pid "$GATEWAY_PID")
: >"$OUT/results.jsonl"
cpu_run() { # label status tls... request
  local label=$1 status=$2 out
  shift 2
  out=$("$BIN/dcrgate-loadgen" --label "$label" --expect-status "$status" "${RUN[@]}" "$@") ||
    die "load generator failed ($label)"
  head -n1 <<<"$out" >>"$OUT/results.jsonl"
  sed -n '2p' <<<"$out" >&2
  # The gateway's figure (the line also carries the load generator's own CPU).
  sed -n 's/.*"cpu":{[^}]*"cpu_us_per_req":\([0-9][0-9.]*\).*/\1/p' <<<"$(head -n1 <<<"$out")"
}
log "CPU per request (keep-alive, 2 connections, $DURATION s each)"
compliant=$(cpu_run compliant 200 "${TLS[@]}" --request "$ENVDIR/requests/compliant.http")
worst=$(cpu_run hostile-4096 400 "${HOSTILE_TLS[@]}" --request "$ENVDIR/requests/hostile-cpu-4096.http")
long=$(cpu_run hostile-long-signature 400 "${HOSTILE_TLS[@]}" --request "$ENVDIR/requests/hostile-cpu-long-sig.http")

log "memory: $URLS forged requests, each naming its own key set URL"
rss_before=$(rss_kib "$GATEWAY_PID")
touch "$ENVDIR/go-urls"
wait_file "$ENVDIR/hostile-urls.json" 900
sleep 1
rss_after=$(rss_kib "$GATEWAY_PID")
hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$GATEWAY_PID/status")
urls_json=$(cat "$ENVDIR/hostile-urls.json")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
{
  echo "| run | server CPU µs per request | × compliant |"
  echo "|---|---:|---:|"
  echo "| compliant update (PS256, RSA-2048) | $compliant | 1.00 |"
  echo "| forged, 100 × RSA-4096 under one kid, modulus-length signature | $worst | $(ratio "$worst" "$compliant") |"
  echo "| forged, 100 × RSA-4096 under one kid, 1024-byte signature | $long | $(ratio "$long" "$compliant") |"
  echo
  echo "| memory | KiB |"
  echo "|---|---:|"
  echo "| RSS before the URL flood | $rss_before |"
  echo "| RSS after $URLS distinct hostile URLs on one host | $rss_after |"
  echo "| peak RSS (VmHWM) | $hwm |"
  echo
  echo "URL flood: \`$urls_json\`"
} | tee "$OUT/hostile.md"
