import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(args: list[str], index_dir: Path, corpus: Path | None = None):
    env = {**os.environ, "AI_DIGEST_QA_INDEX_DIR": str(index_dir)}
    if corpus is not None:
        env["AI_DIGEST_QA_CORPUS_DIR"] = str(corpus)
    return subprocess.run([sys.executable, "-m", "ai_digest_qa.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_search_in_chinese_and_english(corpus_assistant):
    index_dir = corpus_assistant.config.index_dir
    chinese = _cli(["search", "ICML 2024 的接受率是多少?", "-k", "3"], index_dir)
    assert chinese.returncode == 0, chinese.stderr
    assert "27.03%" in chinese.stdout and chinese.stdout.startswith("[1] ")

    english = _cli(["search", "Which city hosted ICML 2024?", "--json", "-k", "5"], index_dir)
    assert english.returncode == 0, english.stderr
    passages = json.loads(english.stdout)
    assert len(passages) == 5
    assert any("维也纳" in p["text"] for p in passages)
    assert {"text", "score", "title", "source", "url", "doc_id", "chunk_id", "start", "end",
            "language"} <= set(passages[0])


@pytest.mark.slow
def test_index_adds_user_documents_and_reports(small_corpus, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "gbk.txt").write_bytes("知识蒸馏用大模型教小模型。".encode("gbk"))
    (extra / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    index_dir = tmp_path / "index"
    result = _cli(["index", str(extra), "--list"], index_dir, small_corpus)
    assert result.returncode == 0, result.stderr
    assert "4 added" in result.stderr
    assert "skipped" in result.stderr and "broken.pdf" in result.stderr
    assert "gbk.txt" in result.stdout

    found = _cli(["search", "知识蒸馏", "-k", "1", "--json"], index_dir, small_corpus)
    assert json.loads(found.stdout)[0]["doc_id"].endswith("gbk.txt")


def test_bad_input_gets_a_clear_error(tmp_path, small_corpus):
    missing = _cli(["index", str(tmp_path / "nope")], tmp_path / "index", small_corpus)
    assert missing.returncode == 2 and "not found" in missing.stderr
    empty = _cli(["search", "   "], tmp_path / "index", small_corpus)
    assert empty.returncode == 2 and "empty" in empty.stderr
    assert "Traceback" not in missing.stderr + empty.stderr
