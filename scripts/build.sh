#!/usr/bin/env bash
# Builds and installs the ferry Python package and the `ferry` command into .venv. Incremental:
# the CMake build folder (build/python-*) is kept between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation . 2>&1 |
  grep -v "^WARNING: Location" || true
test -x .venv/bin/ferry
