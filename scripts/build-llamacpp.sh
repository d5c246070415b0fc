#!/usr/bin/env bash
# Build llama.cpp (llama-cpp-python) for this CPU's instruction sets and install it into
# the active venv. The prebuilt xllamacpp wheel stops at AVX2; on a CPU with AVX512 a
# build with those kernels reads prompts about 1.4x faster. The assistant chooses between
# the two runtimes by measuring both (llm_runtime = "auto"), so a failed or skipped build
# only means the wheel is used.
#
# The flags are set explicitly (GGML_NATIVE=OFF): a native build also turns on AMX, which
# some virtual machines list in /proc/cpuinfo but trap on (SIGILL), so AMX stays off.
# The wheel is kept in ~/.cache/ai-digest-qa/llama-cpp-python/<flags>/: pip's own wheel
# cache ignores CMAKE_ARGS, so it would hand an AVX512 build to a CPU without AVX512.
# A first build takes 5-10 minutes on two cores; later installs take seconds.
set -euo pipefail
VERSION=0.3.36
has() { grep -qw "$1" /proc/cpuinfo; }
# ggml's AVX512 kernels need the F, BW, DQ and VL subsets together.
if [ "$(uname -m)" != "x86_64" ] || ! { has avx512f && has avx512bw && has avx512dq && has avx512vl; }; then
    echo "build-llamacpp: no AVX512 here; the prebuilt xllamacpp wheel is as fast, skipping"
    exit 0
fi
if ! command -v cc >/dev/null || ! command -v c++ >/dev/null; then
    echo "build-llamacpp: no C/C++ compiler; using the prebuilt xllamacpp wheel" >&2
    exit 0
fi
flags=(AVX AVX2 FMA F16C BMI2 AVX512)
has avx512_vnni && flags+=(AVX512_VNNI)
has avx512_bf16 && flags+=(AVX512_BF16)
has avx512vbmi && flags+=(AVX512_VBMI)
has avx_vnni && flags+=(AVX_VNNI)
cmake_args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
cmake_args+=" -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF"
for flag in "${flags[@]}"; do cmake_args+=" -DGGML_${flag}=ON"; done
key="$VERSION-$(printf '%s' "$cmake_args" | sha256sum | cut -c1-12)"
wheels="${XDG_CACHE_HOME:-$HOME/.cache}/ai-digest-qa/llama-cpp-python/$key"
if [ -e "$wheels/build-failed" ]; then
    # Not again on every install: delete the marker to retry.
    echo "build-llamacpp: an earlier build failed here ($wheels/build-failed); using the prebuilt wheel" >&2
    exit 0
fi
if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "build-llamacpp: building llama-cpp-python $VERSION with ${flags[*]} (5-10 minutes)"
    mkdir -p "$wheels"
    started=$(date +%s)
    if ! CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        python -m pip wheel --quiet --no-deps --no-cache-dir --no-binary llama-cpp-python \
        "llama-cpp-python==$VERSION" -w "$wheels"; then
        echo "build-llamacpp: the build failed; using the prebuilt xllamacpp wheel" >&2
        date > "$wheels/build-failed"
        exit 0
    fi
    # The bench reports what the first install cost.
    printf '{"version": "%s", "flags": "%s", "build_seconds": %s}\n' \
        "$VERSION" "${flags[*]}" "$(( $(date +%s) - started ))" > "$wheels/build.json"
fi
# --force-reinstall: the same version built with other flags must replace the old one;
# its dependencies are installed normally.
python -m pip install --quiet --force-reinstall --no-deps "$wheels"/llama_cpp_python-*.whl
python -m pip install --quiet "$wheels"/llama_cpp_python-*.whl
