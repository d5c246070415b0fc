"""Weight formats: conversion, integrity of converted files, choice by measurement."""

import json

import numpy as np
import pytest

from ai_digest_qa.checksums import file_sha256
from ai_digest_qa.weights import (
    FALLBACK,
    ProbeUnavailable,
    WeightsError,
    choose_variant,
    converted_path,
)


@pytest.fixture()
def tiny_gguf(tmp_path):
    """A small GGUF with the shipped model's kinds of tensor (Q5_0 matrices, F32 norms)."""
    import gguf
    from gguf import GGMLQuantizationType as Q
    from gguf import quants

    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_block_count(1)
    writer.add_string("tokenizer.ggml.model", "gpt2")
    writer.add_array("tokenizer.ggml.tokens", ["a", "b", "c"])
    for name in ("blk.0.ffn_up.weight", "token_embd.weight"):
        values = rng.standard_normal((64, 64)).astype(np.float32)
        writer.add_tensor(name, quants.quantize(values, Q.Q5_0), raw_dtype=Q.Q5_0)
    writer.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _types(path):
    import gguf

    reader = gguf.GGUFReader(str(path))
    return {t.name: t.tensor_type.name for t in reader.tensors}, reader


def test_conversion_requantizes_the_matrices_and_keeps_the_rest(tiny_gguf, tmp_path):
    from gguf import quants

    out = converted_path(tiny_gguf, "q8_0", tmp_path / "cache")
    types, reader = _types(out)
    assert types == {"blk.0.ffn_up.weight": "Q8_0", "token_embd.weight": "Q5_0",
                     "output_norm.weight": "F32"}
    _, source = _types(tiny_gguf)
    before = quants.dequantize(source.tensors[0].data, source.tensors[0].tensor_type)
    after = quants.dequantize(reader.tensors[0].data, reader.tensors[0].tensor_type)
    assert np.abs(after - before).max() < 0.02 * np.abs(before).max()  # Q8_0 keeps Q5_0
    assert reader.fields["tokenizer.ggml.tokens"].contents() == ["a", "b", "c"]
    assert converted_path(tiny_gguf, "shipped", tmp_path / "cache") == tiny_gguf


@pytest.mark.parametrize("damage", ["overwrite", "truncate", "record"])
def test_a_damaged_converted_file_is_detected_and_remade(tiny_gguf, tmp_path, damage):
    cache = tmp_path / "cache"
    out = converted_path(tiny_gguf, "q4_0", cache)
    good = out.read_bytes()
    record = out.with_suffix(".json")
    if damage == "overwrite":  # same size, bytes changed inside
        data = bytearray(good)
        data[len(data) // 2:len(data) // 2 + 64] = b"\xff" * 64
        out.write_bytes(bytes(data))
    elif damage == "truncate":
        out.write_bytes(good[: len(good) // 2])
    else:
        record.write_text("{not json")
    assert converted_path(tiny_gguf, "q4_0", cache) == out
    assert out.read_bytes() == good
    assert json.loads(record.read_text())["sha256"] == file_sha256(out)


def test_a_changed_source_is_converted_again(tiny_gguf, tmp_path):
    cache = tmp_path / "cache"
    out = converted_path(tiny_gguf, "q8_0", cache)
    first = json.loads(out.with_suffix(".json").read_text())
    tiny_gguf.write_bytes(tiny_gguf.read_bytes())  # a new mtime: another source file
    converted_path(tiny_gguf, "q8_0", cache)
    again = json.loads(out.with_suffix(".json").read_text())
    assert again["source_mtime_ns"] != first["source_mtime_ns"]


def test_unknown_formats_and_unwritable_caches_say_so(tiny_gguf, tmp_path):
    with pytest.raises(WeightsError, match="unknown weight format"):
        converted_path(tiny_gguf, "q2_k", tmp_path)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(WeightsError, match="cannot make the q8_0 model"):
        converted_path(tiny_gguf, "q8_0", blocked)


FORMATS_ONLY = [("xllamacpp", "q8_0"), ("xllamacpp", "shipped")]
RUNTIMES_AND_FORMATS = [(r, f) for r in ("xllamacpp", "llama-cpp-python")
                        for f in ("q8_0", "shipped")]


def test_the_format_is_chosen_by_measured_speed_once(tiny_gguf, tmp_path):
    cache = tmp_path / "cache"
    measured = []

    def probe(runtime, path):
        measured.append(path.name)
        return 200.0 if ".q8_0." in path.name else 100.0

    assert choose_variant(tiny_gguf, cache, probe, FORMATS_ONLY) == ("xllamacpp", "q8_0")
    assert choose_variant(tiny_gguf, cache, probe, FORMATS_ONLY) == ("xllamacpp", "q8_0")
    assert sorted(measured) == ["tiny.gguf", "tiny.q8_0.gguf"]  # measured once
    slower = choose_variant(tiny_gguf, tmp_path / "other",
                            lambda r, p: 5.0 if p.name == "tiny.gguf" else 1.0, FORMATS_ONLY)
    assert slower == ("xllamacpp", "shipped")


def test_runtime_and_format_are_chosen_together_and_remembered_per_candidate_set(
        tiny_gguf, tmp_path):
    speeds = {("xllamacpp", "q8_0"): 170.0, ("xllamacpp", "shipped"): 150.0,
              ("llama-cpp-python", "q8_0"): 205.0, ("llama-cpp-python", "shipped"): 210.0,
              ("xllamacpp", "q4_0"): 160.0}
    measured = []

    def probe(runtime, path):
        fmt = path.suffixes[0][1:] if len(path.suffixes) > 1 else "shipped"
        measured.append((runtime, fmt))
        return speeds[(runtime, fmt)]

    cache = tmp_path / "cache"
    assert choose_variant(tiny_gguf, cache, probe, RUNTIMES_AND_FORMATS) == (
        "llama-cpp-python", "shipped")
    assert sorted(measured) == sorted(RUNTIMES_AND_FORMATS)
    memo = json.loads((cache / "tiny.gguf.runtime-choice.json").read_text())
    assert memo["prompt_tokens_per_s"]["llama-cpp-python:shipped"] == 210.0
    # The runtime uninstalled (or one set explicitly): chosen among the rest from what
    # was measured, nothing measured again.
    assert choose_variant(tiny_gguf, cache, probe, FORMATS_ONLY) == ("xllamacpp", "q8_0")
    assert choose_variant(tiny_gguf, cache, probe, [("xllamacpp", "q4_0"), *FORMATS_ONLY]
                          ) == ("xllamacpp", "q8_0")
    assert len(measured) == 5 and measured[-1] == ("xllamacpp", "q4_0")  # only the new one


def test_a_variant_that_fails_is_not_chosen(tiny_gguf, tmp_path):
    def probe(runtime, path):
        if runtime == "llama-cpp-python" or ".q8_0." in path.name:
            raise RuntimeError("killed by signal 4")
        return 10.0

    assert choose_variant(tiny_gguf, tmp_path / "cache", probe, RUNTIMES_AND_FORMATS
                          ) == ("xllamacpp", "shipped")
    with_q4 = [("xllamacpp", "q4_0"), *FORMATS_ONLY]
    assert choose_variant(tiny_gguf, tmp_path / "other", probe, with_q4
                          ) == ("xllamacpp", "q4_0")  # the first of the fastest that loads
    nothing = choose_variant(tiny_gguf, tmp_path / "none", probe,
                             [("llama-cpp-python", "shipped")])
    assert nothing == FALLBACK


def test_a_measurement_that_could_not_be_made_is_tried_again(tiny_gguf, tmp_path):
    calls = []

    def busy_then_fast(runtime, path):
        calls.append(runtime)
        if len(calls) == 1:
            raise ProbeUnavailable("took over 300 s")
        return 300.0 if runtime == "llama-cpp-python" else 100.0

    candidates = [("llama-cpp-python", "shipped"), ("xllamacpp", "shipped")]
    cache = tmp_path / "cache"
    assert choose_variant(tiny_gguf, cache, busy_then_fast, candidates) == (
        "xllamacpp", "shipped")
    assert choose_variant(tiny_gguf, cache, busy_then_fast, candidates) == (
        "llama-cpp-python", "shipped")  # measured again, not remembered as broken
    assert calls == ["llama-cpp-python", "xllamacpp", "llama-cpp-python"]


@pytest.mark.slow
def test_the_shipped_weights_answer_when_the_converted_ones_cannot_load(
        corpus_assistant, tmp_path, monkeypatch):
    from dataclasses import replace

    from ai_digest_qa import llm

    garbage = tmp_path / "broken.q8_0.gguf"
    garbage.write_bytes(b"GGUF" + b"\0" * 4096)
    monkeypatch.setattr(llm, "converted_path", lambda source, fmt, cache: garbage)
    config = replace(corpus_assistant.config, local_model_format="q8_0",
                     llm_runtime="xllamacpp", llm_threads=2)
    model = llm.local_llm(config)
    assert model.model_path == llm.resolve_model_path(config)  # the shipped file
    reply = "".join(model.stream([{"role": "user", "content": "Say OK."}], max_tokens=4,
                                 temperature=0.0, timeout=60))
    assert reply.strip()
