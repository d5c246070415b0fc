#!/usr/bin/env bash
# Install everything (CPU-only torch first, then the package with its test extras) into
# .venv and run the linter and the whole test suite, slow end-to-end tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# Pin torch before anything that needs it: an unpinned torch pulls CUDA wheels.
python -m pip install --quiet torch==2.13.0
python -m pip install --quiet -e ".[st,test]"
ruff check src tests
python -m pytest -v "$@"
