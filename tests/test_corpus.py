import json
import os
from pathlib import Path

import pytest

from ai_digest_qa.corpus import DocumentError, decode_text, discover, load_file
from conftest import CORPUS, tiny_pdf

TEXT = "大模型的幻觉问题仍未解决。Hallucination is still unsolved.\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_text_encodings_are_read(tmp_path: Path, encoding: str):
    path = tmp_path / f"doc-{encoding}.txt"
    path.write_bytes(TEXT.encode(encoding))
    [document] = load_file(path, "doc")
    assert document.text == TEXT
    assert document.language == "zh"
    assert not document.text.startswith("\ufeff")


def test_binary_with_text_extension_is_rejected():
    with pytest.raises(DocumentError, match="binary"):
        decode_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image.txt")


def test_undecodable_bytes_give_a_clear_error():
    with pytest.raises(DocumentError, match="UTF-8"):
        decode_text(b"\xff\xfe\xfd"[1:] * 3 + b"\x81\x20", "bad.txt")


def test_empty_file_is_rejected(tmp_path: Path):
    path = tmp_path / "empty.md"
    path.write_text("  \n", encoding="utf-8")
    with pytest.raises(DocumentError, match="no text"):
        load_file(path, "empty")


def test_html_keeps_text_and_headings_drops_scripts(tmp_path: Path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>MoE 简介</title><script>var x = 1;</script></head><body>"
        "<nav>首页 | 登录</nav><h1>混合专家</h1><p>MoE 每次只激活<b>部分</b>专家。</p>"
        "<h2>Routing</h2><p>A router picks the top-2 experts.</p><footer>© site</footer>"
        "</body></html>", encoding="utf-8")
    [document] = load_file(path, "page")
    assert document.title == "MoE 简介"
    assert "var x" not in document.text and "登录" not in document.text
    assert "© site" not in document.text
    assert "MoE 每次只激活 部分 专家。" in document.text
    headings = {s.heading: s.start for s in document.sections}
    assert document.text[headings["Routing"]:].startswith("Routing")


def test_markdown_sections_and_sidecar_metadata(tmp_path: Path):
    path = tmp_path / "notes.md"
    path.write_text("# Title here\n\nIntro.\n\n## Part two\n\nMore text.\n", encoding="utf-8")
    (tmp_path / "notes.meta.json").write_text(
        json.dumps({"title": "My notes", "url": "https://example.org/notes", "kind": "article"}),
        encoding="utf-8")
    [document] = load_file(path, "notes")
    assert (document.title, document.url, document.kind) == (
        "My notes", "https://example.org/notes", "article")
    assert [s.heading for s in document.sections] == ["Title here", "Part two"]


def test_papers_jsonl_records_become_documents():
    documents = load_file(CORPUS / "papers" / "papers.jsonl", "corpus/papers/papers.jsonl")
    assert len(documents) == 44
    dpo = next(d for d in documents if d.metadata["key"] == "dpo")
    assert dpo.url == "https://arxiv.org/abs/2305.18290"
    assert dpo.kind == "paper" and dpo.language == "en"
    assert dpo.text.startswith("Direct Preference Optimization")
    assert "Year: 2023" in dpo.text and "Venue: NeurIPS 2023" in dpo.text
    no_abstract = [d for d in documents if d.sections[0].heading == "Record"]
    assert len(no_abstract) == 3  # records without an arXiv abstract are still indexed


def test_malformed_jsonl_line_is_reported(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"title": "ok"}\n{not json}\n', encoding="utf-8")
    with pytest.raises(DocumentError, match=r"bad.jsonl:2"):
        load_file(path, "bad")


def test_pdf_text_is_extracted(tmp_path: Path):
    path = tmp_path / "paper.pdf"
    path.write_bytes(tiny_pdf("Sparse experts scale language models."))
    [document] = load_file(path, "paper")
    assert "Sparse experts scale language models." in document.text
    assert document.sections[0].heading == "p. 1"


def test_truncated_pdf_gives_a_clear_error(tmp_path: Path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(tiny_pdf("hello")[:60])
    with pytest.raises(DocumentError, match="PDF"):
        load_file(path, "broken")


def test_discover_skips_hidden_meta_and_symlink_loops(tmp_path: Path):
    (tmp_path / "a.txt").write_text("a", encoding="utf-8")
    (tmp_path / "a.meta.json").write_text("{}", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("h", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.md").write_text("b", encoding="utf-8")
    os.symlink(tmp_path, sub / "loop")
    problems: list[tuple[str, str]] = []
    found = discover([tmp_path], tmp_path, problems)
    assert [f.path.name for f in found] == ["a.txt", "b.md"]
    assert any("symlink loop" in reason for _, reason in problems)
