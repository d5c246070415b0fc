"""Command line: ``ai-digest-qa index [PATH...]`` and ``ai-digest-qa search "问题"``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from . import _offline  # noqa: F401
from .assistant import Assistant, QuestionError
from .config import ConfigError, load_config
from .index import progress_printer


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ai-digest-qa",
        description="Bilingual (Chinese/English) search and QA over AI digest articles and papers.",
    )
    parser.add_argument("--config", help="TOML config file (default: ai-digest-qa.toml)")
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser(
        "index", help="index corpus/ plus PATHs (files or folders; remembered for next time)")
    index.add_argument("paths", nargs="*", type=Path,
                       help=".txt .md .html .pdf .jsonl files or folders")
    index.add_argument("--remove", nargs="+", type=Path, default=[], metavar="PATH",
                       help="stop indexing these previously added paths")
    index.add_argument("--rebuild", action="store_true", help="re-embed everything from scratch")
    index.add_argument("--list", action="store_true", help="list the indexed documents")

    search = commands.add_parser("search", help="retrieve passages for a question")
    search.add_argument("question")
    search.add_argument("-k", "--top-k", type=int, default=None, help="number of passages")
    search.add_argument("--json", action="store_true", help="print passages as JSON")
    return parser


def _cmd_index(assistant: Assistant, args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        print(f"error: not found: {', '.join(missing)}. Nothing was changed.", file=sys.stderr)
        return 2
    report = assistant.update_index(list(args.paths), rebuild=args.rebuild,
                                    remove_paths=list(args.remove),
                                    progress=progress_printer("embedding"))
    print(report.summary(), file=sys.stderr)
    if args.list:
        for document in assistant.documents():
            print(f"{document.doc_id}\t{document.language}\t{document.kind}\t{document.title}")
    store = assistant.store
    print(f"index: {assistant.config.index_dir} ({len(store.documents)} documents, "
          f"{len(store.chunks)} chunks, embedder {store.manifest.embedder})", file=sys.stderr)
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
        print(f"    {where}  chars {passage.start}-{passage.end}")
        snippet = " ".join(passage.text.split())
        print(f"    {snippet[:300]}{'…' if len(snippet) > 300 else ''}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        assistant = Assistant(load_config(args.config))
        if args.command == "index":
            return _cmd_index(assistant, args)
        return _cmd_search(assistant, args)
    except (ConfigError, QuestionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the previous index is still in place.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
