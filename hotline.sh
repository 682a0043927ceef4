#!/usr/bin/env bash
# Set-up and the two jobs, on a fresh Debian/Ubuntu machine with Python 3.11+:
#   ./hotline.sh demo   the embedded PBX simulator + gateway + order sink + dashboard
#   ./hotline.sh test   lint, types and the whole test suite (what CI runs)
# It installs what is missing (Debian packages with apt-get, Python packages into .venv) and
# starts no system service: the demo and the tests start their own redis-server on loopback.
set -euo pipefail
cd "$(dirname "$0")"
job="${1:-}"
# CI runs the real-PBX tier against the shared Asterisk 22 build next to the repo.
if [ "${CI:-}" = true ] && [ -z "${ASTERISK_BIN:-}" ] && [ -x ../shared/asterisk/sbin/asterisk ]; then
  ASTERISK_BIN="$(cd ../shared/asterisk/sbin && pwd)/asterisk"
  export ASTERISK_BIN
fi
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
  command -v busybox >/dev/null || debs+=(busybox)  # the Alpine entrypoint runs on BusyBox sh in a test
  command -v redis-sentinel >/dev/null || debs+=(redis-sentinel)  # the Redis failover test
  # The real-PBX tier (tests/real/): the shared Asterisk build's runtime libraries, the prompts
  # and on-hold music it plays (pbx-transfer for consults), unshare for the PBX's namespace.
  if [ -n "${ASTERISK_BIN:-}" ] || [ "${CI:-}" = true ]; then
    for deb in libc6 libgcc-s1 libstdc++6 libcrypt1 libssl3 libxml2 libxslt1.1 libsqlite3-0 libjansson4 \
      libuuid1 libedit2 libcurl4 libpq5 zlib1g asterisk-core-sounds-en asterisk-core-sounds-en-gsm \
      asterisk-moh-opsound-gsm util-linux; do
      dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q 'ok installed' || debs+=("$deb")
    done
  fi
fi
if [ ${#debs[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing Debian packages: ${debs[*]}" >&2
  # Wait for another apt-get (up to 5 minutes) rather than fail on its lock.
  apt=(apt-get -o DPkg::Lock::Timeout=300)
  $sudo "${apt[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive $sudo "${apt[@]}" install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
fi

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
# Reinstall only when the declared dependencies changed since the last install.
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,bench]'
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
