#!/bin/sh
# Installs what tests/it/browser.rs needs: Debian's headless-capable Chromium
# (the test drives it over the DevTools protocol, so no chromedriver) and a
# font so that pages render. Idempotent: does nothing when chromium is present.
set -eu

if command -v chromium >/dev/null 2>&1; then
    echo "install-browser: $(chromium --version 2>/dev/null || echo chromium) already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    chromium fonts-liberation ca-certificates
chromium --version
