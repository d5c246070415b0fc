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
# llama.cpp built for this CPU where it has AVX512 (5-10 minutes the first time, cached
# after); the assistant measures it against the prebuilt wheel and keeps the faster.
bash scripts/build-llamacpp.sh || echo "warning: llama.cpp was not built for this CPU; using the prebuilt wheel" >&2
ruff check src tests app.py
mypy src/ai_digest_qa
python -m pytest -v "$@"
# The default install (`pip install -e .`, what scripts/run.sh installs: no milvus or st
# extras) must read files, serve the API and detect and rebuild a damaged index on its
# own; the tests above always have the extras. The wheels are cached by now (~1 min).
python3 -m venv .venv-default
.venv-default/bin/python -m pip install --quiet --upgrade pip
.venv-default/bin/python -m pip install --quiet -e ".[test]"
.venv-default/bin/python -c "import importlib.util as u, sys; sys.exit(bool(u.find_spec('pymilvus') or u.find_spec('torch')))" \
    || { echo "the default install should have neither pymilvus nor torch" >&2; exit 1; }
.venv-default/bin/python -m pytest -q -p no:cacheprovider -m "not slow" \
    tests/test_index.py tests/test_integrity.py tests/test_backends.py tests/test_corpus.py \
    tests/test_api.py tests/test_structure.py
