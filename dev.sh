#!/usr/bin/env bash
# One entry point for people and CI:
#   ./dev.sh demo [ARGS]   set up, then run the demo (simulated fleet + broker + gateway + live view)
#   ./dev.sh test          set up, then run every test (cargo fmt/clippy/test, ruff, mypy, pytest,
#                          and each bench's --smoke run)
#   ./dev.sh setup         set up only: system packages (as root), the venv, the Rust build
# Everything it needs it installs: Debian packages when missing and running as
# root, a virtualenv in .venv, and the Rust extension built in release mode.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

setup_system() {
  local missing=()
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  command -v mosquitto_sub >/dev/null 2>&1 || missing+=(mosquitto-clients)
  command -v socat >/dev/null 2>&1 || missing+=(socat)
  command -v cc >/dev/null 2>&1 || missing+=(gcc)
  command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
  command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
  # smmc-gateway profiles export: pandoc (DOCX/HTML), Graphviz and PlantUML (diagrams),
  # all offline; PDF also needs libreoffice-writer-nogui (not installed here: large)
  command -v pandoc >/dev/null 2>&1 || missing+=(pandoc)
  command -v dot >/dev/null 2>&1 || missing+=(graphviz)
  command -v plantuml >/dev/null 2>&1 || missing+=(plantuml)
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      say "missing system packages: ${missing[*]} (run as root to install them, or: sudo apt-get install ${missing[*]})"
    fi
  fi
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs) and run again"
  command -v python3 >/dev/null 2>&1 || die "python3 (>= 3.11) not found"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python >= 3.11 is required, found $(python3 -V)"
}

setup_python() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtualenv $VENV"
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c 'import maturin' >/dev/null 2>&1; then
    "$VENV/bin/pip" install -q --upgrade pip "maturin>=1.7,<2"
  fi
  say "building the Rust core (release) into $VENV"
  # pip's "Requirement already satisfied" chatter is dropped; errors still show.
  "$VENV/bin/maturin" develop --release -E dev -q 2>&1 \
    | grep -vE '^(📦|✏️|🛠|🔗|🐍|Requirement already satisfied|Ignoring )' || true
  "$VENV/bin/python" -c 'import smmc_gateway._core' || die "the Rust extension did not build"
}

run_tests() {
  say "cargo fmt --check"
  cargo fmt --all -- --check
  say "cargo clippy -D warnings"
  cargo clippy --all-targets -q -- -D warnings
  say "cargo test"
  cargo test -q 2>&1
  say "ruff"
  "$VENV/bin/ruff" check python tests bench
  say "ruff format --check"
  "$VENV/bin/ruff" format --check python tests bench
  say "mypy --strict"
  "$VENV/bin/mypy" --strict python/smmc_gateway
  say "pytest"
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
  say "benches (--smoke)"
  local bench
  for bench in bench/*.py; do
    printf '%s: ' "$bench" >&2
    "$VENV/bin/python" "$bench" --smoke --json || die "$bench --smoke failed"
  done
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  setup) setup_system; setup_python ;;
  test) setup_system; setup_python; run_tests "$@" ;;
  demo) setup_system; setup_python; exec "$VENV/bin/smmc-gateway" demo "$@" ;;
  *) echo "usage: ./dev.sh demo [ARGS] | test [PYTEST ARGS] | setup" >&2; exit 2 ;;
esac
