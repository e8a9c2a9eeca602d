#!/usr/bin/env bash
# Run SpanLab's whole test suite on a fresh machine: Python deps (scripts/setup.sh), Debian's chromium for the
# browser test and Debian's postgresql for the PostgreSQL runs of the storage tests (apt-get; needs root or sudo),
# then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PACKAGES=""
if ! command -v chromium >/dev/null 2>&1 || [ ! -d /usr/share/fonts/truetype/noto ]; then
  PACKAGES="chromium fonts-noto-color-emoji"
fi
# the storage, concurrency and migration tests also run on a throwaway PostgreSQL server (tests/postgres.py)
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  PACKAGES="$PACKAGES postgresql"
fi
if [ -n "$PACKAGES" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $PACKAGES >/dev/null
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest "$@"
