#!/usr/bin/env bash
# Sets up, then runs every test: pytest (which also runs the lit/FileCheck suite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python -m pytest tests -q -p no:cacheprovider "$@"
