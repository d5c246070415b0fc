"""Benchmarks: speed and memory of the assistant, measured against their limits in one run.

``ai-digest-qa bench`` prints and writes (JSON, markdown, PNG plot):

- indexing throughput of the whole pipeline against the embedder alone on the same texts;
- retrieval latency p50/p95, ours against the plain llama-index baseline;
- answer latency (first token, total), generation speed against raw llama.cpp on the same
  prompt, and prompt tokens per answer;
- peak memory (RSS) of the process holding index, embedder and model;
- scale: vector search latency, memory and recall against exact search on a synthetic
  corpus of 1e4, 1e5 (and, by hand, 1e6) chunks, with the FAISS index type chosen by size;
- integrity: the time to verify the checksums of an index of those sizes, against
  sha256's in-memory speed in the same run.

Figures are wall-clock on a noisy machine: compare ratios measured in the same run.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import backends
from .answer import focus_passages
from .assistant import Assistant
from .config import Config
from .evaluation import EvalQuestion
from .index import _embed_text
from .integrity import checksums, split, verify
from .prompts import answer_messages
from .records import (
    Answer,
    BenchAnswerRow,
    IntegrityRow,
    MilvusScaleRow,
    Passage,
    Retrieval,
    ScaleRow,
)
from .vectorstores import choose_faiss_index, make_faiss_index


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else 0.0


def _latency(values: list[float]) -> dict[str, float]:
    """p50/p95/mean in milliseconds."""
    ms = [v * 1000 for v in values]
    return {"n": len(ms), "p50_ms": _percentile(ms, 50), "p95_ms": _percentile(ms, 95),
            "mean_ms": statistics.fmean(ms) if ms else 0.0}


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = float("nan")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(memory_gb, 1),
            "python": platform.python_version(), "platform": platform.platform()}


# --- stages ---------------------------------------------------------------------------


def bench_indexing(assistant: Assistant, rounds: int = 2) -> dict[str, Any]:
    """Full builds into a fresh folder, against the embedder alone on the same texts.

    The two alternate, ``rounds`` times each, and each keeps its fastest run: back to back
    on this machine one build read 1.02x the embedder's time and the next 1.11x, so a
    single pair measures the machine's drift as much as the pipeline's overhead."""
    pipeline: list[float] = []
    raw: list[float] = []
    for _ in range(rounds):
        seconds, chunks, texts, documents = _timed_build(assistant)
        pipeline.append(seconds)
        raw.append(_timed_embedding(assistant, texts))
    best_pipeline, best_raw = min(pipeline), min(raw)
    return {"documents": documents, "chunks": chunks, "rounds": rounds,
            "pipeline_seconds": best_pipeline,
            "pipeline_chunks_per_s": _ratio(chunks, best_pipeline),
            "embedder_seconds": best_raw, "embedder_chunks_per_s": _ratio(len(texts), best_raw),
            "overhead_ratio": _ratio(best_pipeline, best_raw),
            "pipeline_runs": pipeline, "embedder_runs": raw}


def _timed_build(assistant: Assistant) -> tuple[float, int, list[str], int]:
    """Seconds for a full build, chunks embedded, the texts embedded, documents."""
    with tempfile.TemporaryDirectory(prefix="bench-index-") as folder:
        fresh = Assistant(replace(assistant.config, index_dir=Path(folder)))
        fresh._embedder = assistant.embedder  # the model is loaded already: time the work
        started = time.perf_counter()
        report = fresh.ensure_index(progress=lambda done, total: None, rebuild=True)
        seconds = time.perf_counter() - started
        store = fresh.store
        texts = [_embed_text(store.documents[r.chunk.doc_id], r.chunk)
                 for r in store.chunks.values()]
        return seconds, report.chunks_embedded, texts, len(store.documents)


def _timed_embedding(assistant: Assistant, texts: list[str]) -> float:
    batch = assistant.config.embedding_batch_size
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        assistant.embedder.embed_passages(texts[i:i + batch])
    return time.perf_counter() - started


def bench_retrieval(assistant: Assistant, baseline: Any | None,
                    questions: list[EvalQuestion], top_k: int = 5) -> dict[str, Any]:
    """Per-query latency over the question set (after one warm-up query each)."""
    texts = [q.question for q in questions]
    result: dict[str, Any] = {}
    systems = {"ours": assistant.retrieve}
    if baseline is not None:
        systems["baseline"] = baseline.retrieve
    for name, retrieve in systems.items():
        retrieve(texts[0], top_k=top_k)  # warm-up: lazy loads are not per-query costs
        times = []
        for text in texts:
            started = time.perf_counter()
            retrieve(text, top_k=top_k)
            times.append(time.perf_counter() - started)
        result[name] = _latency(times)
    if "baseline" in result:
        result["p50_ratio_ours_to_baseline"] = _ratio(result["ours"]["p50_ms"],
                                                      result["baseline"]["p50_ms"])
    return result


def bench_answers(assistant: Assistant, questions: list[EvalQuestion],
                  llm: str = "local", focus_chars: int = 600) -> dict[str, Any]:
    """First-token and total latency of our answers; raw llama.cpp on the same prompt, and
    on it with passages focused to ``focus_chars`` (``prompt_passage_chars``; default off
    because it costs answer accuracy, measured here for what it saves)."""
    focus_chars = assistant.config.prompt_passage_chars or focus_chars
    model = assistant.llm(llm)
    rows = [_bench_answer(assistant, model, question, llm, focus_chars)
            for question in questions]
    return {"summary": _answers_summary(rows, getattr(model, "name", llm), assistant.config,
                                        focus_chars),
            "questions": rows}


class _Streamed(NamedTuple):
    """One answer as streamed: seconds to the first and the last piece (None without
    pieces), the pieces, the passages retrieved and the final answer."""

    first: float | None
    last: float | None
    pieces: int
    total: float
    passages: list[Passage]
    answer: Answer | None


def _stream_answer(assistant: Assistant, question: EvalQuestion, llm: str) -> _Streamed:
    pieces = 0
    first = last = None
    passages: list[Passage] = []
    answer: Answer | None = None
    started = time.perf_counter()
    for item in assistant.ask_stream(question.question, llm=llm, include_retrieval=True):
        if isinstance(item, Retrieval):
            passages = item.passages
        elif isinstance(item, Answer):
            answer = item
        else:
            pieces += 1
            last = time.perf_counter() - started
            if first is None:
                first = last
    return _Streamed(first, last, pieces, time.perf_counter() - started, passages, answer)


def _bench_answer(assistant: Assistant, model: Any, question: EvalQuestion, llm: str,
                  focus_chars: int) -> BenchAnswerRow:
    """One question: our streamed timings, and raw llama.cpp's on the same prompt."""
    streamed = _stream_answer(assistant, question, llm)
    first, last, pieces = streamed.first, streamed.last, streamed.pieces
    tokens_per_s = None
    if first is not None and last is not None and pieces > 1:
        tokens_per_s = (pieces - 1) / max(last - first, 1e-9)
    raw = _raw_timings(assistant, model, question, streamed, focus_chars)
    answer = streamed.answer
    return BenchAnswerRow(
        question=question.question, first_token_s=first, total_s=streamed.total,
        streamed_pieces=pieces, mode=answer.mode if answer else None,
        tokens_per_s=tokens_per_s, raw=raw.get("raw"), raw_focused=raw.get("raw_focused"))


def _raw_timings(assistant: Assistant, model: Any, question: EvalQuestion,
                 streamed: _Streamed, focus_chars: int) -> dict[str, dict[str, Any]]:
    """llama.cpp's own timings of the answer prompt, with the passages as used ("raw")
    and focused to ``focus_chars`` ("raw_focused"); {} for a hosted model, or when
    nothing was retrieved."""
    complete = getattr(model, "complete", None)  # local runtimes only
    answer, passages, config = streamed.answer, streamed.passages, assistant.config
    if complete is None or not passages or answer is None:
        return {}
    question_text = answer.standalone_question or question.question
    shown = focus_passages(question_text, passages, assistant.embedder,
                           config.prompt_passage_chars)
    focused = focus_passages(question_text, passages, assistant.embedder, focus_chars)
    return {name: complete(answer_messages(question_text, given, answer.language),
                           config.max_answer_tokens, config.temperature)
            for name, given in (("raw", shown), ("raw_focused", focused))}


def _mean(values: list[Any]) -> float:
    """The mean of the numbers among ``values`` (NaN without any)."""
    numbers = [v for v in values if isinstance(v, (int, float))]
    return statistics.fmean(numbers) if numbers else float("nan")


def _answers_summary(rows: list[BenchAnswerRow], llm_name: str, config: Config,
                     focus_chars: int) -> dict[str, Any]:
    """Means over the rows that have each figure, and the ratios of those means."""
    def raw_mean(name: str, key: str) -> float:
        return _mean([(getattr(row, name) or {}).get(key) for row in rows])

    summary: dict[str, Any] = {
        "llm": llm_name, "n": len(rows),
        "first_token_s": _mean([r.first_token_s for r in rows]),
        "total_s": _mean([r.total_s for r in rows]),
        "tokens_per_s": _mean([r.tokens_per_s for r in rows]),
        "raw_tokens_per_s": raw_mean("raw", "tokens_per_s"),
        "prompt_tokens": raw_mean("raw", "prompt_tokens"),
        "prompt_seconds": raw_mean("raw", "prompt_seconds"),
        "raw_prompt_tokens_per_s": raw_mean("raw", "prompt_tokens_per_s"),
        "focused_prompt_tokens": raw_mean("raw_focused", "prompt_tokens"),
        "focused_prompt_seconds": raw_mean("raw_focused", "prompt_seconds"),
        "prompt_passage_chars": config.prompt_passage_chars,
        "focus_chars": focus_chars}
    summary["generation_ratio_ours_to_raw"] = _ratio(summary["tokens_per_s"],
                                                     summary["raw_tokens_per_s"])
    summary["prompt_time_ratio_focused_to_used"] = _ratio(
        summary["focused_prompt_seconds"], summary["prompt_seconds"])
    return summary


# --- scale ----------------------------------------------------------------------------


def synthetic_vectors(n: int, dimension: int, seed: int, centers: int = 1000) -> np.ndarray:
    """Unit vectors in clusters (topics), like chunk embeddings; uniform noise would make
    every neighbour equally far and approximate search look worse than it is."""
    rng = np.random.default_rng(seed)
    middle = np.random.default_rng(12345).standard_normal((centers, dimension),
                                                          dtype=np.float32)
    out = np.empty((n, dimension), dtype=np.float32)
    for start in range(0, n, 65536):
        size = min(65536, n - start)
        block = middle[rng.integers(0, centers, size)] + 0.6 * rng.standard_normal(
            (size, dimension), dtype=np.float32)
        out[start:start + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def _timed_queries(search: Any, queries: np.ndarray, truth: list[set[int]] | None = None
                   ) -> tuple[list[float], int]:
    """Seconds per single query, and how many of ``truth``'s ids were found.
    ``search(query)`` returns ids."""
    times, found = [], 0
    for number, query in enumerate(queries):
        started = time.perf_counter()
        ids = search(query)
        times.append(time.perf_counter() - started)
        if truth is not None:
            found += len(truth[number] & {int(i) for i in ids})
    return times, found


def _faiss_ids(index: Any, k: int) -> Any:
    return lambda query: index.search(query[np.newaxis, :], k)[1][0].tolist()


def bench_scale(sizes: list[int], dimension: int = 384, queries: int = 200, k: int = 10,
                flat_limit: int | None = None) -> list[ScaleRow]:
    """Search latency, memory and recall@k against exact search, per corpus size."""
    import faiss

    faiss.omp_set_num_threads(1)  # single queries are fastest on one thread
    rows = []
    query_vectors = synthetic_vectors(queries, dimension, seed=7)
    for n in sizes:
        vectors = synthetic_vectors(n, dimension, seed=n)
        rss_before = current_rss_mb()
        exact = faiss.IndexFlatIP(dimension)
        exact.add(vectors)
        truth = [set(ids) for ids in exact.search(query_vectors, k)[1].tolist()]
        exact_times, _ = _timed_queries(_faiss_ids(exact, k), query_vectors)
        kind = choose_faiss_index(n, flat_limit) if flat_limit else choose_faiss_index(n)
        faiss.omp_set_num_threads(os.cpu_count() or 1)  # building uses every core
        started = time.perf_counter()
        index = make_faiss_index(kind, dimension, vectors) if kind != "flat" else exact
        build = time.perf_counter() - started
        faiss.omp_set_num_threads(1)
        times, found = _timed_queries(_faiss_ids(index, k), query_vectors, truth)
        rows.append(ScaleRow(
            chunks=n, index=kind, build_seconds=build if kind != "flat" else 0.0,
            exact=_latency(exact_times), chosen=_latency(times),
            recall=found / (k * len(truth)),
            index_mb=faiss.serialize_index(index).nbytes / 2**20,
            rss_growth_mb=current_rss_mb() - rss_before,
            speedup_vs_exact=_ratio(_percentile(exact_times, 50), _percentile(times, 50)),
            k=k))
        del index, exact, vectors
    return rows


# --- integrity -----------------------------------------------------------------------

# Per chunk, measured on this repository's index (300-unit chunks): the records
# (chunks.jsonl and documents.jsonl) take ~2,240 bytes, llama-index's JSON id map ~140,
# and bm25s a 4-byte score and a 4-byte token id for each of ~89 distinct tokens.
RECORD_BYTES_PER_CHUNK = 2240
ID_MAP_BYTES_PER_CHUNK = 140
KEYWORD_ENTRIES_PER_CHUNK = 89


def synthetic_index_files(n: int, dimension: int) -> dict[str, int]:
    """The files of an index of ``n`` chunks of ``dimension``-d float32 vectors, and
    their sizes in bytes."""
    keyword = n * KEYWORD_ENTRIES_PER_CHUNK * 4 + 128  # .npy header
    records = n * RECORD_BYTES_PER_CHUNK
    return {"chunks.jsonl": records // 2, "documents.jsonl": records - records // 2,
            "vectors/default__vector_store.json": n * dimension * 4 + 45,  # FAISS header
            "vectors/id_map.json": n * ID_MAP_BYTES_PER_CHUNK,
            "keyword/data.csc.index.npy": keyword, "keyword/indices.csc.index.npy": keyword}


def _write_file(path: Path, size: int, block: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        for start in range(0, size, len(block)):
            handle.write(block[:min(len(block), size - start)])


def raw_sha256_mb_per_s(mb: int = 256) -> float:
    """sha256 of ``mb`` MB in memory: the hash alone, no file reading."""
    block = np.random.default_rng(0).bytes(1 << 24)
    rounds = max(1, int(mb * 1e6) // len(block))
    digest = hashlib.sha256()
    started = time.perf_counter()
    for _ in range(rounds):
        digest.update(block)
    return rounds * len(block) / 1e6 / (time.perf_counter() - started)


def bench_integrity(sizes: list[int], dimension: int = 384, background_mb: float = 256.0,
                    raw_mb: int = 256) -> list[IntegrityRow]:
    """Seconds to verify the checksums of an index per size, split as a load splits them
    at ``background_mb`` (before serving, after load). The files are synthetic, of the
    real sizes (sha256 does not depend on the bytes), and just hashed once for their
    digests, so they are read from the page cache: a cold disk adds its read time."""
    rows = []
    block = np.random.default_rng(1).bytes(1 << 22)
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-integrity-") as name:
            folder = Path(name)
            files = synthetic_index_files(n, dimension)
            for file, size in files.items():
                _write_file(folder / file, size, block)
            now, later = split(folder, checksums(folder), int(background_mb * 1e6))
            seconds = []
            for part in (now, later):
                started = time.perf_counter()
                verify(folder, part)
                seconds.append(time.perf_counter() - started)
            deferred = sum(files[file] for file in later) / 1e6
        stored_mb = sum(files.values()) / 1e6
        rows.append(IntegrityRow(
            chunks=n, stored_mb=stored_mb, deferred_mb=deferred,
            before_serving_seconds=seconds[0], after_load_seconds=seconds[1],
            file_mb_per_s=stored_mb / sum(seconds),
            raw_sha256_mb_per_s=raw_sha256_mb_per_s(raw_mb)))
    return rows


def bench_milvus_scale(sizes: list[int], dimension: int = 384, queries: int = 200,
                      k: int = 10) -> list[MilvusScaleRow]:
    """Milvus Lite against FAISS on the same synthetic vectors and queries: insert and
    index time, single-query latency and recall@k against exact search."""
    import faiss

    from .config import MilvusSettings
    from .vectorstores import MilvusVectors

    faiss.omp_set_num_threads(1)
    rows = []
    query_vectors = synthetic_vectors(queries, dimension, seed=7)
    for n in sizes:
        vectors = synthetic_vectors(n, dimension, seed=n)
        exact = faiss.IndexFlatIP(dimension)
        exact.add(vectors)
        truth = [set(ids) for ids in exact.search(query_vectors, k)[1].tolist()]
        kind = choose_faiss_index(n)
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        chosen = make_faiss_index(kind, dimension, vectors) if kind != "flat" else exact
        faiss.omp_set_num_threads(1)
        faiss_times, faiss_found = _timed_queries(_faiss_ids(chosen, k), query_vectors, truth)
        with tempfile.TemporaryDirectory(prefix="bench-milvus-") as folder:
            milvus = MilvusVectors.create(MilvusSettings(uri=f"{folder}/bench.db"), dimension)
            ids = [str(i) for i in range(n)]
            started = time.perf_counter()
            for begin in range(0, n, 5000):
                milvus.add(ids[begin:begin + 5000], vectors[begin:begin + 5000],
                           [f"chunk {i}" for i in range(begin, min(begin + 5000, n))])
            insert = time.perf_counter() - started
            started = time.perf_counter()
            milvus.client.flush(milvus.collection)
            # release + load makes Milvus build every sealed segment's index now.
            milvus.client.release_collection(milvus.collection)
            milvus.client.load_collection(milvus.collection)
            index_seconds = time.perf_counter() - started
            milvus.search(query_vectors[0], k)  # warm-up
            times, found = _timed_queries(
                lambda query, vectors=milvus: [cid for cid, _ in vectors.search(query, k)],
                query_vectors, truth)
            milvus.client.close()
        rows.append(MilvusScaleRow(
            chunks=n, faiss_index=kind, milvus_index=milvus.settings.index_type,
            faiss=_latency(faiss_times), milvus=_latency(times),
            faiss_recall=faiss_found / (k * len(truth)),
            milvus_recall=found / (k * len(truth)),
            milvus_insert_seconds=insert, milvus_index_seconds=index_seconds,
            p50_ratio_milvus_to_faiss=_ratio(_percentile(times, 50),
                                             _percentile(faiss_times, 50)),
            k=k))
        del chosen, exact, vectors
    return rows


def bench_milvus_corpus(assistant: Assistant, questions: list[EvalQuestion],
                        top_k: int = 5) -> dict[str, Any]:
    """The real corpus three ways: FAISS + local BM25 (the default), Milvus + local BM25,
    Milvus + Milvus's BM25. The vectors are copied (no re-embedding) into a Milvus Lite
    file in a copy of the index; hit@k/MRR on the dev set and retrieval latency."""
    from .evaluation import evaluate_retrieval

    answerable = [q for q in questions if q.answerable and q.evidence]
    result: dict[str, Any] = {}
    if assistant.store.vectors.collection is not None:  # the copy below moves files
        return {"skipped": "the index already keeps its vectors in Milvus"}
    with tempfile.TemporaryDirectory(prefix="bench-milvus-corpus-") as folder:
        copy = Path(folder) / "index"
        shutil.copytree(assistant.config.index_dir, copy,
                        ignore=shutil.ignore_patterns("milvus.db", "*.lock", "feedback.jsonl"))
        variants: dict[str, Assistant | Config] = {
            "faiss + local bm25": assistant,
            # A Milvus Lite file inside the copy, never the user's own Milvus.
            "milvus + local bm25": replace(assistant.config, index_dir=copy, milvus_uri="",
                                           vector_store="milvus", keyword_search="local"),
            "milvus + milvus bm25": replace(assistant.config, index_dir=copy, milvus_uri="",
                                            vector_store="milvus", keyword_search="milvus"),
        }
        for name, variant in variants.items():
            if not isinstance(variant, Assistant):
                variant = Assistant(variant)
                variant._embedder = assistant.embedder
                # Moves the copy's vectors for the first Milvus variant; a no-op for the next.
                variant.migrate("milvus", progress=lambda done, total: None)
            quality = evaluate_retrieval(variant, answerable, k=top_k)  # warms up first
            timing = _latency([row.seconds for row in quality.details])
            result[name] = {**quality.groups["all"], **timing}
    return result


def plot_scale(rows: list[ScaleRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r.chunks for r in rows]
    figure, axis = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    axis.plot(sizes, [r.exact["p50_ms"] for r in rows], "o-", label="exact (flat) p50")
    axis.plot(sizes, [r.chosen["p50_ms"] for r in rows], "s-",
              label="auto-chosen index p50")
    axis.plot(sizes, [r.chosen["p95_ms"] for r in rows], "s--", alpha=0.6,
              label="auto-chosen index p95")
    for r in rows:
        axis.annotate(f"{r.index}\nrecall {r.recall:.2f}", (r.chunks,
                      r.chosen["p50_ms"]), textcoords="offset points", xytext=(4, 6),
                      fontsize=7)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("chunks in the index")
    axis.set_ylabel("vector search latency per query (ms)")
    axis.set_title("Vector search latency against corpus size (1 thread)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


# --- the report -----------------------------------------------------------------------


@dataclass
class BenchReport:
    machine: dict[str, Any]
    indexing: dict[str, Any] = field(default_factory=dict)
    retrieval: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    cold_start: dict[str, float] = field(default_factory=dict)
    scale: list[ScaleRow] = field(default_factory=list)
    integrity: list[IntegrityRow] = field(default_factory=list)
    milvus_scale: list[MilvusScaleRow] = field(default_factory=list)
    milvus_corpus: dict[str, Any] = field(default_factory=dict)
    formats: dict[str, Any] = field(default_factory=dict)
    versus: dict[str, Any] = field(default_factory=dict)
    api_clients: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """bench.json: the stages' plain dicts as they are, the rows by their own
        to_json (their keys are bench.json's: "recall@10", optional figures left out)."""
        data = asdict(self)
        data["scale"] = [row.to_json() for row in self.scale]
        data["integrity"] = [row.to_json() for row in self.integrity]
        data["milvus_scale"] = [row.to_json() for row in self.milvus_scale]
        if self.answers:
            data["answers"] = {**self.answers, "questions": [
                row.to_json() for row in self.answers["questions"]]}
        return data

    def markdown(self, plot_name: str | None = None) -> str:
        m = self.machine
        lines = ["# ai-digest-qa benchmark", "",
                 f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM, "
                 f"Python {m['python']}. Run took {self.seconds:.0f} s.", ""]
        # One section per stage that ran, in this order.
        if self.indexing:
            lines += self._indexing_md()
        if self.retrieval:
            lines += self._retrieval_md()
        if self.answers:
            lines += self._answers_md()
        lines += formats_markdown(self.formats, self.versus)
        if self.api_clients:
            lines += self._api_clients_md()
        if self.cold_start:
            lines += self._cold_start_md()
        if self.memory:
            lines += self._memory_md()
        if self.scale:
            lines += self._scale_md(plot_name)
        if self.integrity:
            lines += self._integrity_md()
        if self.milvus_scale:
            lines += self._milvus_scale_md()
        if self.milvus_corpus:
            lines += self._milvus_corpus_md()
        return "\n".join(lines)

    def _indexing_md(self) -> list[str]:
        lines: list[str] = []
        i = self.indexing
        lines += ["## Indexing", "",
                  "| | chunks/s | seconds |", "| --- | --- | --- |",
                  f"| whole pipeline ({i['documents']} documents, {i['chunks']} chunks) | "
                  f"{i['pipeline_chunks_per_s']:.1f} | {i['pipeline_seconds']:.1f} |",
                  f"| embedder alone, same texts | {i['embedder_chunks_per_s']:.1f} | "
                  f"{i['embedder_seconds']:.1f} |", "",
                  f"Pipeline / embedder time: **{i['overhead_ratio']:.2f}x** (fastest of "
                  f"{i.get('rounds', 1)} alternating runs each).", ""]
        return lines

    def _retrieval_md(self) -> list[str]:
        lines: list[str] = []
        r = self.retrieval
        lines += ["## Retrieval latency", "", "| system | p50 ms | p95 ms | n |",
                  "| --- | --- | --- | --- |"]
        for name in ("ours", "baseline"):
            if name in r:
                lines.append(f"| {name} | {r[name]['p50_ms']:.1f} | {r[name]['p95_ms']:.1f}"
                             f" | {r[name]['n']} |")
        if "p50_ratio_ours_to_baseline" in r:
            lines += ["", f"Ours / baseline p50: **{r['p50_ratio_ours_to_baseline']:.2f}x** "
                      "(ours adds keyword search, query expansion and fusion)."]
        lines.append("")
        return lines

    def _answers_md(self) -> list[str]:
        lines: list[str] = []
        s = self.answers["summary"]
        lines += ["## Answers", "", f"LLM: {s['llm']}, {s['n']} questions.", "",
                  "| first token s | total s | tokens/s (ours) | tokens/s (raw llama.cpp) "
                  "| ours/raw | prompt tokens | prompt tokens/s (raw) |",
                  "| --- | --- | --- | --- | --- | --- | --- |",
                  f"| {s['first_token_s']:.2f} | {s['total_s']:.2f} | {s['tokens_per_s']:.1f}"
                  f" | {s['raw_tokens_per_s']:.1f} | {s['generation_ratio_ours_to_raw']:.2f}"
                  f" | {s['prompt_tokens']:.0f} | {s['raw_prompt_tokens_per_s']:.0f} |", "",
                  "Reading the prompt is the largest cost. The same prompts with each "
                  f"passage cut to its sentences closest to the question "
                  f"(prompt_passage_chars = {s['focus_chars']}):", "",
                  "| prompt | tokens | llama.cpp prompt seconds |", "| --- | --- | --- |",
                  f"| as used (prompt_passage_chars = {s['prompt_passage_chars']}) | "
                  f"{s['prompt_tokens']:.0f} | {s['prompt_seconds']:.2f} |",
                  f"| focused to {s['focus_chars']} characters per passage | "
                  f"{s['focused_prompt_tokens']:.0f} | {s['focused_prompt_seconds']:.2f} |",
                  "", f"Focused / as used: **{s['prompt_time_ratio_focused_to_used']:.2f}x**.",
                  ""]
        return lines

    def _api_clients_md(self) -> list[str]:
        from .loadtest import api_clients_markdown

        return api_clients_markdown(self.api_clients)

    def _cold_start_md(self) -> list[str]:
        lines: list[str] = []
        c = self.cold_start
        lines += ["## Cold start", "",
                  "| step | seconds |", "| --- | --- |"]
        labels = {"index_load_s": "load the index",
                  "embedder_and_first_search_s": "load the embedder, first search",
                  "model_load_s": "load the LLM"}
        lines += [f"| {labels.get(k, k)} | {v:.2f} |" for k, v in c.items()]
        lines += ["", "The web UI pays these at start-up, in the background, so its first "
                  "user does not.", ""]
        return lines

    def _memory_md(self) -> list[str]:
        lines: list[str] = []
        lines += ["## Memory", "", "| stage | RSS MB |", "| --- | --- |"]
        lines += [f"| {k} | {v:.0f} |" for k, v in self.memory.items()]
        lines.append("")
        return lines

    def _scale_md(self, plot_name: str | None) -> list[str]:
        lines: list[str] = []
        lines += ["## Scale (synthetic 384-d chunks, vector search, 1 thread)", "",
                  "| chunks | index | build s | exact p50 ms | chosen p50 ms | chosen p95 ms "
                  "| speed-up | recall@10 | index MB |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in self.scale:
            lines.append(
                f"| {r.chunks:,} | {r.index} | {r.build_seconds:.1f} | "
                f"{r.exact['p50_ms']:.2f} | {r.chosen['p50_ms']:.2f} | "
                f"{r.chosen['p95_ms']:.2f} | {r.speedup_vs_exact:.1f}x | "
                f"{r.recall:.3f} | {r.index_mb:.0f} |")
        if plot_name:
            lines += ["", f"![latency against corpus size]({plot_name})"]
        lines.append("")
        return lines

    def _integrity_md(self) -> list[str]:
        lines = ["## Integrity check (sha256 of every stored file)", "",
                 "| chunks | stored MB | checked after load MB | before serving s | after "
                 "load s | MB/s from files | sha256 MB/s in memory | files / memory |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in self.integrity:
            lines.append(f"| {r.chunks:,} | {r.stored_mb:.0f} | {r.deferred_mb:.0f} | "
                         f"{r.before_serving_seconds:.2f} | {r.after_load_seconds:.2f} | "
                         f"{r.file_mb_per_s:.0f} | {r.raw_sha256_mb_per_s:.0f} | "
                         f"{r.file_mb_per_s / r.raw_sha256_mb_per_s:.2f} |")
        lines += ["", "Synthetic files of an index's real sizes (384-d float32 vectors, "
                  "bm25s arrays, records), read from the page cache: a cold disk adds its "
                  "read time. Above verify_background_mb the vectors and keyword arrays are "
                  "checked after load, in the background.", ""]
        return lines

    def _milvus_scale_md(self) -> list[str]:
        lines: list[str] = []
        lines += ["## Milvus Lite against FAISS (same synthetic vectors and queries)", "",
                  "| chunks | FAISS index | FAISS p50/p95 ms | FAISS recall@10 | Milvus "
                  "index | Milvus p50/p95 ms | Milvus recall@10 | Milvus insert s | "
                  "Milvus index s | p50 Milvus/FAISS |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in self.milvus_scale:
            lines.append(
                f"| {r.chunks:,} | {r.faiss_index} | {r.faiss['p50_ms']:.2f} / "
                f"{r.faiss['p95_ms']:.2f} | {r.faiss_recall:.3f} | "
                f"{r.milvus_index} | {r.milvus['p50_ms']:.1f} / "
                f"{r.milvus['p95_ms']:.1f} | {r.milvus_recall:.3f} | "
                f"{r.milvus_insert_seconds:.1f} | {r.milvus_index_seconds:.1f} | "
                f"{r.p50_ratio_milvus_to_faiss:.0f}x |")
        lines.append("")
        return lines

    def _milvus_corpus_md(self) -> list[str]:
        lines: list[str] = []
        lines += ["## The real corpus: vector store and keyword search", "",
                  "| variant | hit@1 | hit@5 | MRR | p50 ms | p95 ms |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for name, r in self.milvus_corpus.items():
            if not isinstance(r, dict):
                lines.append(f"| {name}: {r} | | | | | |")
                continue
            lines.append(f"| {name} | {r['hit@1']:.3f} | {r['hit@5']:.3f} | "
                         f"{r['mrr']:.3f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} |")
        lines.append("")
        return lines


def run_bench(assistant: Assistant, questions: list[EvalQuestion], out_dir: Path, *,
              sizes: list[int], answers: int = 3, baseline: Any | None = None,
              flat_limit: int | None = None, llm: str = "local",
              milvus_sizes: list[int] | None = None, formats: tuple[str, ...] = (),
              versus: int = 0, format_accuracy: list[EvalQuestion] | None = None,
              format_prompts: int = 12, api_clients: int = 0) -> BenchReport:
    """Run every stage, write ``bench.json``, ``bench.md`` and ``scale.png`` to ``out_dir``."""
    started = time.perf_counter()
    report = BenchReport(machine=machine_info())
    report.memory["start"] = current_rss_mb()
    for step, action in (
            ("index_load_s", lambda: assistant.ensure_index(progress=lambda d, t: None)),
            ("embedder_and_first_search_s", lambda: assistant.retrieve(questions[0].question)),
            ("model_load_s", lambda: assistant.llm(llm) if answers > 0 else None)):
        began = time.perf_counter()
        action()
        report.cold_start[step] = time.perf_counter() - began
    report.memory["index + embedder + model loaded"] = current_rss_mb()
    report.indexing = bench_indexing(assistant)
    answerable = [q for q in questions if q.answerable]
    report.retrieval = bench_retrieval(assistant, baseline, answerable)
    if answers > 0:
        picked = answerable[:: max(len(answerable) // answers, 1)][:answers]
        report.answers = bench_answers(assistant, picked, llm)
        report.memory["after answering"] = current_rss_mb()
    if formats and backends.has("llm", llm, backends.LOCAL_WEIGHTS):
        stride = max(len(answerable) // format_prompts, 1)
        report.formats = bench_formats(assistant, answerable[::stride][:format_prompts],
                                       formats, format_accuracy)
    if versus > 0:  # answerable ones: an instant abstention would flatter the figures
        report.versus = bench_default_against_previous(
            assistant, answerable[:: max(len(answerable) // versus, 1)][:versus], llm)
    report.memory["peak before scale tests"] = peak_rss_mb()
    if sizes:
        report.scale = bench_scale(sizes, assistant.embedder.dimension, flat_limit=flat_limit)
        report.integrity = bench_integrity(sizes, assistant.embedder.dimension,
                                           assistant.config.verify_background_mb)
    if milvus_sizes is not None:  # None: Milvus not benchmarked; [] : the corpus part only
        report.milvus_corpus = bench_milvus_corpus(assistant, questions)
        if milvus_sizes:
            report.milvus_scale = bench_milvus_scale(milvus_sizes,
                                                     assistant.embedder.dimension)
    if api_clients > 0:
        from .loadtest import bench_api_clients

        report.api_clients = bench_api_clients(
            assistant, [q.question for q in answerable[:api_clients]])
    report.seconds = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_name = None
    if report.scale:
        plot_name = "scale.png"
        plot_scale(report.scale, out_dir / plot_name)
    (out_dir / "bench.json").write_text(json.dumps(report.to_json(), indent=2,
                                                   ensure_ascii=False), encoding="utf-8")
    (out_dir / "bench.md").write_text(report.markdown(plot_name), encoding="utf-8")
    return report


# --- weight formats and the default against the previous one ---------------------------


def bench_prompts(assistant: Assistant, questions: list[EvalQuestion]
                  ) -> list[dict[str, Any]]:
    """The two prompts of each question: the previous default's (whole passages) and the
    evidence strategy's (quotes; None when it abstains first)."""
    from .answer import Answerer

    answerer = Answerer(assistant.retriever, assistant.embedder, assistant.config, None)
    prompts = []
    for question in questions:
        passages = assistant.retrieve(question.question, assistant.config.answer_top_k)
        prompts.append({"question": question.question,
                        "passages": answer_messages(question.question, passages,
                                                    question.language),
                        "quotes": answerer.quote_prompt(question.question)})
    return prompts


def bench_variants(names: str) -> tuple[str, ...]:
    """``--formats`` as "runtime:format" names: "all" is every installed runtime with each
    weight format; a bare format means the xllamacpp wheel."""
    from .llm import installed_runtimes

    if names.strip() == "all":
        return tuple(f"{runtime}:{fmt}" for runtime in installed_runtimes()
                     for fmt in ("shipped", "q8_0", "q4_0"))
    return tuple(_variant_name(n.strip()) for n in names.split(",") if n.strip())


def _variant_name(name: str) -> str:
    return name if ":" in name else f"xllamacpp:{name}"


def bench_formats(assistant: Assistant, questions: list[EvalQuestion],
                  variants: tuple[str, ...] = ("xllamacpp:shipped", "xllamacpp:q8_0"),
                  accuracy: list[EvalQuestion] | None = None) -> dict[str, Any]:
    """Each llama.cpp runtime x weight format ("runtime:format") on the dev-set prompts,
    interleaved per prompt so that the machine's drift hits every variant alike: prompt
    and generation tokens/s and prompt seconds (the time to the first token), for the
    whole-passage and the quote prompts. With ``accuracy`` questions, the evidence
    pipeline's answer accuracy with each variant too."""
    from .llm import load_local, resolve_model_path
    from .weights import converted_path

    config = assistant.config
    source = resolve_model_path(config)
    variants = tuple(_variant_name(v) for v in variants)
    paths = {v: converted_path(source, v.split(":")[1], config.model_cache_dir)
             for v in variants}
    models = {v: load_local(v.split(":")[0], path, config.llm_threads)
              for v, path in paths.items()}
    prompts = bench_prompts(assistant, questions)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        v: {"passages": [], "quotes": []} for v in variants}
    for prompt in prompts:
        for kind in ("passages", "quotes"):
            if prompt[kind] is None:
                continue
            for variant in variants:
                runs[variant][kind].append(models[variant].complete(
                    prompt[kind], config.max_answer_tokens, 0.0))
    table: dict[str, dict[str, Any]] = {
        v: {kind: _speed_summary(rows) for kind, rows in by_kind.items()}
        for v, by_kind in runs.items()}
    for variant in variants:
        table[variant]["file_mb"] = paths[variant].stat().st_size / 1e6
    del models
    if accuracy:
        for variant in variants:
            table[variant]["accuracy"] = _variant_accuracy(assistant, accuracy, variant)
    return {"formats": table, "n_prompts": len(prompts),
            "conversion_seconds": _conversion_seconds(source),
            "runtime_build": runtime_build_record()}


def runtime_build_record() -> dict[str, Any]:
    """What building llama-cpp-python for this CPU cost on first install (written by
    scripts/build-llamacpp.sh beside the wheel it keeps); {} when it was not built."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    records = sorted((cache / "ai-digest-qa" / "llama-cpp-python").glob("*/build.json"),
                     key=lambda p: p.stat().st_mtime)
    try:
        return dict(json.loads(records[-1].read_text(encoding="utf-8"))) if records else {}
    except (OSError, ValueError):
        return {}


def _speed_summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    def median(key: str) -> float:
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        return statistics.median(values) if values else float("nan")

    return {"n": len(rows), "prompt_tokens": median("prompt_tokens"),
            "prompt_tokens_per_s": median("prompt_tokens_per_s"),
            "tokens_per_s": median("tokens_per_s"), "first_token_s": median("prompt_seconds")}


def _variant_accuracy(assistant: Assistant, questions: list[EvalQuestion], variant: str
                      ) -> dict[str, float] | dict[str, dict[str, float]]:
    from .evaluation import evaluate_answers

    runtime, fmt = variant.split(":")
    other = Assistant(replace(assistant.config, llm_runtime=runtime, local_model_format=fmt))
    other._embedder = assistant.embedder  # same index and embedder: only the weights differ
    other._store = assistant.store
    groups = evaluate_answers(other, questions, "local", variant).groups
    overall = {k: v for k, v in groups.items() if k.endswith(":all")}
    return next(iter(overall.values())) if len(overall) == 1 else groups


def _conversion_seconds(source: Path) -> float:
    """What making the Q8_0 file costs on first use (into a scratch folder)."""
    from .weights import converted_path

    with tempfile.TemporaryDirectory(prefix="bench-convert-") as folder:
        started = time.perf_counter()
        converted_path(source, "q8_0", Path(folder))
        return time.perf_counter() - started


def bench_default_against_previous(assistant: Assistant, questions: list[EvalQuestion],
                                   llm: str = "local") -> dict[str, Any]:
    """End-to-end first token and total of the default against the previous default
    (whole passages, shipped weights), alternating which goes first on each question."""
    systems = {"default": assistant, "previous": assistant.previous_default()}
    for system in systems.values():  # loads (and converts) outside the timings
        system.llm(llm)
        system.retrieve(questions[0].question)
    timings: dict[str, dict[str, list[float]]] = {
        name: {"first_token": [], "total": []} for name in systems}
    for number, question in enumerate(questions):
        order = list(systems) if number % 2 == 0 else list(systems)[::-1]
        for name in order:
            first, total = _timed_answer(systems[name], question, llm)
            timings[name]["total"].append(total)
            if first is not None:
                timings[name]["first_token"].append(first)
    result: dict[str, Any] = {"n": len(questions)}
    for name, values in timings.items():
        result[name] = {"first_token_p50_s": _percentile(values["first_token"], 50),
                        "total_p50_s": _percentile(values["total"], 50),
                        "answers_with_first_token": len(values["first_token"])}
    result["first_token_ratio"] = _ratio(result["default"]["first_token_p50_s"],
                                         result["previous"]["first_token_p50_s"])
    result["total_ratio"] = _ratio(result["default"]["total_p50_s"],
                                   result["previous"]["total_p50_s"])
    result["prompt_cache"] = _prompt_cache_check(assistant, questions, llm)
    return result


def _timed_answer(assistant: Assistant, question: EvalQuestion, llm: str
                  ) -> tuple[float | None, float]:
    started = time.perf_counter()
    first = None
    for item in assistant.ask_stream(question.question, history=list(question.history) or None,
                                     llm=llm):
        if isinstance(item, str) and first is None:
            first = time.perf_counter() - started
    return first, time.perf_counter() - started


def _prompt_cache_check(assistant: Assistant, questions: list[EvalQuestion], llm: str
                        ) -> dict[str, float]:
    """Whether llama.cpp reuses the fixed system prompt: its timings count the prompt
    tokens taken from the cache against those it read."""
    model = assistant.llm(llm)
    complete = getattr(model, "complete", None)  # local runtimes only
    prompts = [p["quotes"] for p in bench_prompts(assistant, questions[:4]) if p["quotes"]]
    # Each language has its own system prompt: only a prompt after one of its language
    # can reuse it.
    prompts = [p for p in prompts if p[0] == prompts[0][0]] if prompts else []
    if complete is None or len(prompts) < 2:
        return {}
    cached, read = [], []
    for messages in prompts:
        timings = complete(messages, 1, 0.0, cache_prompt=True)
        cached.append(float(timings.get("prompt_cached") or 0))
        read.append(float(timings.get("prompt_read") or 0))
    return {"prompts": len(prompts), "cached_tokens_mean": statistics.fmean(cached[1:]),
            "read_tokens_mean": statistics.fmean(read[1:])}


def formats_markdown(formats: dict[str, Any], versus: dict[str, Any]) -> list[str]:
    """The bench.md sections of :func:`bench_formats` and
    :func:`bench_default_against_previous`."""
    lines: list[str] = []
    if formats:
        lines += ["## Runtime x weight format (the same prompts, interleaved)", "",
                  "| runtime:format | file MB | prompt | prompt tokens | prompt tokens/s | "
                  "generation tokens/s | first token s | accuracy |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for fmt, row in formats["formats"].items():
            accuracy = row.get("accuracy", {}).get("answer_accuracy")
            for kind in ("passages", "quotes"):
                r = row[kind]
                shown = f"{accuracy:.3f}" if accuracy is not None and kind == "quotes" else ""
                lines.append(f"| {fmt} | {row['file_mb']:.0f} | {kind} | "
                             f"{r['prompt_tokens']:.0f} | {r['prompt_tokens_per_s']:.0f} | "
                             f"{r['tokens_per_s']:.1f} | {r['first_token_s']:.2f} | {shown} |")
        lines += ["", f"Making the Q8_0 file on first use: {formats['conversion_seconds']:.0f} s."]
        build = formats.get("runtime_build") or {}
        if build:
            lines += [f"Building llama-cpp-python {build.get('version')} for this CPU "
                      f"({build.get('flags')}) on first install: "
                      f"{float(build.get('build_seconds', 0)) / 60:.1f} min."]
        lines.append("")
    if versus:
        d, p = versus["default"], versus["previous"]
        lines += ["## The default against the previous default (same run, alternating)", "",
                  "| | first token p50 s | total p50 s |", "| --- | --- | --- |",
                  f"| default | {d['first_token_p50_s']:.2f} | {d['total_p50_s']:.2f} |",
                  f"| previous default (passages, shipped weights) | "
                  f"{p['first_token_p50_s']:.2f} | {p['total_p50_s']:.2f} |", "",
                  f"Ratios: first token **{versus['first_token_ratio']:.2f}x**, total "
                  f"**{versus['total_ratio']:.2f}x** ({versus['n']} questions)."]
        cache = versus.get("prompt_cache") or {}
        if cache:
            lines += ["", f"Prompt cache: {cache['cached_tokens_mean']:.0f} tokens of each "
                      f"prompt came from llama.cpp's cache, {cache['read_tokens_mean']:.0f} "
                      "were read."]
        lines.append("")
    return lines
