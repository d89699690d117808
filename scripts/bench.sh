#!/usr/bin/env bash
# Runs bench/run.py (ferry against its baselines, same run, outputs checked). Arguments pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
export PATH="$PWD/.venv/bin:$PATH"
cmake -S . -B build/release -G Ninja -DPython3_EXECUTABLE="$PWD/.venv/bin/python" >/dev/null
scripts/build.sh
# MosaicML streaming, a datasets anchor, lives in a virtualenv of its own: it imports
# torchvision, whose PyPI wheels do not load beside the CPU torch in .venv (bench/mosaic_stream.py).
# torch 2.14.1 + torchvision 0.29.1 is the pair that imports here (a CUDA build, ~5.5 GB, once).
anchors=.cache/bench/anchors-venv
if [[ " $* " != *" --only "* || " $* " == *" datasets "* ]] &&
    ! { [[ -x $anchors/bin/python ]] && $anchors/bin/python -c "import streaming" 2>/dev/null; }; then
  echo "bench: preparing $anchors (MosaicML streaming)"
  python3 -m venv "$anchors"
  "$anchors"/bin/pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1 \
    mosaicml-streaming==0.13.0
fi
exec .venv/bin/python bench/run.py "$@"
