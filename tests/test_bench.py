"""The evaluation against the baseline and the benchmark, on small sizes: the reports'
structure and sane numbers (positive, ratios computed), not their values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ai_digest_qa import cli
from ai_digest_qa.bench import run_bench
from ai_digest_qa.evaluation import (
    evaluate_answers,
    evaluate_retrieval,
    load_questions,
    retrieval_side_by_side,
)

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = load_questions(ROOT / "eval" / "dev_qa.jsonl")


def _positive(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_retrieval_evaluation_side_by_side_with_the_baseline(corpus_assistant, baseline):
    sample = QUESTIONS[::12]
    ours = evaluate_retrieval(corpus_assistant, sample)
    theirs = evaluate_retrieval(baseline, sample)
    table = retrieval_side_by_side(ours, theirs)
    for group in ("all", "zh->zh", "en->zh", "en->en"):
        assert group in ours.groups and group in theirs.groups
        for report in (ours, theirs):
            assert 0 <= report.groups[group]["hit@5"] <= 1
    assert "hit@1 ours" in table and "hit@1 base" in table and "ms per question" in table


def test_eval_command_prints_json_for_scripts(corpus_assistant, tmp_path, monkeypatch,
                                              capsys):
    subset = tmp_path / "qa.jsonl"
    lines = (ROOT / "eval" / "dev_qa.jsonl").read_text(encoding="utf-8").splitlines()
    subset.write_text("\n".join(lines[::18]) + "\n", encoding="utf-8")
    monkeypatch.setenv("AI_DIGEST_QA_INDEX_DIR", str(corpus_assistant.config.index_dir))
    assert cli.main(["eval", "--set", str(subset), "--no-baseline", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["baseline"] is None
    assert report["ours"]["groups"]["all"]["n"] == sum(
        1 for line in lines[::18] if '"answerable": true' in line)


def test_eval_details_print_one_line_per_question(tmp_path, capsys):
    """``eval --details`` (retrieval) reads the rows' fields (fake embedder: fast)."""
    import argparse

    from ai_digest_qa.evaluation import EvalQuestion
    from fakes import tiny_assistant

    assistant = tiny_assistant(tmp_path)
    asked = [EvalQuestion("q-window", "How long is Claude 2's context window?", "en",
                          "en->en", "100k tokens"),
             EvalQuestion("q-missing", "What is the capital of Mars?", "en", "en->en",
                          "no such text")]
    args = argparse.Namespace(no_baseline=True, json=False, details=True)
    assert cli._eval_retrieval(assistant, asked, args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("q-window ") and "rank=1 baseline=None" in line
               and line.endswith("How long is Claude 2's context window?") for line in lines)
    assert any(line.startswith("q-missing ") and "rank=None baseline=None" in line
               for line in lines)


@pytest.mark.slow
def test_answer_evaluation_of_the_baseline_has_every_metric(baseline):
    sample = [q for q in QUESTIONS if q.type == "en->en"][:1] + \
        [q for q in QUESTIONS if not q.answerable][:1]
    report = evaluate_answers(baseline, sample, "local")
    metrics = report.groups[f"{sample[0].split}:all"]
    assert set(metrics) >= {"answer_accuracy", "abstention_accuracy", "false_abstention",
                            "citation_precision", "seconds"}
    assert _positive(metrics["seconds"])
    assert all(row.mode == "baseline" for row in report.details)


@pytest.mark.slow
def test_benchmark_writes_json_markdown_and_plot(corpus_assistant, baseline, tmp_path):
    import importlib.util

    out = tmp_path / "bench"
    # A bare format is the wheel's; the runtime built for this CPU too, where there is one.
    built = ("llama-cpp-python:q8_0",) if importlib.util.find_spec("llama_cpp") else ()
    # English questions about Chinese text: the model generates (an answer in the
    # sources' language is their quotes, with no tokens/s), and one language's prompts
    # share the system prompt the cache check looks for.
    across = [q for q in QUESTIONS if q.type == "en->zh"][:8]
    report = run_bench(corpus_assistant, across, out, sizes=[3000], answers=1,
                       baseline=baseline, flat_limit=1000, milvus_sizes=[3000],
                       formats=("shipped", "q8_0", *built), format_prompts=2, versus=2,
                       api_clients=2)
    data = json.loads((out / "bench.json").read_text())
    clients = data["api_clients"]
    assert clients["clients"] == 2 and clients["statuses"] == [200, 200]
    assert _positive(clients["wall_ratio_concurrent_to_sequential"])
    assert "concurrent API clients" in (out / "bench.md").read_text()
    assert set(data) >= {"machine", "indexing", "retrieval", "answers", "memory", "scale",
                         "cold_start"}
    indexing = data["indexing"]
    assert indexing["chunks"] > 0
    for key in ("pipeline_chunks_per_s", "embedder_chunks_per_s", "overhead_ratio"):
        assert _positive(indexing[key]), key
    # Each side keeps its fastest of the alternating runs.
    assert len(indexing["pipeline_runs"]) == len(indexing["embedder_runs"]) == 2
    assert indexing["pipeline_seconds"] == min(indexing["pipeline_runs"])
    retrieval = data["retrieval"]
    assert _positive(retrieval["ours"]["p50_ms"]) and _positive(retrieval["baseline"]["p95_ms"])
    assert _positive(retrieval["p50_ratio_ours_to_baseline"])
    answers = data["answers"]["summary"]
    for key in ("first_token_s", "total_s", "tokens_per_s", "raw_tokens_per_s",
                "generation_ratio_ours_to_raw", "prompt_tokens", "prompt_seconds",
                "focused_prompt_tokens", "prompt_time_ratio_focused_to_used"):
        assert _positive(answers[key]), key
    assert all(_positive(v) for v in data["memory"].values())
    assert set(data["cold_start"]) == {"index_load_s", "embedder_and_first_search_s",
                                       "model_load_s"}
    (row,) = data["scale"]
    assert row["chunks"] == 3000 and row["index"] == "hnsw"  # above the flat limit
    assert 0 < row["recall@10"] <= 1 and _positive(row["speedup_vs_exact"])
    assert (out / "scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (check,) = data["integrity"]  # 3,000 chunks: ~14 MB, all verified before serving
    assert check["chunks"] == 3000 and 10 < check["stored_mb"] < 20
    assert check["deferred_mb"] == 0 and _positive(check["before_serving_seconds"])
    assert 0 < check["file_mb_per_s"] < 3 * check["raw_sha256_mb_per_s"]
    (milvus,) = data["milvus_scale"]
    assert milvus["chunks"] == 3000 and milvus["milvus_recall@10"] > 0.8
    assert _positive(milvus["milvus"]["p50_ms"]) and _positive(milvus["faiss"]["p50_ms"])
    assert _positive(milvus["p50_ratio_milvus_to_faiss"])
    variants = data["milvus_corpus"]
    assert set(variants) == {"faiss + local bm25", "milvus + local bm25", "milvus + milvus bm25"}
    # The same vectors and the same keyword index: Milvus must find what FAISS finds.
    assert variants["milvus + local bm25"]["hit@5"] == variants["faiss + local bm25"]["hit@5"]
    assert all(_positive(v["p50_ms"]) for v in variants.values())
    formats = data["formats"]["formats"]
    assert set(formats) == {"xllamacpp:shipped", "xllamacpp:q8_0", *built}
    for row in formats.values():
        for kind in ("passages", "quotes"):
            assert _positive(row[kind]["prompt_tokens_per_s"]), kind
            assert _positive(row[kind]["first_token_s"]), kind
        # Quotes are what the evidence strategy saves: far fewer tokens to read.
        assert row["quotes"]["prompt_tokens"] < 0.6 * row["passages"]["prompt_tokens"]
    assert (formats["xllamacpp:q8_0"]["file_mb"]
            > formats["xllamacpp:shipped"]["file_mb"])  # 8 bits per weight
    assert _positive(data["formats"]["conversion_seconds"])
    versus = data["versus"]
    assert versus["n"] == 2 and _positive(versus["first_token_ratio"])
    for name in ("default", "previous"):
        assert 0 < versus[name]["first_token_p50_s"] <= versus[name]["total_p50_s"]
    assert versus["prompt_cache"]["cached_tokens_mean"] > 20  # the system prompt is reused
    markdown = (out / "bench.md").read_text()
    assert "## Runtime x weight format" in markdown and "previous default" in markdown
    assert "## Scale" in markdown and "scale.png" in markdown
    assert "| 3,000 | 14 | 0 |" in markdown
    assert "## Milvus Lite against FAISS" in markdown and "milvus + milvus bm25" in markdown
    assert report.seconds > 0


def test_runtime_and_format_names_for_the_bench():
    from ai_digest_qa.bench import bench_variants
    from ai_digest_qa.llm import installed_runtimes

    assert bench_variants("shipped, llama-cpp-python:q4_0") == (
        "xllamacpp:shipped", "llama-cpp-python:q4_0")
    assert bench_variants("") == ()
    every = bench_variants("all")
    assert len(every) == 3 * len(installed_runtimes()) and "xllamacpp:q8_0" in every


class _TimedLLM:
    """Streams a fixed reply; ``complete`` gives llama.cpp-style timings, as the local
    runtimes do."""

    name = "timed"

    def stream(self, messages, *, max_tokens, temperature, timeout, cancel=None):
        yield from ["Claude 2 ", "supports ", "100k tokens ", "[1]."]

    def complete(self, messages, max_tokens, temperature, cache_prompt=False):
        return {"seconds": 0.5, "prompt_tokens": 100, "completion_tokens": 7,
                "prompt_read": 100, "prompt_cached": 0, "prompt_seconds": 0.25,
                "prompt_tokens_per_s": 400.0, "tokens_per_s": 12.5}


class _PlainLLM(_TimedLLM):
    complete = None  # a hosted model: no raw timings


def test_bench_answers_rows_and_summary(tmp_path):
    from ai_digest_qa.bench import BenchReport, bench_answers
    from ai_digest_qa.evaluation import EvalQuestion
    from ai_digest_qa.records import BenchAnswerRow
    from fakes import tiny_assistant

    assistant = tiny_assistant(tmp_path)
    assistant._llms["local"] = _TimedLLM()
    assistant._llms["plain"] = _PlainLLM()
    asked = [EvalQuestion("a", "How long is Claude 2's context window?", "en", "en->en",
                          "100k tokens"),
             EvalQuestion("x", "What is the capital of Mars?", "en", "unanswerable", None,
                          answerable=False)]
    timed = bench_answers(assistant, asked, "local")
    rows = timed["questions"]
    assert [type(r) for r in rows] == [BenchAnswerRow, BenchAnswerRow]
    answered, abstained = rows
    assert answered.mode == "llm" and answered.streamed_pieces >= 2
    assert answered.raw and answered.raw["tokens_per_s"] == 12.5 and answered.raw_focused
    assert abstained.mode == "abstained" and abstained.streamed_pieces == 1
    assert abstained.tokens_per_s is None  # one piece: no rate
    summary = timed["summary"]
    assert summary["llm"] == "timed" and summary["n"] == 2
    # Means over the rows that have the figure: the abstention has no raw timings.
    assert summary["tokens_per_s"] == answered.tokens_per_s
    assert summary["raw_tokens_per_s"] == 12.5 and summary["prompt_seconds"] == 0.25
    assert summary["prompt_tokens"] == summary["focused_prompt_tokens"] == 100
    assert summary["prompt_time_ratio_focused_to_used"] == 1.0
    assert summary["total_s"] == pytest.approx((answered.total_s + abstained.total_s) / 2)
    assert _positive(summary["generation_ratio_ours_to_raw"])

    written = BenchReport(machine={}, answers=timed).to_json()["answers"]["questions"]
    assert list(written[0]) == ["question", "first_token_s", "total_s", "streamed_pieces",
                                "mode", "tokens_per_s", "raw", "raw_focused"]
    # Figures not measured are left out of bench.json, as before the rows were records
    # (the abstention's nearest passages still get raw timings).
    assert list(written[1]) == ["question", "first_token_s", "total_s", "streamed_pieces",
                                "mode", "raw", "raw_focused"]
    plain = bench_answers(assistant, asked[:1], "plain")
    assert plain["questions"][0].raw is None and math.isnan(plain["summary"]["prompt_tokens"])
    assert list(BenchReport(machine={}, answers=plain).to_json()["answers"]["questions"][0]) \
        == ["question", "first_token_s", "total_s", "streamed_pieces", "mode", "tokens_per_s"]


def test_scale_rows_keep_the_json_keys_and_the_markdown(tmp_path):
    from ai_digest_qa.bench import BenchReport, bench_scale, plot_scale
    from ai_digest_qa.records import MilvusScaleRow, ScaleRow

    rows = bench_scale([300, 1200], dimension=16, queries=5, k=5, flat_limit=1000)
    assert [type(r) for r in rows] == [ScaleRow, ScaleRow]
    assert [r.index for r in rows] == ["flat", "hnsw"] and rows[0].recall == 1.0
    latency = {"n": 5, "p50_ms": 1.0, "p95_ms": 2.0, "mean_ms": 1.5}
    milvus = MilvusScaleRow(chunks=300, faiss_index="flat", milvus_index="HNSW",
                            faiss=latency, milvus=latency, faiss_recall=1.0,
                            milvus_recall=0.9, milvus_insert_seconds=0.5,
                            milvus_index_seconds=0.25, p50_ratio_milvus_to_faiss=3.0)
    report = BenchReport(machine={"cpu": "c", "cores": 1, "memory_gb": 1.0, "python": "3"},
                         scale=rows, milvus_scale=[milvus])
    data = json.loads(json.dumps(report.to_json()))
    assert list(data["scale"][0]) == ["chunks", "index", "build_seconds", "exact", "chosen",
                                      "recall@5", "index_mb", "rss_growth_mb",
                                      "speedup_vs_exact"]
    assert data["scale"][1]["chunks"] == 1200 and data["scale"][0]["build_seconds"] == 0.0
    assert data["milvus_scale"] == [{
        "chunks": 300, "faiss_index": "flat", "milvus_index": "HNSW", "faiss": latency,
        "milvus": latency, "faiss_recall@10": 1.0, "milvus_recall@10": 0.9,
        "milvus_insert_seconds": 0.5, "milvus_index_seconds": 0.25,
        "p50_ratio_milvus_to_faiss": 3.0}]
    markdown = report.markdown("scale.png")
    assert "| 1,200 | hnsw |" in markdown
    assert "![latency against corpus size](scale.png)" in markdown
    assert ("| 300 | flat | 1.00 / 2.00 | 1.000 | HNSW | 1.0 / 2.0 | 0.900 | 0.5 | 0.2 | 3x |"
            in markdown)
    plot_scale(rows, tmp_path / "scale.png")
    assert (tmp_path / "scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_integrity_bench_verifies_files_of_the_real_sizes_split_as_a_load_splits_them():
    from ai_digest_qa.bench import BenchReport, bench_integrity, synthetic_index_files
    from ai_digest_qa.records import IntegrityRow

    files = synthetic_index_files(2000, 384)
    assert files["vectors/default__vector_store.json"] == 2000 * 384 * 4 + 45
    total = sum(files.values()) / 1e6
    large = sum(v for k, v in files.items() if k.startswith(("vectors/", "keyword/"))) / 1e6
    (below,) = bench_integrity([2000], 384, background_mb=total, raw_mb=32)
    (above,) = bench_integrity([2000], 384, background_mb=total / 2, raw_mb=32)
    assert type(below) is IntegrityRow and below.stored_mb == above.stored_mb == total
    assert below.deferred_mb == 0 and below.after_load_seconds < below.before_serving_seconds
    assert above.deferred_mb == pytest.approx(large) and above.after_load_seconds > 0
    for row in (below, above):
        seconds = row.before_serving_seconds + row.after_load_seconds
        assert row.file_mb_per_s == pytest.approx(row.stored_mb / seconds)
        # Reading and hashing a file is not faster than hashing memory (3x: noise).
        assert 1 < row.file_mb_per_s < 3 * row.raw_sha256_mb_per_s < 3e5
    data = BenchReport(machine={}, integrity=[above]).to_json()["integrity"]
    assert list(data[0]) == ["chunks", "stored_mb", "deferred_mb", "before_serving_seconds",
                             "after_load_seconds", "file_mb_per_s", "raw_sha256_mb_per_s"]
    markdown = BenchReport(machine={"cpu": "c", "cores": 1, "memory_gb": 1.0, "python": "3"},
                           integrity=[above]).markdown()
    assert f"| 2,000 | {total:.0f} | {large:.0f} |" in markdown
