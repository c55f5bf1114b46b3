#!/usr/bin/env bash
# Install a headless-capable Chromium for the browser tests (tests/e2e/test_dashboard_browser.py).
# Idempotent: does nothing when a chromium is already on PATH. Uses Debian's `chromium` package, since
# Playwright's own browser download cannot work without internet access.
set -euo pipefail

for candidate in chromium chromium-browser google-chrome; do
  if command -v "$candidate" >/dev/null 2>&1; then
    echo "install-browser: $(command -v "$candidate") is already installed"
    exit 0
  fi
done

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: no chromium on PATH and no apt-get to install it; install Chromium with this" \
    "system's package manager (the browser tests skip without it, and fail under MESHKIT_REQUIRE_EMULATORS=1)" >&2
  exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-browser: installing Debian's chromium needs root (or sudo)" >&2
    exit 1
  fi
  sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "install-browser: installed $(command -v chromium)"
