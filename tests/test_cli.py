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


@pytest.fixture()
def pdf_cli(tmp_path, monkeypatch):
    """``cli.main`` over a two-page PDF with the fake embedder (no model loaded), and the
    offset where page 2 starts in the document text, found from the text itself."""
    from ai_digest_qa import cli
    from conftest import multipage_pdf
    from fakes import fake_assistant

    pages = ["第1页:直接偏好优化绕过了奖励模型,直接在偏好数据上优化语言模型。" * 2,
             "第2页:混合专家模型每个输入只激活一部分专家,从而降低计算量。" * 2]
    assistant, _ = fake_assistant(tmp_path, {"topics.pdf": multipage_pdf(pages)},
                                  chunk_size=30, chunk_overlap=4)
    monkeypatch.setattr(cli, "Assistant", lambda config: assistant)
    [document] = assistant.documents()
    return cli.main, document.text.index("第2页"), assistant


def test_search_and_ask_show_the_pdf_page(pdf_cli, capsys):
    main, page_2_starts, _ = pdf_cli

    def page(offset: int) -> int:
        return 2 if offset >= page_2_starts else 1

    assert main(["search", "混合专家模型 激活 专家", "-k", "1"]) == 0
    out = capsys.readouterr().out
    [location] = [line for line in out.splitlines() if "chars" in line]
    assert "topics.pdf  p. 2  chars" in location

    assert main(["search", "偏好优化 混合专家模型", "-k", "10", "--json"]) == 0
    passages = json.loads(capsys.readouterr().out)
    assert {1, 2} <= {p["page"] for p in passages}
    for passage in passages:
        text = passage["text"]
        first = passage["start"] + len(text) - len(text.lstrip())
        last = passage["end"] - 1 - (len(text) - len(text.rstrip()))
        assert passage["pages"] == [page(first), page(last)]
        assert passage["page"] == page(first)

    question = "混合专家模型每个输入激活多少专家?"
    assert main(["ask", question, "--llm", "extractive", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    cited = [c for c in answer["citations"] if c["span"]]
    assert cited, answer["text"]
    for citation in cited:
        assert citation["page"] == page(citation["passage"]["start"] + citation["span"][0])
    assert main(["ask", question, "--llm", "extractive"]) == 0
    sources = capsys.readouterr().out.split("Sources:")[1].splitlines()
    for citation in cited:
        [line] = [s for s in sources if s.startswith(citation["marker"] + " ")]
        assert f"  p. {citation['page']}  " in line and "topics.pdf" in line


def test_ask_shows_the_page_where_a_cited_quote_starts(pdf_cli, capsys, monkeypatch):
    from ai_digest_qa.records import Answer, Citation

    main, _, assistant = pdf_cli
    spanning = next(p for p in assistant.retrieve("偏好优化 混合专家模型", top_k=20)
                    if p.pages == (1, 2))
    on_2 = spanning.text.index("第2页")
    citation = Citation("[1]", spanning, (on_2, len(spanning.text.rstrip())))
    answer = Answer(question="q", text="混合专家 [1]", citations=[citation], abstained=False,
                    language="zh", llm="scripted", mode="llm", passages=[spanning])
    monkeypatch.setattr(assistant, "ask_stream", lambda *a, **k: iter([answer.text, answer]))
    assert main(["ask", "混合专家模型是什么?"]) == 0
    [line] = [s for s in capsys.readouterr().out.splitlines() if s.startswith("[1] ")]
    assert "  p. 2  " in line  # the quote's page, not the passage's first (p. 1)
    assert main(["ask", "混合专家模型是什么?", "--json"]) == 0
    [cited] = json.loads(capsys.readouterr().out)["citations"]
    assert cited["page"] == 2 and cited["passage"]["pages"] == [1, 2]
