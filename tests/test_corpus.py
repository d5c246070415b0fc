import json
import os
from pathlib import Path

import pytest

from ai_digest_qa.chunking import Chunker
from ai_digest_qa.corpus import DocumentError, decode_text, discover, load_file
from conftest import CORPUS, bad_docx_files, docx_bytes, multipage_pdf, tiny_pdf

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
    assert document.metadata["page_starts"] == [0]
    assert document.page_of(len(document.text) - 1) == 1


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


# --- PDF pages ---------------------------------------------------------------------------


def _page_sentences(page: int, count: int) -> str:
    return "".join(f"第{page}页第{n}句:检索增强生成先检索段落再回答问题。"
                   for n in range(1, count + 1))


def _page_by_content(text: str, pages: int):
    """page(offset) from the text itself: page n runs from its first sentence ("第n页第1句")
    to the next page's (independent of the recorded page starts)."""
    firsts = [text.index(f"第{n}页第1句") for n in range(1, pages + 1)]
    return lambda offset: sum(first <= offset for first in firsts)


def test_pdf_pages_start_where_their_text_does_and_a_blank_page_takes_no_text(tmp_path):
    pages = [_page_sentences(1, 3), "", _page_sentences(3, 2) + "\nThird page in English.",
             _page_sentences(4, 1)]
    path = tmp_path / "report.pdf"
    path.write_bytes(multipage_pdf(pages))
    [document] = load_file(path, "report")
    starts = document.metadata["page_starts"]
    assert len(starts) == len(pages) and starts == sorted(starts)
    json.dumps(document.to_record())  # persisted with the document
    for number, page in enumerate(pages, start=1):
        if not page:
            continue
        first = page.split("\n")[0][:12]
        assert document.text.startswith(first, starts[number - 1])
        # Every character of the page's text maps back to the page.
        end = starts[number] if number < len(starts) else len(document.text)
        assert {document.page_of(o) for o in range(starts[number - 1], end)} == {number}
    assert starts[1] == starts[2]  # the blank page 2 starts where page 3 does
    assert document.page_of(starts[2]) == 3
    assert document.pages_of(0, len(document.text)) == (1, len(pages))


def test_pdf_chunks_know_their_pages_and_one_spans_a_page_break(tmp_path):
    # Five sentences a page do not fill whole chunks: some chunk runs across a page break.
    pages = [_page_sentences(n, 5) for n in range(1, 5)]
    path = tmp_path / "long.pdf"
    path.write_bytes(multipage_pdf(pages))
    [document] = load_file(path, "long")
    page_by_content = _page_by_content(document.text, len(pages))
    chunks = Chunker(chunk_size=64, chunk_overlap=8).run(document)
    assert len(chunks) > len(pages)
    spanning = []
    for chunk in chunks:
        assert document.text[chunk.start:chunk.end] == chunk.text
        stripped = chunk.text.strip()
        start = chunk.start + chunk.text.index(stripped)
        expected = (page_by_content(start), page_by_content(start + len(stripped) - 1))
        assert document.pages_of(chunk.start, chunk.end) == expected, chunk.text
        if expected[1] > expected[0]:
            spanning.append(expected)
    assert spanning and all(last == first + 1 for first, last in spanning)


def test_pdf_bookmarks_become_sections_at_their_headings(tmp_path):
    pages = ["Introduction\nRetrieval first, then the answer.",
             "Some text ends the introduction.\n2 Methods\nWe chunk each page.",
             "Results are on this page."]
    path = tmp_path / "paper.pdf"
    path.write_bytes(multipage_pdf(pages, bookmarks=(
        (1, "Introduction"), (2, "2 Methods"), (3, "Findings"))))
    [document] = load_file(path, "paper")
    starts = document.metadata["page_starts"]
    by_heading = {s.heading: s.start for s in document.sections}
    assert list(by_heading) == ["Introduction", "2 Methods", "Findings"]
    assert document.text.startswith("2 Methods", by_heading["2 Methods"])
    assert by_heading["2 Methods"] > starts[1]  # at the heading, not the page's top
    assert by_heading["Findings"] == starts[2]  # a title not on its page: the page's start


def test_a_text_document_has_no_pages(tmp_path):
    path = tmp_path / "note.md"
    path.write_text("# Note\n\nNo pages here.\n", encoding="utf-8")
    [document] = load_file(path, "note")
    assert document.page_starts == () and document.page_of(3) is None
    assert document.pages_of(0, 5) is None


# --- Word files --------------------------------------------------------------------------


def test_docx_headings_become_sections_and_tables_rows_in_document_order(tmp_path):
    path = tmp_path / "report.docx"
    path.write_bytes(docx_bytes([
        ("title", "年度模型报告"),
        ("p", "本报告比较三个开源模型。"),
        ("h1", "1. 评测方法"),
        ("p", "We score each model on the same benchmark."),
        ("table", [["模型", "参数量", "得分"], ["Qwen2.5", "0.5B", "61.2"],
                   ["Llama 3", "8B", "70.4"]]),
        ("p", "表格之后的段落。"),
        ("h2", "Results"),
        ("p", "Llama 3 scores highest. " * 4),
    ]))
    [document] = load_file(path, "report")
    text = document.text
    assert document.title == "年度模型报告"
    headings = [s.heading for s in document.sections]
    assert headings == ["年度模型报告", "1. 评测方法", "Results"]
    for section in document.sections:
        assert text.startswith(section.heading, section.start)
    rows = ["模型 | 参数量 | 得分", "Qwen2.5 | 0.5B | 61.2", "Llama 3 | 8B | 70.4"]
    assert "\n".join(rows) in text  # one line per row
    order = ["本报告比较", "1. 评测方法", "We score each", rows[0], rows[2], "表格之后",
             "Results", "Llama 3 scores highest."]
    positions = [text.index(piece) for piece in order]
    assert positions == sorted(positions)
    chunks = Chunker(chunk_size=32, chunk_overlap=4).run(document)
    assert all(text[c.start:c.end] == c.text for c in chunks)
    assert any(c.section == "Results" and "highest" in c.text for c in chunks)


def test_docx_title_property_and_sidecar_metadata_win(tmp_path):
    path = tmp_path / "memo.docx"
    path.write_bytes(docx_bytes([("h1", "Background"), ("p", "Some text.")],
                                title="Quarterly memo"))
    [document] = load_file(path, "memo")
    assert document.title == "Quarterly memo" and document.page_starts == ()
    (tmp_path / "memo.meta.json").write_text('{"title": "备忘录", "language": "zh"}',
                                             encoding="utf-8")
    [document] = load_file(path, "memo")
    assert document.title == "备忘录" and document.language == "zh"


def test_corrupt_and_encrypted_docx_give_a_clear_reason(tmp_path):
    reasons = {}
    for name, data in bad_docx_files().items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DocumentError) as caught:
            load_file(path, name)
        reasons[name] = str(caught.value)
    assert "encrypted (password-protected)" in reasons["encrypted.docx"]
    assert "damaged or truncated" in reasons["truncated.docx"]
    assert "not a zip package" in reasons["plain-text.docx"]
    assert "cannot read the Word file" in reasons["broken-xml.docx"]


def test_a_docx_that_unpacks_too_large_is_refused_before_reading(tmp_path, monkeypatch):
    from ai_digest_qa import corpus

    path = tmp_path / "bomb.docx"
    path.write_bytes(docx_bytes([("p", "small")]))
    monkeypatch.setattr(corpus, "_DOCX_MAX_UNPACKED", path.stat().st_size)  # always exceeded
    with pytest.raises(DocumentError, match="unpacks to"):
        load_file(path, "bomb")
