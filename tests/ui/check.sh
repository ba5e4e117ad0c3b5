#!/usr/bin/env bash
# The admin web page in real headless Chromium against the release binary (tests/ui/check_page.py),
# and the simulator's report pages: hover readouts, zoom (tests/ui/check_report.py).
# Installs what is missing: chromium, chromium-driver and a font from Debian (apt-get, as root),
# selenium from PyPI. Builds target/release/phalanx first (a no-op when it is up to date: the page
# is compiled into the binary, so a stale binary would test a stale page).
#
# Usage (from anywhere): tests/ui/check.sh
#   PHALANX_UPDATE_SCREENSHOT=1 also copies the screenshots to docs/img/queues.png and docs/img/compare.png.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

if ! command -v chromium >/dev/null || [ ! -x /usr/bin/chromedriver ]; then
  echo "installing chromium, chromium-driver (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
fi
if ! python3 -c 'import selenium' 2>/dev/null; then
  echo "installing selenium==4.51.0 (pip)"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'selenium==4.51.0'
fi
chromium --version 2>/dev/null || true

cargo build --release --locked --bin phalanx
export PHALANX_BIN=${PHALANX_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/phalanx}
python3 tests/ui/check_page.py
python3 tests/ui/check_report.py
