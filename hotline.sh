#!/usr/bin/env bash
# Set-up and the two jobs, on a fresh Debian/Ubuntu machine with Python 3.11+:
#   ./hotline.sh demo   the embedded PBX simulator + gateway + order sink + dashboard
#   ./hotline.sh test   lint, types and the whole test suite (what CI runs)
# It installs what is missing (Debian packages with apt-get, Python packages into .venv) and
# starts no system service: the demo and the tests start their own redis-server on loopback.
set -euo pipefail
cd "$(dirname "$0")"
job="${1:-}"
case "$job" in demo|test) shift ;; *) echo "usage: ./hotline.sh demo|test [args]" >&2; exit 64 ;; esac

python="${PYTHON:-python3}"
debs=()
command -v redis-server >/dev/null || debs+=(redis-server)
"$python" -c 'import venv, ensurepip' 2>/dev/null || debs+=(python3-venv)
if [ "$job" = test ]; then
  command -v chromium >/dev/null || debs+=(chromium)   # the dashboard's browser tests
  [ -d /usr/share/fonts/opentype/noto ] || debs+=(fonts-noto-cjk)  # Chinese text on the page
  command -v espeak-ng >/dev/null || debs+=(espeak-ng)  # the voice prompt generator's test
  command -v sox >/dev/null || debs+=(sox)
  command -v redis-sentinel >/dev/null || debs+=(redis-sentinel)  # the Redis failover test
fi
if [ ${#debs[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing Debian packages: ${debs[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
fi

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
# Reinstall only when the declared dependencies changed since the last install.
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  touch .venv/.installed
fi

case "$job" in
  demo) exec .venv/bin/hotline-gateway demo "$@" ;;
  test)
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    .venv/bin/mypy
    exec .venv/bin/pytest "$@"
    ;;
esac
