#!/usr/bin/env bash
# Installs the GCP emulators the emulator tests start (idempotent: a stamp per emulator skips done work).
#   gcp-storage-emulator (GCS)   into the project virtualenv (.venv): pure Python, one dependency
#                                (google-crc32c) that the Google clients already bring.
#   local-bigquery (BigQuery)    into .emulators/bigquery-venv, built with Python >= 3.13 (it needs it),
#                                with DuckDB's extensions from PyPI installed into DuckDB beforehand:
#                                the emulator cannot download them at run time without internet.
# Without a Python 3.13 the BigQuery part says why and exits 0; the tests then skip with that reason
# (and fail under MESHKIT_REQUIRE_EMULATORS=1).
set -euo pipefail
cd "$(dirname "$0")/.."

GCS_VERSION="${MESHKIT_GCS_EMULATOR_VERSION:-2026.7.19}"
BQ_VERSION="${MESHKIT_LOCAL_BIGQUERY_VERSION:-0.3.2}"
DUCKDB_VERSION="${MESHKIT_BIGQUERY_DUCKDB_VERSION:-1.5.5}"
EXTENSIONS=(icu httpfs avro spatial ducklake)

# --- GCS: gcp-storage-emulator into the project venv -------------------------------------------------
PROJECT_PYTHON=.venv/bin/python
if [[ -x "$PROJECT_PYTHON" ]]; then
  if ! "$PROJECT_PYTHON" -c 'import gcp_storage_emulator' 2>/dev/null; then
    "$PROJECT_PYTHON" -m pip install --quiet --disable-pip-version-check "gcp-storage-emulator==$GCS_VERSION"
  fi
else
  echo "install-gcp-emulators: no project virtualenv (.venv); run 'make' first for gcp-storage-emulator" >&2
fi

# --- BigQuery: local-bigquery in its own Python 3.13 venv --------------------------------------------
VENV=.emulators/bigquery-venv
STAMP="$VENV/.installed-$BQ_VERSION-duckdb-$DUCKDB_VERSION"
if [[ -f "$STAMP" && -x "$VENV/bin/local-bigquery" ]]; then
  exit 0
fi

# local-bigquery declares Requires-Python >=3.13,<3.14. A pyenv shim on PATH answers `python3.13` only
# when that version is selected, so also ask pyenv for an installed 3.13 directly.
PYTHON=""
accepts() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; }
if command -v python3.13 >/dev/null 2>&1 && accepts python3.13; then
  PYTHON=python3.13
elif command -v pyenv >/dev/null 2>&1; then
  for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$' | sort -rV); do
    candidate="$(pyenv root)/versions/$version/bin/python3.13"
    if [[ -x "$candidate" ]] && accepts "$candidate"; then
      PYTHON="$candidate"
      break
    fi
  done
fi
if [[ -z "$PYTHON" ]]; then
  echo "install-gcp-emulators: no Python 3.13 found (local-bigquery $BQ_VERSION needs >=3.13,<3.14);" \
    "BigQuery emulator tests will skip (and fail under MESHKIT_REQUIRE_EMULATORS=1)" >&2
  exit 0
fi

mkdir -p .emulators
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
packages=("local-bigquery==$BQ_VERSION" "duckdb==$DUCKDB_VERSION" duckdb-extensions)
for ext in "${EXTENSIONS[@]}"; do
  packages+=("duckdb-extension-$ext==$DUCKDB_VERSION")
done
"$VENV/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}"
# The extension packages' own instructions: `duckdb_extensions.import_extension(name)` installs the
# bundled binary into DuckDB's extension directory, where the emulator's DuckDB loads it from.
"$VENV/bin/python" - "${EXTENSIONS[@]}" <<'PY'
import sys

import duckdb
from duckdb_extensions import import_extension

for name in sys.argv[1:]:
    import_extension(name)
installed = {
    row[0]
    for row in duckdb.sql("SELECT extension_name FROM duckdb_extensions() WHERE installed").fetchall()
}
missing = [name for name in sys.argv[1:] if name not in installed]
if missing:
    sys.exit(f"install-gcp-emulators: DuckDB extensions not installed: {', '.join(missing)}")
PY
"$VENV/bin/local-bigquery" --help >/dev/null
touch "$STAMP"
