#!/bin/sh
# Installs Debian's chromium for the web demo's browser tests, unless a Chromium is there.
set -e
if command -v chromium >/dev/null 2>&1 || [ -n "$CHROMIUM" ] || [ "$ALAE_SKIP_BROWSER_TESTS" = 1 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: no apt-get here: install Chromium yourself and set CHROMIUM=/path/to/it," \
         "or set ALAE_SKIP_BROWSER_TESTS=1 to skip the browser tests" >&2
    exit 1
fi
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
echo "install-chromium: apt-get install chromium (for the browser tests of web_demo/)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium
