#!/usr/bin/env bash
# Install everything (CPU-only torch first, then the package with its test extras) into
# .venv and run the linter, the type checker and the whole test suite, slow end-to-end
# tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
# Chromium and fonts for the browser test; without them (no root) that test is skipped.
bash scripts/browser-deps.sh || echo "warning: could not install Chromium; the browser test will be skipped" >&2
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# Pin torch before anything that needs it: an unpinned torch pulls CUDA wheels.
python -m pip install --quiet torch==2.13.0
python -m pip install --quiet -e ".[st,milvus,test]"
ruff check src tests app.py
mypy src/ai_digest_qa
python -m pytest -v "$@"
