"""The index life cycle (lifecycle.py): load, update, rebuild and migrate decisions, with
the fake embedder (fast, deterministic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ai_digest_qa import load_config
from ai_digest_qa.chunking import Chunker
from ai_digest_qa.config import Config
from ai_digest_qa.index import IndexStore
from ai_digest_qa.lifecycle import IndexKeeper, IndexRequest
from fakes import TINY_CORPUS, FakeEmbedder


class NoEmbedding(FakeEmbedder):
    """Fails the test if anything is embedded: a sound index loads without the model."""

    def _embed(self, texts: list[str]) -> np.ndarray:
        raise AssertionError(f"embedded {len(texts)} texts")


def _config(folder: Path, **settings: object) -> Config:
    corpus = folder / "corpus"
    if not corpus.exists():
        corpus.mkdir(parents=True)
        for name, text in TINY_CORPUS.items():
            (corpus / name).write_text(text, encoding="utf-8")
    return load_config(corpus_dir=corpus, index_dir=folder / "index", **settings)


def _run(config: Config, request: IndexRequest | None = None,
         embedder: FakeEmbedder | None = None):
    keeper = IndexKeeper(config, embedder or FakeEmbedder(),
                         Chunker(config.chunk_size, config.chunk_overlap))
    return keeper.run(request or IndexRequest())


def test_no_index_is_built_and_saved_then_loaded_without_embedding(tmp_path):
    config = _config(tmp_path)
    store, report = _run(config)
    assert report.rebuilt_because == "no index yet"
    assert report.chunks_embedded == len(store.chunks) > 0
    assert IndexStore.current_generation(config.index_dir) is not None
    again, report = _run(config, embedder=NoEmbedding())
    assert report.rebuilt_because is None and report.chunks_embedded == 0
    assert set(again.chunks) == set(store.chunks)


def test_changed_chunking_or_a_request_rebuilds_and_says_why(tmp_path):
    _run(_config(tmp_path))
    _, report = _run(_config(tmp_path, chunk_size=120, chunk_overlap=20))
    assert "chunking settings changed" in (report.rebuilt_because or "")
    _, report = _run(_config(tmp_path, chunk_size=120, chunk_overlap=20),
                     IndexRequest(rebuild=True))
    assert report.rebuilt_because == "rebuild requested" and report.chunks_embedded > 0


def test_a_scan_finds_changed_files_and_no_scan_serves_the_index_as_it_is(tmp_path):
    config = _config(tmp_path)
    store, _ = _run(config)
    (config.corpus_dir / "new.md").write_text("# New\n\nA new note about FAISS indexes.\n",
                                              encoding="utf-8")
    served, report = _run(config, IndexRequest(scan=False), NoEmbedding())
    assert report.chunks_embedded == 0 and set(served.chunks) == set(store.chunks)
    updated, report = _run(config, IndexRequest(scan=True))
    assert report.chunks_embedded > 0 and len(updated.chunks) > len(store.chunks)


def test_added_and_removed_sources_are_remembered(tmp_path):
    config = _config(tmp_path)
    _run(config)
    extra = tmp_path / "mine"
    extra.mkdir()
    (extra / "note.md").write_text("# Mine\n\nMy own note on vector search.\n",
                                   encoding="utf-8")
    store, _ = _run(config, IndexRequest(add_paths=(extra,)))
    assert str(extra.resolve()) in store.manifest.sources
    assert any("note.md" in chunk_id for chunk_id in store.chunks)
    store, _ = _run(config, IndexRequest(remove_paths=(extra,)))
    assert str(extra.resolve()) not in store.manifest.sources
    assert not any("note.md" in chunk_id for chunk_id in store.chunks)


def test_vectors_in_another_backend_than_configured_stay_put_with_a_notice(tmp_path):
    _run(_config(tmp_path))
    config = _config(tmp_path, vector_store="milvus")
    store, report = _run(config, embedder=NoEmbedding())
    assert store.vectors.kind == "faiss" and report.vectors_moved is None
    assert any("migrate --to milvus" in notice for notice in report.notices)


def test_a_damaged_index_is_rebuilt_with_the_reason(tmp_path):
    config = _config(tmp_path)
    _run(config)
    folder = IndexStore.current_generation(config.index_dir)
    assert folder is not None
    chunks_file = next(p for p in folder.iterdir() if p.name.startswith("chunks"))
    chunks_file.write_bytes(chunks_file.read_bytes()[:-10])
    store, report = _run(config)
    assert report.rebuilt_because and report.chunks_embedded == len(store.chunks)


def test_migrating_to_the_backend_it_is_in_moves_nothing(tmp_path):
    config = _config(tmp_path)
    _run(config)
    store, report = _run(config, IndexRequest(migrate_to="faiss"), NoEmbedding())
    assert report.vectors_moved is None and store.vectors.kind == "faiss"
