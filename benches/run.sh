#!/usr/bin/env bash
# End-to-end benchmark of dcrgate against nginx, everything on 127.0.0.1, in one run with the
# same ECDSA P-256 certificates and the same upstream stub: (a) the stub alone, (b) nginx as an
# mTLS-terminating reverse proxy, (c) a bare pingora proxy with dcrgate's TLS settings and no
# policy (dcrgate-bare-proxy: what pingora and TLS cost), (d) dcrgate with the full seed policy
# on compliant updates;
# keep-alive and new-connection (full handshake, resumption off) for each, 1 worker each and
# then 2; half-saturation latency; a hostile flood; and dcrgate's memory with 10k identities.
# Prints a markdown report (also written to $OUT/report.md) and draws the saturation results as
# an SVG chart ($OUT/chart.svg).
#
#   benches/run.sh                 # the full run (about 20 minutes plus the build)
#   BENCH_DURATION=5 BENCH_WARMUP=1 BENCH_IDENTITIES=1000 BENCH_QUIET_WAIT=0 benches/run.sh
#
# Knobs (environment):
#   BENCH_DURATION 12, BENCH_WARMUP 3   seconds measured / warm-up per run
#   BENCH_CONCURRENCY 32                connections of the saturating runs
#   BENCH_IDENTITIES 10000              identities of the memory run (0 skips it)
#   BENCH_THREADS2 1                    also compare 2 workers each (0 skips)
#   BENCH_ROUNDS 1                      saturation runs repeated this many times, the servers
#                                       alternating within each round; the report shows each
#                                       server's median round and the spread
#   BENCH_PIN 1                         also repeat the half-saturation and flood runs with the
#                                       proxy pinned to CPU 1, load generators and stub to CPU 0
#   BENCH_QUIET_LOAD 0.7, BENCH_QUIET_WAIT 1200
#                                       before measuring, wait (up to this many seconds) until the
#                                       1-minute load average is below this
#   BENCH_OUT                           output folder (default: a new temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=${BENCH_DURATION:-12}
WARMUP=${BENCH_WARMUP:-3}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
IDENTITIES=${BENCH_IDENTITIES:-10000}
THREADS2=${BENCH_THREADS2:-1}
ROUNDS=${BENCH_ROUNDS:-1}
PIN=${BENCH_PIN:-1}
QUIET_LOAD=${BENCH_QUIET_LOAD:-0.7}
QUIET_WAIT=${BENCH_QUIET_WAIT:-1200}
SLOW_BYTES=24
OUT=${BENCH_OUT:-}
if [ -z "$OUT" ]; then
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/dcrgate-bench.XXXXXX")
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { printf '== %s\n' "$*" >&2; }
die() {
  printf 'run.sh: %s\n' "$*" >&2
  exit 1
}

# --- system packages: a C compiler and cmake (pingora builds zlib-ng), nginx -----------------
need=()
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# --- build -------------------------------------------------------------------------------------
log "building release binaries"
cargo build --release -p dcrgate -p dcrgate-benches --bins
BIN=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release
[ -x "$BIN/dcrgate" ] || die "no dcrgate binary in $BIN"

# --- process bookkeeping: every child is stopped on exit ---------------------------------------
PIDS=()
forget_pid() { # pid: no longer ours to stop (stopped or reaped)
  local p keep=()
  for p in "${PIDS[@]}"; do
    [ "$p" = "$1" ] || keep+=("$p")
  done
  PIDS=("${keep[@]}")
}
stop_pid() { # pid [signal]
  local pid=$1 sig=${2:-TERM}
  forget_pid "$pid"
  kill -"$sig" "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    stop_pid "$pid" TERM
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_file() { # path seconds
  local i
  for i in $(seq 1 $(($2 * 10))); do
    [ -e "$1" ] && return 0
    sleep 0.1
  done
  die "timed out waiting for $1"
}
wait_port() { # port
  local i
  for i in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "nothing listens on 127.0.0.1:$1"
}
children_of() { # pid -> the pids whose parent it is
  grep -l "^PPid:[[:space:]]*$1\$" /proc/[0-9]*/status 2>/dev/null |
    sed 's#^/proc/\([0-9]*\)/status$#\1#' || true
}
load1() { cut -d' ' -f1 /proc/loadavg; }
json_num() { # key json-line -> the first numeric value of "key"
  sed -n "s/.*\"$1\":\([0-9][0-9.]*\).*/\1/p" <<<"$2" | head -n1
}

# --- environment: PKI, key host, request files, configs ------------------------------------------
ENVDIR=$OUT/env
log "generating the sandbox PKI, TPP and key host in $ENVDIR"
"$BIN/dcrgate-bench-env" --dir "$ENVDIR" >"$OUT/bench-env.log" 2>&1 &
ENV_PID=$!
PIDS+=("$ENV_PID")
wait_file "$ENVDIR/ready" 60
# shellcheck disable=SC1091
. "$ENVDIR/ports.env"

"$BIN/dcrgate-stub" --listen "127.0.0.1:$STUB_PORT" >"$OUT/stub.log" 2>&1 &
STUB_PID=$!
PIDS+=("$STUB_PID")
wait_port "$STUB_PORT"

NGINX_PID=""
NGINX_WORKERS=""
start_nginx() { # workers
  local prefix=$OUT/nginx-w$1
  mkdir -p "$prefix/tmp"
  sed -e "s#@WORKERS@#$1#g" -e "s#@PREFIX@#$prefix#g" -e "s#@ENV@#$ENVDIR#g" \
    -e "s#@STUB_PORT@#$STUB_PORT#g" -e "s#@NGINX_PORT@#$NGINX_PORT#g" \
    benches/nginx/nginx.conf.template >"$prefix/nginx.conf"
  "$NGINX" -t -q -p "$prefix" -c "$prefix/nginx.conf" || die "nginx refused $prefix/nginx.conf"
  "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" >"$prefix/stderr.log" 2>&1 &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_port "$NGINX_PORT"
  sleep 0.5
  NGINX_WORKERS=$(children_of "$NGINX_PID" | tr '\n' ' ')
  [ -n "$NGINX_WORKERS" ] || die "no nginx worker found"
}
stop_nginx() {
  stop_pid "$NGINX_PID" TERM
  NGINX_PID=""
}

GATEWAY_PID=""
start_gateway() { # config
  RUST_LOG=warn "$BIN/dcrgate" run --config "$1" >>"$OUT/dcrgate.log" 2>&1 &
  GATEWAY_PID=$!
  PIDS+=("$GATEWAY_PID")
  wait_port "$GATEWAY_PORT"
}
stop_gateway() {
  stop_pid "$GATEWAY_PID" INT
  GATEWAY_PID=""
}

BARE_PID=""
BARE_PORT=""
start_bare() { # threads
  local p
  for p in $(seq 21000 21999); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then BARE_PORT=$p; break; fi
  done
  [ -n "$BARE_PORT" ] || die "no free port for the bare proxy"
  "$BIN/dcrgate-bare-proxy" --listen "127.0.0.1:$BARE_PORT" --cert "$ENVDIR/gateway.pem" \
    --key "$ENVDIR/gateway.key" --client-ca "$ENVDIR/client-ca.pem" \
    --upstream "127.0.0.1:$STUB_PORT" --threads "$1" >>"$OUT/bare-proxy.log" 2>&1 &
  BARE_PID=$!
  PIDS+=("$BARE_PID")
  wait_port "$BARE_PORT"
}
stop_bare() {
  stop_pid "$BARE_PID" INT
  BARE_PID=""
}

RESULTS=$OUT/results.jsonl
: >"$RESULTS"
LG=("$BIN/dcrgate-loadgen")
LAST=""
lg() { # label loadgen-args...
  local label=$1 out
  shift
  out=$("${LG[@]}" --label "$label" "$@") || die "load generator failed ($label)"
  LAST=$(head -n1 <<<"$out")
  printf '%s\n' "$LAST" >>"$RESULTS"
  sed -n '2p' <<<"$out" >&2
}
smoke() { # label loadgen-args...: one second; at least one expected answer
  local label=$1 out ok
  shift
  out=$("$BIN/dcrgate-loadgen" --label "$label" --concurrency 2 --duration 1 "$@") ||
    die "load generator failed ($label)"
  ok=$(json_num ok "$(head -n1 <<<"$out")")
  [ "${ok:-0}" -gt 0 ] || die "smoke test $label failed: $(head -n1 <<<"$out")"
}

TLS=(--ca "$ENVDIR/server-ca.pem" --cert "$ENVDIR/tpp.pem" --key "$ENVDIR/tpp.key" --server-name localhost)
HOSTILE_TLS=(--ca "$ENVDIR/server-ca.pem" --cert "$ENVDIR/hostile.pem" --key "$ENVDIR/hostile.key" --server-name localhost)
REQ=(--request "$ENVDIR/requests/compliant.http")
SAT=(--concurrency "$CONCURRENCY" --duration "$DURATION" --warmup "$WARMUP")
STUB=(--target "127.0.0.1:$STUB_PORT" --plain "${REQ[@]}")
NGX=(--target "127.0.0.1:$NGINX_PORT" "${TLS[@]}" "${REQ[@]}")
GW=(--target "127.0.0.1:$GATEWAY_PORT" "${TLS[@]}" "${REQ[@]}")

start_nginx 1
start_gateway "$ENVDIR/dcrgate-threads1.toml"
log "smoke tests"
smoke smoke/stub "${STUB[@]}"
smoke smoke/nginx "${NGX[@]}"
smoke smoke/dcrgate "${GW[@]}"
smoke smoke/dcrgate-nc "${GW[@]}" --mode new-connection

# --- wait for a quiet machine ---------------------------------------------------------------------
waited=0
while awk -v l="$(load1)" -v q="$QUIET_LOAD" 'BEGIN { exit !(l >= q) }' && [ "$waited" -lt "$QUIET_WAIT" ]; do
  log "load average $(load1) >= $QUIET_LOAD; waiting (${waited}s so far)"
  sleep 30
  waited=$((waited + 30))
done
LOAD_BEFORE=$(load1)
log "measuring (load average $LOAD_BEFORE); results in $OUT"

# --- saturation, one worker each --------------------------------------------------------------------
median() { # numbers...: the middle one (the lower middle of an even count)
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
NGINX_KAS=()
GATEWAY_KAS=()
for round in $(seq 1 "$ROUNDS"); do
  [ "$ROUNDS" -gt 1 ] && log "saturation, one worker each: round $round of $ROUNDS"
  for mode in keepalive new-connection; do
    lg "stub/$mode" "${STUB[@]}" "${SAT[@]}" --mode "$mode" --pid "$STUB_PID"
  done
  for mode in keepalive new-connection; do
    # shellcheck disable=SC2086
    lg "nginx-w1/$mode" "${NGX[@]}" "${SAT[@]}" --mode "$mode" $(printf -- '--pid %s ' $NGINX_WORKERS)
    if [ "$mode" = keepalive ]; then NGINX_KAS+=("$(json_num rps "$LAST")"); fi
  done
  start_bare 1
  BARE=(--target "127.0.0.1:$BARE_PORT" "${TLS[@]}" "${REQ[@]}")
  smoke smoke/bare "${BARE[@]}"
  for mode in keepalive new-connection; do
    lg "bare-t1/$mode" "${BARE[@]}" "${SAT[@]}" --mode "$mode" --pid "$BARE_PID"
  done
  stop_bare
  for mode in keepalive new-connection; do
    lg "dcrgate-t1/$mode" "${GW[@]}" "${SAT[@]}" --mode "$mode" --pid "$GATEWAY_PID"
    if [ "$mode" = keepalive ]; then GATEWAY_KAS+=("$(json_num rps "$LAST")"); fi
  done
done
NGINX_KA=$(median "${NGINX_KAS[@]}")
GATEWAY_KA=$(median "${GATEWAY_KAS[@]}")

# --- half of saturation, open loop: gateway-added p99 = p99(proxy) - p99(stub alone) -------------
half_n=$(awk -v r="$NGINX_KA" 'BEGIN { printf "%d", r / 2 }')
half_d=$(awk -v r="$GATEWAY_KA" 'BEGIN { printf "%d", r / 2 }')
lg "half/stub@nginx" "${STUB[@]}" "${SAT[@]}" --rate "$half_n" --pid "$STUB_PID"
# shellcheck disable=SC2086
lg "half/nginx" "${NGX[@]}" "${SAT[@]}" --rate "$half_n" $(printf -- '--pid %s ' $NGINX_WORKERS)
lg "half/stub@dcrgate" "${STUB[@]}" "${SAT[@]}" --rate "$half_d" --pid "$STUB_PID"
lg "half/dcrgate" "${GW[@]}" "${SAT[@]}" --rate "$half_d" --pid "$GATEWAY_PID"

# --- flood: compliant 1 : 10 hostile, plus slow clients -------------------------------------------
# The compliant rate is 1/22 of dcrgate's saturated keep-alive rate, so compliant + hostile
# requests together are offered at about half of saturation by count.
rate_c=$(awk -v r="$GATEWAY_KA" 'BEGIN { v = r / 22; if (v < 20) v = 20; printf "%d", v }')
rate_h=$((rate_c * 10))
FLOOD=(--duration "$DURATION" --warmup "$WARMUP")
H="$ENVDIR/requests"
HOSTILE_MIX=(--request "$H/hostile-garbage.http:3" --request "$H/hostile-unknown-kid.http:3"
  --request "$H/hostile-off-allowlist.http:3" --request "$H/hostile-oversized.http:1")
flood() { # suffix ("", -pinned, -no-close)
  local sfx=$1 hostile_pid slow_pid
  lg "flood$sfx/clean" "${GW[@]}" "${FLOOD[@]}" --concurrency 8 --rate "$rate_c" --pid "$GATEWAY_PID"
  kill -USR1 "$ENV_PID"
  sleep 0.5
  cp "$ENVDIR/keyhost-hits.json" "$OUT/hits-before-flood$sfx.json"
  "${LG[@]}" --label "flood$sfx/hostile" --target "127.0.0.1:$GATEWAY_PORT" "${HOSTILE_TLS[@]}" \
    "${HOSTILE_MIX[@]}" --expect-status any --concurrency 32 --rate "$rate_h" "${FLOOD[@]}" >"$OUT/flood$sfx-hostile.out" &
  hostile_pid=$!
  PIDS+=("$hostile_pid")
  "${LG[@]}" --label "flood$sfx/slow" --target "127.0.0.1:$GATEWAY_PORT" "${HOSTILE_TLS[@]}" "${REQ[@]}" \
    --mode slow --slow-bytes "$SLOW_BYTES" --concurrency 64 "${FLOOD[@]}" >"$OUT/flood$sfx-slow.out" &
  slow_pid=$!
  PIDS+=("$slow_pid")
  lg "flood$sfx/compliant" "${GW[@]}" "${FLOOD[@]}" --concurrency 8 --rate "$rate_c" --pid "$GATEWAY_PID"
  wait "$hostile_pid" || die "hostile load generator failed"
  forget_pid "$hostile_pid"
  wait "$slow_pid" || die "slow-client load generator failed"
  forget_pid "$slow_pid"
  for f in hostile slow; do
    head -n1 "$OUT/flood$sfx-$f.out" >>"$RESULTS"
    sed -n '2p' "$OUT/flood$sfx-$f.out" >&2
  done
  kill -USR1 "$ENV_PID"
  sleep 0.5
  cp "$ENVDIR/keyhost-hits.json" "$OUT/hits-after-flood$sfx.json"
}
flood ""

# --- the same half-saturation and flood runs with each process on its own core --------------------
# On 2 cores the load generator, the stub and the proxy compete for CPU, and the scheduler's
# delays show up in the latency percentiles. Pinned: the proxy (every thread) on CPU 1, the load
# generators and the stub on CPU 0.
if [ "$PIN" = 1 ] && command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  pin() { # cpus pid...
    local cpus=$1 p
    shift
    for p in "$@"; do taskset -a -p -c "$cpus" "$p" >/dev/null; done
  }
  ALL_CPUS="0-$(($(nproc) - 1))"
  # shellcheck disable=SC2086
  pin 1 "$GATEWAY_PID" $NGINX_WORKERS
  pin 0 "$STUB_PID" "$ENV_PID"
  LG=(taskset -c 0 "$BIN/dcrgate-loadgen" --threads 1)
  lg "half-pinned/stub@nginx" "${STUB[@]}" "${SAT[@]}" --rate "$half_n" --pid "$STUB_PID"
  # shellcheck disable=SC2086
  lg "half-pinned/nginx" "${NGX[@]}" "${SAT[@]}" --rate "$half_n" $(printf -- '--pid %s ' $NGINX_WORKERS)
  lg "half-pinned/stub@dcrgate" "${STUB[@]}" "${SAT[@]}" --rate "$half_d" --pid "$STUB_PID"
  lg "half-pinned/dcrgate" "${GW[@]}" "${SAT[@]}" --rate "$half_d" --pid "$GATEWAY_PID"
  flood -pinned
  LG=("$BIN/dcrgate-loadgen")
  # shellcheck disable=SC2086
  pin "$ALL_CPUS" "$GATEWAY_PID" $NGINX_WORKERS "$STUB_PID" "$ENV_PID"
fi

# Diagnostic: the flood without the oversized requests, whose 413 closes the connection (so every
# tenth hostile request costs the gateway a full handshake on its event-loop thread).
HOSTILE_MIX=(--request "$H/hostile-garbage.http:3" --request "$H/hostile-unknown-kid.http:3"
  --request "$H/hostile-off-allowlist.http:4")
flood -no-close

# --- two workers each ---------------------------------------------------------------------------
if [ "$THREADS2" = 1 ]; then
  stop_nginx
  stop_gateway
  start_nginx 2
  start_gateway "$ENVDIR/dcrgate-threads2.toml"
  smoke smoke/dcrgate-t2 "${GW[@]}"
  for round in $(seq 1 "$ROUNDS"); do
    [ "$ROUNDS" -gt 1 ] && log "saturation, two workers each: round $round of $ROUNDS"
    for mode in keepalive new-connection; do
      # shellcheck disable=SC2086
      lg "nginx-w2/$mode" "${NGX[@]}" "${SAT[@]}" --mode "$mode" $(printf -- '--pid %s ' $NGINX_WORKERS)
      lg "dcrgate-t2/$mode" "${GW[@]}" "${SAT[@]}" --mode "$mode" --pid "$GATEWAY_PID"
    done
    start_bare 2
    BARE=(--target "127.0.0.1:$BARE_PORT" "${TLS[@]}" "${REQ[@]}")
    for mode in keepalive new-connection; do
      lg "bare-t2/$mode" "${BARE[@]}" "${SAT[@]}" --mode "$mode" --pid "$BARE_PID"
    done
    stop_bare
  done
fi
LOAD_AFTER=$(load1)
stop_nginx
stop_gateway

# --- memory with many identities ------------------------------------------------------------------
MEMORY_ARGS=()
if [ "$IDENTITIES" -gt 0 ]; then
  MEMDIR=$OUT/memory
  log "memory: $IDENTITIES identities and key set URLs"
  "$BIN/dcrgate-bench-env" --dir "$MEMDIR" --identities "$IDENTITIES" --stub-port "$STUB_PORT" \
    >"$OUT/bench-env-memory.log" 2>&1 &
  MEM_ENV_PID=$!
  PIDS+=("$MEM_ENV_PID")
  wait_file "$MEMDIR/ready" 300
  GATEWAY_PORT=$(sed -n 's/^GATEWAY_PORT=//p' "$MEMDIR/ports.env")
  start_gateway "$MEMDIR/dcrgate-threads1.toml"
  sleep 1
  rss_idle=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$GATEWAY_PID/status")
  touch "$MEMDIR/go"
  wait_file "$MEMDIR/identities.json" 1800
  sleep 1
  rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$GATEWAY_PID/status")
  hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$GATEWAY_PID/status")
  printf '{"rss_idle_kib":%s,"rss_kib":%s,"hwm_kib":%s}\n' "$rss_idle" "$rss" "$hwm" >"$OUT/memory.json"
  log "memory: VmRSS ${rss} KiB after the identity run (idle ${rss_idle} KiB, peak ${hwm} KiB)"
  stop_gateway
  MEMORY_ARGS=(--memory "$OUT/memory.json" --identities "$MEMDIR/identities.json")
fi

# --- report ---------------------------------------------------------------------------------------
nginx_v=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
openssl_v=$("$NGINX" -V 2>&1 | sed -n 's/.*(running with \(OpenSSL [^ ]*\).*/\1/p;s/^built with \(OpenSSL [^ ]*\)[^(]*$/\1/p' | head -n1)
"$BIN/dcrgate-bench-report" --results "$RESULTS" \
  --hits-dir "$OUT" --svg "$OUT/chart.svg" \
  "${MEMORY_ARGS[@]}" \
  --fact "cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)" \
  --fact "nproc=$(nproc)" \
  --fact "mem_gib=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" \
  --fact "load_before=$LOAD_BEFORE" --fact "load_after=$LOAD_AFTER" --fact "quiet_load=$QUIET_LOAD" \
  --fact "nginx=nginx $nginx_v (Debian package)" --fact "openssl=${openssl_v:-OpenSSL ?}" \
  --fact "rustc=$(rustc -V)" \
  --fact "commit=$(git rev-parse --short HEAD 2>/dev/null || echo '(no git)')" \
  --fact "warmup=$WARMUP" --fact "duration=$DURATION" --fact "concurrency=$CONCURRENCY" \
  --fact "slow_bytes=$SLOW_BYTES" | tee "$OUT/report.md"
log "done: $OUT/report.md, $OUT/chart.svg"
