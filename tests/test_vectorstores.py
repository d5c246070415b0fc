"""The Milvus backend against the real engine (Milvus Lite: a local file, or its server
on 127.0.0.1 started and stopped by the test), next to FAISS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ai_digest_qa.cli import main as cli_main
from ai_digest_qa.config import ConfigError
from ai_digest_qa.lifecycle import IndexKeeper
from ai_digest_qa.retrieval import KeywordRetriever
from ai_digest_qa.vectorstores import MilvusVectors, VectorStoreUnavailable
from conftest import AppServer, free_port, make_assistant

pytest.importorskip("pymilvus")

QUESTIONS = {"similarity search of dense vectors": "faiss.md", "偏好优化绕过了奖励模型": "dpo.txt",
             "混合专家模型": "moe.txt"}


def _interrupt(done: int, total: int) -> None:
    raise KeyboardInterrupt  # as Ctrl-C after the first batch


def _milvus(small_corpus: Path, index_dir: Path, **settings: object):
    return make_assistant(small_corpus, index_dir, vector_store="milvus", **settings)


def _top_docs(assistant) -> dict[str, str]:
    return {q: Path(assistant.retrieve(q, top_k=1)[0].doc_id).name for q in QUESTIONS}


def test_milvus_index_builds_answers_and_follows_file_changes(small_corpus, tmp_path):
    index_dir = tmp_path / "index"
    assistant = _milvus(small_corpus, index_dir)
    report = assistant.ensure_index()
    assert isinstance(assistant.store.vectors, MilvusVectors)
    assert (index_dir / "milvus.db").exists()  # Milvus Lite, in the index folder
    assert _top_docs(assistant) == QUESTIONS
    assert assistant.store.vectors.size == len(assistant.store.chunks) == report.chunks_embedded

    # Unchanged files: nothing embedded, the same collection answers after a reload.
    again = _milvus(small_corpus, index_dir)
    assert again.ensure_index().chunks_embedded == 0
    assert again.store.vectors.collection == assistant.store.vectors.collection

    # Add, edit and delete files: the collection follows, without duplicates.
    (small_corpus / "rag.md").write_text(
        "# RAG\n\nRetrieval augmented generation grounds answers in retrieved passages.\n",
        encoding="utf-8")
    (small_corpus / "moe.txt").write_text(
        "混合专家模型\n\n混合专家模型(MoE)每次只激活少数专家,所以计算量低。\n", encoding="utf-8")
    (small_corpus / "dpo.txt").unlink()
    updated = _milvus(small_corpus, index_dir)
    report = updated.ensure_index()
    assert sorted(Path(p).name for p in report.added) == ["rag.md"]
    assert [Path(p).name for p in report.updated] == ["moe.txt"]
    assert [Path(p).name for p in report.removed] == ["dpo.txt"]
    store = updated.store
    assert store.vectors.size == len(store.chunks)
    assert store.vectors.ids() == set(store.chunks)
    hit = updated.retrieve("retrieval augmented generation", top_k=1)[0]
    assert hit.doc_id.endswith("rag.md")
    assert all(not p.doc_id.endswith("dpo.txt") for p in updated.retrieve("偏好优化", top_k=5))


def test_faiss_and_milvus_retrieve_the_same_passages(small_corpus, tmp_path):
    faiss = make_assistant(small_corpus, tmp_path / "faiss")
    milvus = _milvus(small_corpus, tmp_path / "milvus")
    for question in [*QUESTIONS, "approximate nearest neighbour", "RLHF"]:
        assert [p.chunk_id for p in faiss.retrieve(question)] == \
            [p.chunk_id for p in milvus.retrieve(question)], question


def test_milvus_full_text_search_handles_chinese_and_english(small_corpus, tmp_path):
    assistant = _milvus(small_corpus, tmp_path / "index", keyword_search="milvus")
    keyword = KeywordRetriever(assistant.store, 5, "milvus")
    [(chunk_id, score), *_] = keyword.run("偏好优化")
    assert chunk_id.split("::")[0].endswith("dpo.txt") and score > 0
    assert keyword.run("similarity search")[0][0].split("::")[0].endswith("faiss.md")
    assert keyword.run("天气预报") == []
    assert _top_docs(assistant) == QUESTIONS  # the hybrid retriever works on top of it
    with pytest.raises(ConfigError, match="needs vector_store='milvus'"):
        make_assistant(small_corpus, tmp_path / "x", keyword_search="milvus")


def test_vectors_left_by_a_killed_build_are_removed_on_load(small_corpus, tmp_path):
    """A build adds vectors before its generation goes live; if it dies in between,
    the next load deletes them, and searches never return them meanwhile."""
    index_dir = tmp_path / "index"
    assistant = _milvus(small_corpus, index_dir)
    store = assistant.store
    known = set(store.chunks)
    query = assistant.embedder.embed_queries(["similarity search"])[0]
    store.vectors.add(["ghost::0:deadbeef"], query[None, :], ["similarity search ghost"])
    assert store.vectors.search(query, 1)[0][0] == "ghost::0:deadbeef"  # Milvus has it...
    assert all(cid in known for cid, _ in store.dense_search(query, 5))  # ...the index skips it
    reloaded = _milvus(small_corpus, index_dir)
    assert reloaded.ensure_index().chunks_embedded == 0
    assert reloaded.store.vectors_reconciled == 1
    assert reloaded.store.vectors.ids() == known


def test_migration_to_milvus_resumes_checks_counts_and_goes_back(small_corpus, tmp_path,
                                                                 capsys):
    index_dir = tmp_path / "index"
    faiss = make_assistant(small_corpus, index_dir)
    before = _top_docs(faiss)
    chunks = len(faiss.store.chunks)

    # Interrupted after the first chunk: the marker remembers the target collection.
    store = faiss.store
    migrating = _milvus(small_corpus, index_dir)

    with pytest.raises(KeyboardInterrupt):
        IndexKeeper(migrating.config, migrating.embedder, migrating.chunker())._move_vectors(
            store, "milvus", _interrupt, batch=1)
    marker = index_dir / ".migration.json"
    target = MilvusVectors.load_named(migrating.config.milvus_settings, marker)
    assert target.size == 1

    # The command resumes into the same collection and copies only the rest.
    seen: list[int] = []
    resumed = make_assistant(small_corpus, index_dir)
    report = resumed.migrate("milvus", progress=lambda done, total: seen.append(total))
    assert report.vectors_moved == "faiss -> milvus" and report.chunks_embedded == 0
    assert seen and seen[-1] == chunks - 1
    assert resumed.store.vectors.collection == target.collection
    assert resumed.store.vectors.size == chunks
    assert not (index_dir / ".migration.json").exists()
    assert _top_docs(_milvus(small_corpus, index_dir)) == before

    # And back with the CLI, which prints the count check and the setting to keep.
    config = tmp_path / "faiss.toml"
    config.write_text(f'[ai_digest_qa]\ncorpus_dir = "{small_corpus}"\n'
                      f'index_dir = "{index_dir}"\nvector_store = "milvus"\n', encoding="utf-8")
    assert cli_main(["--config", str(config), "migrate", "--to", "faiss"]) == 0
    err = capsys.readouterr().err
    assert f"{chunks} vectors for {chunks} chunks now in faiss" in err
    assert 'Set vector_store = "faiss"' in err
    back = make_assistant(small_corpus, index_dir)
    assert back.ensure_index().vectors_moved is None and back.store.vectors.kind == "faiss"
    assert _top_docs(back) == before


def test_a_migration_of_an_older_index_is_not_resumed(small_corpus, tmp_path):
    """The index changed since the copy was interrupted: its partial copy may hold stale
    vectors, so the migration starts afresh and the partial copy is dropped."""
    index_dir = tmp_path / "index"
    store = make_assistant(small_corpus, index_dir).store
    migrating = _milvus(small_corpus, index_dir)

    with pytest.raises(KeyboardInterrupt):
        IndexKeeper(migrating.config, migrating.embedder, migrating.chunker())._move_vectors(
            store, "milvus", _interrupt, batch=1)
    partial = json.loads((index_dir / ".migration.json").read_text())["collection"]
    (small_corpus / "faiss.md").write_text(
        "# FAISS\n\nFAISS searches dense vectors by similarity, exactly or approximately.\n",
        encoding="utf-8")
    assert make_assistant(small_corpus, index_dir).ensure_index().updated  # a new generation
    resumed = make_assistant(small_corpus, index_dir)
    resumed.migrate("milvus")
    vectors = resumed.store.vectors
    assert vectors.collection != partial and vectors.ids() == set(resumed.store.chunks)
    assert partial not in _collections(index_dir)
    assert resumed.retrieve("similarity search of dense vectors", top_k=1)[0].doc_id.endswith(
        "faiss.md")


class MilvusServer:
    """Milvus Lite's own gRPC server on 127.0.0.1, stopped by its PID."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from milvus_lite.cmdline import main; "
             "sys.exit(main())", "server", "--data-dir", str(data_dir),
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                assert self.process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "Milvus Lite server did not start"
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self._log.close()


@pytest.fixture()
def milvus_server(tmp_path):
    server = MilvusServer(tmp_path / "milvus-data", tmp_path / "milvus.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_two_app_processes_share_one_milvus_server(small_corpus, tmp_path, milvus_server):
    """The team deployment in miniature: one Milvus, two app processes answering at once."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    index_dir = tmp_path / "index"
    builder = _milvus(small_corpus, index_dir, milvus_uri=milvus_server.url)
    builder.ensure_index()
    # Serving instances: no corpus in sight, no re-scan; the index is as the builder left it.
    settings = {"vector_store": "milvus", "milvus_uri": milvus_server.url,
                "corpus_dir": str(tmp_path / "not-mounted"), "auto_update": "false",
                "llm_backend": "extractive"}
    apps = [AppServer(index_dir, tmp_path / f"app{n}.log", **settings) for n in (1, 2)]
    try:
        for app in apps:
            app.wait_until_ready()

        def ask(job: tuple[AppServer, str]) -> str:
            app, question = job
            client = Client(app.url, verbose=False, download_files=False)
            chat, _, sources = client.predict(question, "extractive", 4, api_name="/ask")[:3]
            return str(chat[-1]["content"]) + sources

        jobs = [(apps[0], "What is FAISS?"), (apps[1], "直接偏好优化绕过了什么?"),
                (apps[0], "混合专家模型是什么?"), (apps[1], "What does FAISS support?")]
        with ThreadPoolExecutor(len(jobs)) as pool:
            answers = list(pool.map(ask, jobs))
        assert "similarity search" in answers[0] and "奖励模型" in answers[1]
        assert "专家" in answers[2] and "approximate" in answers[3]
        for app in apps:
            log = app.log_path.read_text()
            assert "Traceback" not in log and "rebuilt" not in log, log[-2000:]
            assert "3 documents" in log  # nothing was removed for the missing corpus
    finally:
        for app in apps:
            app.stop()


def test_an_unreachable_milvus_is_an_error_not_a_rebuild(small_corpus, tmp_path, capsys,
                                                        milvus_server):
    index_dir = tmp_path / "index"
    _milvus(small_corpus, index_dir, milvus_uri=milvus_server.url,
            milvus_token="root:s3cret-token").ensure_index()
    live = (index_dir / "CURRENT").read_text()
    milvus_server.stop()
    config = tmp_path / "down.toml"
    config.write_text(f'[ai_digest_qa]\ncorpus_dir = "{small_corpus}"\n'
                      f'index_dir = "{index_dir}"\nvector_store = "milvus"\n'
                      f'milvus_uri = "{milvus_server.url}"\n'
                      'milvus_token = "root:s3cret-token"\n', encoding="utf-8")
    started = time.monotonic()
    assert cli_main(["--config", str(config), "index"]) == 2
    err = capsys.readouterr().err
    assert f"Cannot use Milvus at {milvus_server.url}" in err and "milvus_uri" in err
    assert "s3cret-token" not in err and "Traceback" not in err
    assert time.monotonic() - started < 60
    assert (index_dir / "CURRENT").read_text() == live  # kept, not rebuilt elsewhere

    # Pointing the index at another Milvus is a settings error, not a reason to rebuild.
    moved = make_assistant(small_corpus, index_dir, vector_store="milvus")  # Lite default
    with pytest.raises(VectorStoreUnavailable, match="Set milvus_uri"):
        moved.ensure_index()
    # An explicit rebuild gets past a Milvus that is gone, into the configured store.
    rebuilt = make_assistant(small_corpus, index_dir)
    report = rebuilt.update_index([], rebuild=True)
    assert any("could not be reached" in n for n in report.notices)
    assert rebuilt.store.vectors.kind == "faiss" and _top_docs(rebuilt) == QUESTIONS


def _collections(index_dir: Path) -> set[str]:
    from pymilvus import MilvusClient

    return set(MilvusClient(str(index_dir / "milvus.db")).list_collections())


def test_a_rebuild_gets_a_new_collection_and_old_ones_are_dropped_a_round_later(
        small_corpus, tmp_path):
    index_dir = tmp_path / "index"
    first = _milvus(small_corpus, index_dir)
    first.ensure_index()
    a = first.store.vectors.collection
    second = _milvus(small_corpus, index_dir)
    second.update_index([], rebuild=True)
    b = second.store.vectors.collection
    assert a != b and {a, b} <= _collections(index_dir)  # a serves readers one more round
    third = _milvus(small_corpus, index_dir)
    third.update_index([], rebuild=True)
    c = third.store.vectors.collection
    assert _collections(index_dir) >= {b, c} and a not in _collections(index_dir)
    assert _top_docs(third) == QUESTIONS

    # A FAISS setting does not move (or drop) a Milvus index: it says how to.
    faiss_config = make_assistant(small_corpus, index_dir)
    report = faiss_config.ensure_index()
    assert faiss_config.store.vectors.kind == "milvus" and not report.vectors_moved
    assert any("ai-digest-qa migrate --to faiss" in n for n in report.notices)
    assert _top_docs(faiss_config) == QUESTIONS


def _cli(small_corpus: Path, index_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AI_DIGEST_QA_CORPUS_DIR": str(small_corpus),
           "AI_DIGEST_QA_INDEX_DIR": str(index_dir), "AI_DIGEST_QA_VECTOR_STORE": "milvus"}
    return subprocess.run([sys.executable, "-m", "ai_digest_qa.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_new_process_searches_an_existing_milvus_index(small_corpus, tmp_path):
    """Milvus keeps a collection written by another process "released" until loaded."""
    index_dir = tmp_path / "index"
    built = _cli(small_corpus, index_dir, "index")
    assert built.returncode == 0, built.stderr[-2000:]
    live = (index_dir / "CURRENT").read_text()
    result = _cli(small_corpus, index_dir, "search", "similarity search of dense vectors",
                  "-k", "1", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)[0]["doc_id"].endswith("faiss.md")
    assert (index_dir / "CURRENT").read_text() == live  # loaded, not rebuilt

    # While this process holds the Lite file, another one gets told what to do instead.
    _milvus(small_corpus, index_dir).ensure_index()
    blocked = _cli(small_corpus, index_dir, "search", "FAISS")
    assert blocked.returncode == 2, blocked.stderr[-2000:]
    assert "another process" in blocked.stderr and "milvus-lite server" in blocked.stderr
    assert "Traceback" not in blocked.stderr
    assert (index_dir / "CURRENT").read_text() == live


class _Probe:
    """What MilvusVectors asks a client before opening a collection."""

    def __init__(self, exists: bool, dimension: int = 8) -> None:
        self.exists, self.dimension = exists, dimension

    def has_collection(self, name: str) -> bool:
        return self.exists

    def describe_collection(self, name: str) -> dict:
        return {"fields": [{"name": "id"}, {"params": {"dim": self.dimension}}]}

    def close(self) -> None:
        pass


@pytest.fixture
def probes(monkeypatch):
    """Replaces the connection to Milvus: records each connect, answers with a probe."""
    from ai_digest_qa import vectorstores

    calls: list[str] = []
    answer = {"probe": _Probe(exists=False)}

    def connect(settings):
        calls.append(settings.uri)
        return answer["probe"]

    monkeypatch.setattr(vectorstores, "_connect", connect)
    return calls, answer


def test_constructing_milvus_vectors_does_no_io(probes, tmp_path):
    from ai_digest_qa.vectorstores import CollectionMissing, MilvusSettings

    calls, _ = probes
    server = MilvusSettings(uri="http://127.0.0.1:9", token="root:secret")  # nothing there
    vectors = MilvusVectors(server, "ai_digest_qa_x", 8, create=False)
    lite = MilvusVectors(MilvusSettings(uri=str(tmp_path / "new" / "milvus.db")),
                         "ai_digest_qa_y", 8, create=True)
    assert calls == [] and not (tmp_path / "new").exists()  # no folder made either
    assert vectors.info() == {"collection": "ai_digest_qa_x", "dimension": 8,
                              "uri": "http://127.0.0.1:9"}
    assert vectors.dimension == 8 and vectors.collection == "ai_digest_qa_x"
    vectors.delete(["a"])  # bookkeeping until the commit: still no connection
    assert calls == [] and lite.kind == "milvus"
    # The first use connects, with the error and message construction used to give.
    with pytest.raises(CollectionMissing, match="'ai_digest_qa_x' is missing at "
                                                "http://127.0.0.1:9"):
        _ = vectors.size
    assert calls == ["http://127.0.0.1:9"]


def test_milvus_classmethods_connect_and_check_the_collection(probes, tmp_path):
    from ai_digest_qa.vectorstores import CollectionMissing, MilvusSettings

    calls, answer = probes
    settings = MilvusSettings(uri="http://127.0.0.1:9")
    answer["probe"] = _Probe(exists=True)
    with pytest.raises(VectorStoreUnavailable, match="already exists at http://127.0.0.1:9"):
        MilvusVectors.create(settings, 8)
    assert len(calls) == 1
    info = tmp_path / MilvusVectors.INFO
    MilvusVectors(settings, "ai_digest_qa_x", 16, create=False).write_info(info)
    with pytest.raises(CollectionMissing, match="holds 8-d vectors, the index expects 16-d"):
        MilvusVectors.load(tmp_path, settings)
    answer["probe"] = _Probe(exists=False)
    with pytest.raises(CollectionMissing, match="'ai_digest_qa_x' is missing"):
        MilvusVectors.load_named(settings, info)
    assert len(calls) == 3


def test_milvus_vectors_connect_once_across_threads(monkeypatch):
    import threading

    from ai_digest_qa.vectorstores import MilvusSettings

    opened = []

    def open_store(self):
        time.sleep(0.05)  # long enough for the other threads to arrive meanwhile
        opened.append(self.collection)
        return object()

    monkeypatch.setattr(MilvusVectors, "_open_store", open_store)
    vectors = MilvusVectors(MilvusSettings(uri="http://127.0.0.1:9"), "c", 8, create=False)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(vectors.store)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    vectors.connect()
    assert opened == ["c"] and len({id(s) for s in seen}) == 1 and seen[0] is vectors.store
