#!/usr/bin/env bash
# The main job on data ferry makes itself: move bytes and a safetensors checkpoint from a local
# file and a loopback HTTP server (nginx) into memory, check them, and report throughput; train a
# tokenizer on the repository's own text and encode with it; stream that text as tar shards over two
# ranks (split checked exact) and as token-packed batches.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh demo
scripts/build.sh
exec .venv/bin/python scripts/demo.py "$@"
