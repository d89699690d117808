#!/usr/bin/env bash
# Runs bench/run.py (ferry against its baselines, same run, outputs checked). Arguments pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
export PATH="$PWD/.venv/bin:$PATH"
cmake -S . -B build/release -G Ninja -DPython3_EXECUTABLE="$PWD/.venv/bin/python" >/dev/null
scripts/build.sh
exec .venv/bin/python bench/run.py "$@"
