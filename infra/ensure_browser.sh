#!/usr/bin/env bash
# Debian's headless Chromium and chromedriver for the browser test (tests/integration/test_docs_browser.py).
# Idempotent: returns at once when both are installed. Installing needs root and apt-get;
# without them the browser test skips and says why, except under CI, where this fails.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver

if [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; then
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_browser: $CHROMIUM or $CHROMEDRIVER missing and apt-get as root is not available" >&2
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Other jobs on the machine may hold the dpkg lock for a while: wait for it rather than fail.
APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
"${APT[@]}" update -qq
"${APT[@]}" install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null
test -x "$CHROMIUM" && test -x "$CHROMEDRIVER"
