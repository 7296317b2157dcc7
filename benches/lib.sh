# Shared by benches/soak.sh and benches/hostile.sh (sourced, from the repository root, with
# SCRIPT set to the script's name): logging, the build's system packages and the release
# binaries (BIN), children stopped on exit (PIDS), and waits for a file or a port.
log() { printf '== %s\n' "$*" >&2; }
die() {
  printf '%s: %s\n' "$SCRIPT" "$*" >&2
  exit 1
}

# A C compiler and cmake (pingora builds zlib-ng), installed when missing.
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
