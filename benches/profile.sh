#!/usr/bin/env bash
# Where the CPU goes, per request: samples a keep-alive run of compliant updates through dcrgate
# (seed policy, 1 worker) and, for comparison, through dcrgate-bare-proxy (the same TLS, no
# policy), with `perf record` and DWARF call stacks, and draws each as a flame graph SVG.
# Each in both modes: keep-alive and a new connection per request (full handshake). Writes
# $OUT/{dcrgate,dcrgate-nc,bare,bare-nc}.svg and $OUT/top.md (the hottest functions, self time).
#
#   benches/profile.sh                        # 10 s sampled per server
#   PROFILE_DURATION=5 PROFILE_OUT=out benches/profile.sh
#
# Needs `perf` (Debian: linux-perf) and inferno's flame graph tools (`cargo install inferno`),
# both installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${PROFILE_DURATION:-10}
CONCURRENCY=${PROFILE_CONCURRENCY:-32}
FREQ=${PROFILE_FREQ:-997}
OUT=${PROFILE_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/dcrgate-profile.XXXXXX")}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SCRIPT=profile.sh
# shellcheck source=benches/lib.sh
. benches/lib.sh

if ! command -v perf >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf
fi
if ! command -v inferno-flamegraph >/dev/null 2>&1; then
  log "installing inferno (flame graphs)"
  cargo install --locked inferno
fi

ENVDIR=$OUT/env
"$BIN/dcrgate-bench-env" --dir "$ENVDIR" >"$OUT/bench-env.log" 2>&1 &
PIDS+=("$!")
wait_file "$ENVDIR/ready" 60
# shellcheck disable=SC1091
. "$ENVDIR/ports.env"
"$BIN/dcrgate-stub" --listen "127.0.0.1:$STUB_PORT" >"$OUT/stub.log" 2>&1 &
PIDS+=("$!")
wait_port "$STUB_PORT"

TLS=(--ca "$ENVDIR/server-ca.pem" --cert "$ENVDIR/tpp.pem" --key "$ENVDIR/tpp.key" --server-name localhost)
REQ=(--request "$ENVDIR/requests/compliant.http")

# label port pid mode: a warm-up, then $DURATION seconds sampled under load.
profile() {
  local label=$1 port=$2 pid=$3 mode=$4
  "$BIN/dcrgate-loadgen" --label "$label/warmup" --target "127.0.0.1:$port" "${TLS[@]}" "${REQ[@]}" \
    --mode "$mode" --concurrency "$CONCURRENCY" --duration 2 >/dev/null ||
    die "load generator failed ($label)"
  "$BIN/dcrgate-loadgen" --label "$label" --target "127.0.0.1:$port" "${TLS[@]}" "${REQ[@]}" \
    --mode "$mode" --concurrency "$CONCURRENCY" --duration $((DURATION + 2)) --pid "$pid" \
    >"$OUT/$label.loadgen" &
  local lg=$!
  sleep 1
  perf record -q -F "$FREQ" --call-graph dwarf,16384 -p "$pid" -o "$OUT/$label.data" \
    -- sleep "$DURATION" 2>"$OUT/$label.perf.log" || die "perf record failed: $(cat "$OUT/$label.perf.log")"
  wait "$lg" || die "load generator failed ($label)"
  sed -n '2p' "$OUT/$label.loadgen" >&2
  perf script -i "$OUT/$label.data" 2>/dev/null | inferno-collapse-perf >"$OUT/$label.folded"
  inferno-flamegraph --title "$label: $mode, compliant PUTs, 1 worker" \
    <"$OUT/$label.folded" >"$OUT/$label.svg"
  {
    printf '## %s\n\n' "$label"
    printf '%s\n\n' "$(sed -n '2p' "$OUT/$label.loadgen")"
    printf '```\n'
    perf report -i "$OUT/$label.data" --no-children --sort symbol --stdio -q --percent-limit 0.7 \
      -g none 2>/dev/null | sed 's/[[:space:]]*$//' | grep -v '^$' | head -n 45
    printf '```\n\n'
  } >>"$OUT/top.md"
}

: >"$OUT/top.md"
RUST_LOG=warn "$BIN/dcrgate" run --config "$ENVDIR/dcrgate-threads1.toml" >"$OUT/dcrgate.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
wait_port "$GATEWAY_PORT"
log "sampling dcrgate for $DURATION s"
profile dcrgate "$GATEWAY_PORT" "$GATEWAY_PID" keepalive
profile dcrgate-nc "$GATEWAY_PORT" "$GATEWAY_PID" new-connection

BARE_PORT=""
for p in $(seq 21000 21999); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then BARE_PORT=$p; break; fi
done
[ -n "$BARE_PORT" ] || die "no free port for the bare proxy"
"$BIN/dcrgate-bare-proxy" --listen "127.0.0.1:$BARE_PORT" --cert "$ENVDIR/gateway.pem" \
  --key "$ENVDIR/gateway.key" --client-ca "$ENVDIR/client-ca.pem" \
  --upstream "127.0.0.1:$STUB_PORT" --threads 1 >"$OUT/bare-proxy.log" 2>&1 &
BARE_PID=$!
PIDS+=("$BARE_PID")
wait_port "$BARE_PORT"
log "sampling the bare proxy for $DURATION s"
profile bare "$BARE_PORT" "$BARE_PID" keepalive
profile bare-nc "$BARE_PORT" "$BARE_PID" new-connection

log "flame graphs: $OUT/*.svg; hottest functions: $OUT/top.md"
cat "$OUT/top.md"
