#!/usr/bin/env bash
# Installs checkov into its own virtualenv (.emulators/checkov-venv): checkov pins many libraries
# (boto3, networkx, ...) that must not touch the project's environment. Idempotent: a stamp file
# skips the work once done. tests/emulators/test_checkov.py finds checkov there and skips (or fails
# under MESHKIT_REQUIRE_EMULATORS=1) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOV_VERSION="${MESHKIT_CHECKOV_VERSION:-3.3.30}"
VENV=.emulators/checkov-venv
STAMP="$VENV/.installed-$CHECKOV_VERSION"
if [[ -f "$STAMP" && -x "$VENV/bin/checkov" ]]; then
  exit 0
fi
# checkov supports CPython 3.9-3.12; prefer the newest of those on PATH
PYTHON=""
for candidate in python3.12 python3.11 python3.10 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] < (3, 13))' 2>/dev/null; then
    PYTHON="$candidate"
    break
  fi
done
if [[ -z "$PYTHON" ]]; then
  echo "install-checkov: no Python 3.9-3.12 found; checkov tests will skip (and fail under MESHKIT_REQUIRE_EMULATORS=1)" >&2
  exit 0
fi
mkdir -p .emulators
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
"$VENV/bin/checkov" --version >/dev/null
touch "$STAMP"
