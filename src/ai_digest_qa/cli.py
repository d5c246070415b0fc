"""Command line: ``ai-digest-qa index|ask|search|eval|serve`` (``--help`` on each)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeAlias

from . import (
    _offline,  # noqa: F401
    backends,
)
from .assistant import Assistant, QuestionError
from .config import LLM_BACKENDS, VECTOR_STORES, ConfigError, load_config
from .index import IndexCorruptError, progress_printer
from .llm import LLMError
from .records import Answer
from .textutils import page_label
from .vectorstores import VectorStoreUnavailable

# argparse names its sub-command container only privately.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ai-digest-qa",
        description="Bilingual (Chinese/English) search and QA over AI digest articles and papers.",
    )
    parser.add_argument("--config", help="TOML config file (default: ai-digest-qa.toml)")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_index_command(commands)
    _add_ask_command(commands)
    _add_eval_command(commands)
    _add_bench_command(commands)
    _add_search_command(commands)
    _add_migrate_command(commands)
    _add_serve_command(commands)
    return parser


def _add_index_command(commands: Subcommands) -> None:
    index = commands.add_parser(
        "index", help="index corpus/ plus PATHs (files or folders; remembered for next time)")
    index.add_argument("paths", nargs="*", type=Path,
                       help=".txt .md .html .pdf .docx .jsonl files or folders")
    index.add_argument("--remove", nargs="+", type=Path, default=[], metavar="PATH",
                       help="stop indexing these previously added paths")
    index.add_argument("--rebuild", action="store_true", help="re-embed everything from scratch")
    index.add_argument("--list", action="store_true", help="list the indexed documents")


def _add_ask_command(commands: Subcommands) -> None:
    ask = commands.add_parser("ask", help="answer a question with cited sources")
    ask.add_argument("question")
    ask.add_argument("-k", "--top-k", type=int, default=None, help="passages given to the LLM")
    ask.add_argument("--llm", choices=LLM_BACKENDS, default=None,
                     help="answer backend (default: configuration, 'local')")
    ask.add_argument("--json", action="store_true", help="print the Answer as JSON")


def _add_eval_command(commands: Subcommands) -> None:
    evaluate = commands.add_parser("eval", help="measure retrieval or answer quality")
    evaluate.add_argument("--set", default=None, help="question set (eval/dev_qa.jsonl)")
    evaluate.add_argument("--mode", choices=["retrieval", "answer"], default="retrieval")
    evaluate.add_argument("--llm", action="append", choices=LLM_BACKENDS,
                          help="answer backend(s) to evaluate (repeatable; default: local)")
    evaluate.add_argument("--details", action="store_true", help="one line per question")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.add_argument("--split", choices=["tune", "report", "all"], default="all",
                          help="which half of the question set (default: both)")
    evaluate.add_argument("--no-previous", action="store_true",
                          help="answers: skip the previous default (answer_strategy = "
                               "'passages', shipped weights) run side by side")
    evaluate.add_argument("--calibrate", action="store_true",
                          help="fit the relevance model on the tune half and write it "
                               "(--out, default: the package's data/relevance.json)")
    evaluate.add_argument("--out", default=None, help="where --calibrate writes the model")
    evaluate.add_argument("--no-baseline", action="store_true",
                          help="skip the plain llama-index VectorStoreIndex comparison")


def _add_bench_command(commands: Subcommands) -> None:
    bench = commands.add_parser("bench", help="measure speed and memory (JSON, markdown, plot)")
    bench.add_argument("--set", default=None, help="question set (eval/dev_qa.jsonl)")
    bench.add_argument("--sizes", default="10000,100000",
                       help="synthetic corpus sizes for the scale and integrity tests "
                            "(comma-separated; '' to skip; 1000000 takes ~10 min and ~3 GB, "
                            "and writes ~4.6 GB of temporary index files to hash)")
    bench.add_argument("--answers", type=int, default=3, help="questions answered by the LLM")
    bench.add_argument("--llm", default="local",
                       choices=backends.names("llm", backends.GENERATES),
                       help="answer backend to time")
    bench.add_argument("--formats", default="all",
                       help="llama.cpp runtime x weight format timed side by side, as "
                            "runtime:format names (xllamacpp:q8_0,llama-cpp-python:shipped; "
                            "a bare format is xllamacpp's), 'all' for every installed "
                            "runtime with shipped, q8_0 and q4_0, '' to skip")
    bench.add_argument("--format-accuracy", action="store_true",
                       help="also the report half's answer accuracy with each "
                            "runtime:format (slow)")
    bench.add_argument("--versus", type=int, default=16,
                       help="questions answered by the default and the previous default, "
                            "alternating (0 to skip)")
    bench.add_argument("--api-clients", type=int, default=0, metavar="N",
                       help="also N concurrent clients of the OpenAI-compatible API on a "
                            "real server, against the same questions one at a time")
    bench.add_argument("--out", default="benchmarks/results", help="output folder")
    bench.add_argument("--no-baseline", action="store_true",
                       help="skip the llama-index baseline's retrieval latency")
    bench.add_argument("--milvus", default=None, metavar="SIZES",
                       help="also compare Milvus Lite with FAISS: on the real corpus (dev-set "
                            "quality and latency, local vs Milvus BM25) and on synthetic "
                            "corpora of these sizes, e.g. 100000 ('' for the corpus only; "
                            "needs the milvus extra)")
    bench.add_argument("--flat-limit", type=int, default=None,
                       help="largest synthetic corpus the scale test searches exactly "
                            "(default 50000, as the live index)")


def _add_search_command(commands: Subcommands) -> None:
    search = commands.add_parser("search", help="retrieve passages for a question")
    search.add_argument("question")
    search.add_argument("-k", "--top-k", type=int, default=None, help="number of passages")
    search.add_argument("--json", action="store_true", help="print passages as JSON")


def _add_migrate_command(commands: Subcommands) -> None:
    migrate = commands.add_parser(
        "migrate", help="move the index's vectors to another vector store (no re-embedding)")
    migrate.add_argument("--to", required=True, choices=VECTOR_STORES,
                         help="target backend (Milvus at milvus_uri; default index/milvus.db)")


def _add_serve_command(commands: Subcommands) -> None:
    serve = commands.add_parser(
        "serve", help="start the web UI, the OpenAI-compatible API (/v1) and the MCP tools "
        "on one port (same as python app.py)")
    serve.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 7860)")
    serve.add_argument("--share", action="store_true", default=None,
                       help="also make a public gradio.live link (needs internet)")
    serve.add_argument("--auth", default=None, metavar="USER:PASSWORD",
                       help="require this login (use it whenever --host is not loopback)")


def _cmd_index(assistant: Assistant, args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        print(f"error: not found: {', '.join(missing)}. Nothing was changed.", file=sys.stderr)
        return 2
    report = assistant.update_index(list(args.paths), rebuild=args.rebuild,
                                    remove_paths=list(args.remove),
                                    progress=progress_printer("embedding"))
    print(report.summary(), file=sys.stderr)
    # A large index's vectors and keyword arrays are verified after load: an ingest job
    # waits for that check, and for the rebuild a mismatch starts, before it exits.
    check = assistant.store.integrity
    check.wait()
    if check.problem and assistant.last_update is not None:
        print(f"{check.problem}\n{assistant.last_update.summary()}", file=sys.stderr)
    if args.list:
        for document in assistant.documents():
            print(f"{document.doc_id}\t{document.language}\t{document.kind}\t{document.title}")
    store = assistant.store
    print(f"index: {assistant.config.index_dir} ({len(store.documents)} documents, "
          f"{len(store.chunks)} chunks, embedder {store.manifest.embedder})", file=sys.stderr)
    return 0


def _cmd_migrate(assistant: Assistant, args: argparse.Namespace) -> int:
    configured = assistant.config.vector_store
    report = assistant.migrate(args.to, progress=progress_printer("vectors"))
    print(report.summary(), file=sys.stderr)
    store = assistant.store
    where = (assistant.config.milvus_settings.shown_uri
             if backends.has("vector_store", args.to, backends.COLLECTION)
             else assistant.config.index_dir)
    if report.vectors_moved:
        print(f"{store.vectors.size} vectors for {len(store.chunks)} chunks now in {args.to} "
              f"({where}); count check passed.", file=sys.stderr)
    else:
        print(f"The index's vectors are in {store.vectors.kind} ({where}); nothing to move.",
              file=sys.stderr)
    if configured != args.to:
        print(f"Set vector_store = \"{args.to}\" in ai-digest-qa.toml (or "
              f"AI_DIGEST_QA_VECTOR_STORE={args.to}) so that new builds use it too.",
              file=sys.stderr)
    return 0


def _cmd_search(assistant: Assistant, args: argparse.Namespace) -> int:
    if args.top_k is not None and args.top_k < 1:
        print("error: -k must be at least 1.", file=sys.stderr)
        return 2
    passages = assistant.retrieve(args.question, args.top_k)
    if args.json:
        print(json.dumps([asdict(p) for p in passages], ensure_ascii=False, indent=2))
        return 0
    if not passages:
        print("No matching passages. 没有找到相关段落。")
    for number, passage in enumerate(passages, start=1):
        where = passage.url or passage.source
        section = (f" / {passage.section}"
                   if passage.section and passage.section != passage.title else "")
        print(f"[{number}] {passage.title}{section}  (score {passage.score:.4f})")
        page = f"  {page_label(*passage.pages)}" if passage.pages else ""
        print(f"    {where}{page}  chars {passage.start}-{passage.end}")
        snippet = " ".join(passage.text.split())
        print(f"    {snippet[:300]}{'…' if len(snippet) > 300 else ''}\n")
    return 0


def _cmd_ask(assistant: Assistant, args: argparse.Namespace) -> int:
    answer = None
    pieces: list[str] = []
    for item in assistant.ask_stream(args.question, top_k=args.top_k, llm=args.llm):
        if isinstance(item, Answer):
            answer = item
        elif not args.json:
            print(item, end="", flush=True)
            pieces.append(item)
    assert answer is not None
    if args.json:
        print(json.dumps(asdict(answer), ensure_ascii=False, indent=2))
        return 0
    if "".join(pieces).strip() != answer.text.strip():
        # The streamed draft was replaced (a retry, a fallback): show the final text.
        label = "最终回答:" if answer.language == "zh" else "Final answer:"
        print(f"\n\n{label}\n{answer.text}" if pieces else answer.text)
    else:
        print()
    if answer.citations:
        print("\n来源 / Sources:" if answer.language == "zh" else "\nSources:")
        for citation in answer.citations:
            passage = citation.passage
            snippet = " ".join(passage.text.split())
            page = f"  {page_label(citation.page)}" if citation.page else ""
            print(f"{citation.marker} {passage.title}{page}  {passage.url or passage.source}")
            print(f"    {snippet[:240]}{'…' if len(snippet) > 240 else ''}")
    print(f"\n({answer.llm}, {answer.timings.get('total', 0):.1f}s)", file=sys.stderr)
    return 0


def _questions_path(assistant: Assistant, args: argparse.Namespace) -> Path:
    if args.set:
        return Path(args.set)
    return assistant.config.corpus_dir.parent / "eval" / "dev_qa.jsonl"


def _cmd_eval(assistant: Assistant, args: argparse.Namespace) -> int:
    from .evaluation import load_questions

    questions = load_questions(_questions_path(assistant, args))
    if args.calibrate:
        return _calibrate(assistant, questions, args)
    if args.split != "all":
        questions = [q for q in questions if q.split == args.split]
    if args.mode == "retrieval":
        return _eval_retrieval(assistant, questions, args)
    return _eval_answers(assistant, questions, args)


def _eval_retrieval(assistant: Assistant, questions: list[Any],
                    args: argparse.Namespace) -> int:
    from .baseline import LlamaIndexBaseline
    from .evaluation import evaluate_retrieval, retrieval_side_by_side

    baseline = None if args.no_baseline else LlamaIndexBaseline(assistant)
    report = evaluate_retrieval(assistant, questions)
    base = evaluate_retrieval(baseline, questions) if baseline else None
    if args.json:
        print(json.dumps({"ours": asdict(report), "baseline": base and asdict(base)},
                         ensure_ascii=False, indent=2))
        return 0
    print(retrieval_side_by_side(report, base) if base else report.table())
    if args.details:
        ranks = {row.id: row.rank for row in base.details} if base else {}
        for row in report.details:
            print(f"{row.id:<14} rank={row.rank} baseline={ranks.get(row.id)}  "
                  f"{row.question}")
    return 0


def _eval_answers(assistant: Assistant, questions: list[Any], args: argparse.Namespace) -> int:
    from .baseline import LlamaIndexBaseline
    from .evaluation import answers_side_by_side, evaluate_answers

    baseline = None if args.no_baseline else LlamaIndexBaseline(assistant)
    previous = None if args.no_previous else assistant.previous_default()
    results = []
    for llm in args.llm or ["local"]:
        runs = [evaluate_answers(assistant, questions, llm, "ours")]
        generates = backends.has("llm", llm, backends.GENERATES)  # else nothing to compare
        if previous is not None and generates:
            runs.append(evaluate_answers(previous, questions, llm, "previous"))
        if baseline is not None and generates:
            runs.append(evaluate_answers(baseline, questions, llm, "llama-index"))
        results.append(runs)
    if args.json:
        print(json.dumps([[asdict(r) for r in runs] for runs in results],
                         ensure_ascii=False, indent=2))
        return 0
    for ours, *others in results:
        print(ours.table() if not others else "")
        for other in others:
            print(answers_side_by_side(ours, other))
            print()
        if args.details:
            _print_answer_details(ours, others)
        print()
    return 0


def _print_answer_details(ours: Any, others: list[Any]) -> None:
    verdicts = [{row.id: row.verdict for row in other.details} for other in others]
    for row in ours.details:
        theirs = " ".join(f"{o.label}={v.get(row.id, '-'):<10}" for o, v in zip(others, verdicts))
        # cited k/n: k of the n cited passages hold the question's evidence.
        cited = f"cited {row.precise_citations}/{row.citations}" if row.answerable else ""
        print(f"{row.id:<16} {row.verdict:<10} {theirs} {row.seconds:>5.1f}s {cited:<9} "
              f"{row.answer[:100]!r}")


def _calibrate_doubt(assistant: Assistant, tune: list[Any], model: Any,
                     args: argparse.Namespace) -> Any:
    """Fit the doubt threshold from the LLM's "not found" verdicts on the tune half."""
    from dataclasses import replace

    from .answerability import fit_doubt

    assistant.relevance = replace(model, doubt_threshold=1.0 + 1e-9)  # believe every verdict
    relevances, labels = [], []
    try:
        for question in tune:
            answer = assistant.ask(question.question, history=list(question.history) or None,
                                   llm=(args.llm or ["local"])[0])
            if answer.abstention == "model-not-found" and answer.relevance is not None:
                relevances.append(answer.relevance)
                labels.append(question.answerable)
    finally:
        assistant.relevance = None
    doubt = fit_doubt(relevances, labels)
    print(f"the LLM said 'not found' on {len(labels)} tune questions "
          f"({labels.count(True)} answerable); doubt threshold {doubt:.3f}")
    return replace(model, doubt_threshold=doubt)


def _calibrate(assistant: Assistant, questions: list[Any], args: argparse.Namespace) -> int:
    from importlib import resources

    from .answerability import fit

    tune = [q for q in questions if q.split == "tune"]
    signals, labels = [], []
    for question in tune:
        found = assistant.answerability_signals(question.question, list(question.history))
        if found is not None:
            signals.append(found)
            labels.append(question.answerable)
    model = fit(signals, labels, fitted_on=f"{len(signals)} tune questions of "
                                           f"{_questions_path(assistant, args).name}")
    model = _calibrate_doubt(assistant, tune, model, args)
    out = Path(args.out) if args.out else Path(
        str(resources.files("ai_digest_qa").joinpath("data/relevance.json")))
    model.save(out)
    kept = sum(model.answerable(s) for s, a in zip(signals, labels) if not a)
    print(f"fitted on {len(signals)} questions that reach the relevance check "
          f"({sum(labels)} answerable); threshold {model.threshold:.3f}; unanswerable ones "
          f"still answered: {kept} of {labels.count(False)}; written to {out}")
    return 0


def _sizes(text: str) -> list[int]:
    """ "10000,1e5" -> [10000, 100000]; "" -> []."""
    return [int(float(size)) for size in text.split(",") if size.strip()]


def _cmd_bench(assistant: Assistant, args: argparse.Namespace) -> int:
    from .baseline import LlamaIndexBaseline
    from .bench import bench_variants, run_bench
    from .evaluation import load_questions

    baseline = None if args.no_baseline else LlamaIndexBaseline(assistant)
    questions = load_questions(_questions_path(assistant, args))
    formats = bench_variants(args.formats)
    report_half = [q for q in questions if q.split == "report"]
    report = run_bench(assistant, questions,
                       Path(args.out), sizes=_sizes(args.sizes), answers=args.answers,
                       baseline=baseline, flat_limit=args.flat_limit, llm=args.llm,
                       milvus_sizes=None if args.milvus is None else _sizes(args.milvus),
                       formats=formats, versus=args.versus,
                       format_accuracy=report_half if args.format_accuracy else None,
                       api_clients=args.api_clients)
    print(report.markdown("scale.png" if report.scale else None))
    print(f"\nwritten: {Path(args.out) / 'bench.json'}, bench.md"
          + (", scale.png" if report.scale else ""), file=sys.stderr)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from .server import launch

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("ai_digest_qa").setLevel(logging.INFO)
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on itself
    flags = {"ui_host": args.host, "ui_port": args.port, "ui_share": args.share,
             "ui_auth": args.auth}
    launch(load_config(args.config, **{k: v for k, v in flags.items() if v is not None}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _cmd_serve(args)
        assistant = Assistant(load_config(args.config))
        if args.command == "index":
            return _cmd_index(assistant, args)
        if args.command == "ask":
            return _cmd_ask(assistant, args)
        if args.command == "eval":
            return _cmd_eval(assistant, args)
        if args.command == "bench":
            return _cmd_bench(assistant, args)
        if args.command == "migrate":
            return _cmd_migrate(assistant, args)
        return _cmd_search(assistant, args)
    except (ConfigError, QuestionError, LLMError, VectorStoreUnavailable,
            IndexCorruptError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the previous index is still in place.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
