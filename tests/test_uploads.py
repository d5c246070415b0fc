"""Uploads from the page: the checks, the names, background indexing, removal."""

import io
from pathlib import Path

import pytest

from ai_digest_qa.ui_documents import DocumentsPanel, uploads_allowed
from ai_digest_qa.uploads import Uploads, content_problem, place, safe_name
from conftest import bad_docx_files, docx_bytes, multipage_pdf
from fakes import tiny_assistant


def image_only_pdf() -> bytes:
    """A scanned-looking PDF: a drawn page with no text layer."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.rect(72, 500, 300, 200, fill=1)
    page.showPage()
    page.save()
    return out.getvalue()


def _files(folder: Path, files: dict[str, bytes]) -> list[tuple[str, Path]]:
    """(name as uploaded, temporary path) pairs, as Gradio hands them over."""
    folder.mkdir(parents=True, exist_ok=True)
    given = []
    for number, (name, data) in enumerate(files.items()):
        path = folder / f"tmp{number}"
        path.write_bytes(data)
        given.append((name, path))
    return given


@pytest.mark.parametrize(("name", "expected"), [
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\windows\\evil.md", "evil.md"),
    (".hidden.txt", "hidden.txt"),
    ("报告 2024.PDF", "报告 2024.pdf"),
    ("a\x00b\nc.txt", "abc.txt"),
    ("<script>.html", "_script_.html"),
    ("", "upload"),
    ("x" * 300 + ".docx", "x" * 195 + ".docx"),  # 200 bytes in all
    ("报" * 100 + ".pdf", "报" * 65 + ".pdf"),  # 3 bytes a character: 199 bytes
])
def test_names_become_plain_file_names(name, expected):
    assert safe_name(name) == expected


def test_a_taken_name_gets_a_number_and_the_same_content_is_kept_once(tmp_path):
    folder = tmp_path / "uploads"
    first = tmp_path / "a"
    first.write_text("one", encoding="utf-8")
    target, _ = place(first, "notes.txt", folder)
    assert target == folder / "notes.txt"
    target.write_text("one", encoding="utf-8")
    other = tmp_path / "b"
    other.write_text("two", encoding="utf-8")
    assert place(other, "notes.txt", folder)[0] == folder / "notes-2.txt"
    assert place(first, "../notes.txt", folder) == (None, "already uploaded as notes.txt")
    assert place(first, "renamed.txt", folder) == (None, "already uploaded as notes.txt")


def test_content_must_match_the_extension(tmp_path):
    cases = {
        "fake.pdf": (b"MZ\x90\x00 an executable", "not a PDF"),
        "fake.docx": (b"%PDF-1.4 a pdf", "not a Word (.docx) document"),
        "program.txt": (b"\x7fELF\x02\x01\x01" + bytes(64), "binary"),
        "archive.html": (b"PK\x03\x04" + bytes(40), "binary"),
        "latin1.txt": ("café".encode("latin-1"), "not UTF-8"),
    }
    for name, (data, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert reason in (content_problem(path, path.suffix) or ""), name
    good = tmp_path / "good.md"
    good.write_text("# 标题\n\n正文。", encoding="utf-8")
    assert content_problem(good, ".md") is None


def test_uploads_need_loopback_or_a_login():
    assert uploads_allowed("127.0.0.1", "")
    assert uploads_allowed("localhost", "")
    assert uploads_allowed("::1", "")
    assert not uploads_allowed("0.0.0.0", "")
    assert uploads_allowed("0.0.0.0", "user:secret")
    assert not uploads_allowed("127.0.0.1", "", share=True)  # a public share link
    assert uploads_allowed("127.0.0.1", "user:secret", share=True)


def test_the_upload_matrix_rejects_each_bad_file_with_its_reason_and_indexes_the_rest(
        tmp_path):
    assistant = tiny_assistant(tmp_path, max_file_mb=0.05, max_upload_files=10)
    uploads = Uploads(assistant)
    pdf = multipage_pdf(["第一页讲的是背景。", "第二页:项目代号为青鸟,预算为三百万元。"])
    files = {
        "report.pdf": pdf,
        "memo.docx": docx_bytes([("h1", "Budget"), ("p", "The Heron project costs 12 euros.")]),
        "../../escape.md": b"# Escape\n\nA file that tried to leave the folder.",
        "report.PDF": pdf,  # the same content again, under another case
        "big.txt": b"x" * 60_000,
        "not-really.pdf": b"MZ\x90\x00" + bytes(100),
        "tool.exe": b"MZ\x90\x00",
        "corrupt.docx": bad_docx_files()["broken-xml.docx"],
        "scan.pdf": image_only_pdf(),
    }
    outcomes = uploads.add(_files(tmp_path / "incoming", files))
    assert uploads.wait(120)
    by_name = {o.name: o for o in outcomes}
    assert by_name["report.pdf"].status == "indexed" and by_name["report.pdf"].passages >= 1
    assert by_name["memo.docx"].status == "indexed"
    assert by_name["../../escape.md"].status == "indexed"
    assert by_name["../../escape.md"].saved_as == "escape.md"
    assert "already uploaded as report.pdf" in by_name["report.PDF"].reason
    assert "over the 0.05 MB limit" in by_name["big.txt"].reason
    assert "not a PDF" in by_name["not-really.pdf"].reason
    assert ".exe is not supported" in by_name["tool.exe"].reason
    assert by_name["corrupt.docx"].status == "skipped" and by_name["corrupt.docx"].reason
    assert "no text layer" in by_name["scan.pdf"].reason
    kept = sorted(p.name for p in assistant.config.upload_folder.iterdir())
    assert kept == ["escape.md", "memo.docx", "report.pdf"]  # nothing else was kept
    assert not (tmp_path / "escape.md").exists() and not (tmp_path.parent / "escape.md").exists()
    passages = assistant.retrieve("青鸟项目的预算是多少?", 3)
    assert passages[0].source.endswith("report.pdf")
    assert passages[0].pages == (1, 2)  # one short passage across the page break


def test_too_many_files_in_one_upload_are_refused_after_the_limit(tmp_path):
    assistant = tiny_assistant(tmp_path, max_upload_files=2)
    uploads = Uploads(assistant)
    files = {f"n{i}.txt": f"Note number {i} about herons.".encode() for i in range(3)}
    outcomes = uploads.add(_files(tmp_path / "incoming", files))
    assert uploads.wait(60)
    assert [o.status for o in outcomes] == ["indexed", "indexed", "rejected"]
    assert "limit of 2 files per upload" in outcomes[2].reason
    # A later upload, after the worker has finished, starts a new one.
    later = uploads.add(_files(tmp_path / "later", {"n9.txt": b"Note nine about egrets."}))
    assert uploads.wait(60) and later[0].status == "indexed" and not uploads.job.running


@pytest.mark.parametrize("vector_store", ["faiss", "milvus"])
def test_removing_an_upload_leaves_nothing_behind_and_the_corpus_is_not_removable(
        tmp_path, vector_store):
    if vector_store == "milvus":
        pytest.importorskip("pymilvus", reason="the milvus extra is not installed")
    assistant = tiny_assistant(tmp_path, vector_store=vector_store)
    panel = DocumentsPanel(assistant, lambda: assistant.store)
    memo = docx_bytes([("p", "The Heron project is led by Ada Quill.")])
    panel.uploads.add(_files(tmp_path / "incoming", {"memo.docx": memo}))
    assert panel.uploads.wait(60)
    store = assistant.store
    doc_id = next(d for d, doc in store.documents.items() if doc.source.endswith("memo.docx"))
    chunk_ids = [c for c, r in store.chunks.items() if r.chunk.doc_id == doc_id]
    assert chunk_ids and set(store.vectors.vectors_of(chunk_ids)) == set(chunk_ids)
    seed = next(d for d, doc in store.documents.items() if not panel.uploads.is_upload(doc))
    assert "only uploaded documents" in panel.remove(seed, "en")

    assert "Removed memo.docx" in panel.remove(doc_id, "en")
    store = assistant.store
    assert doc_id not in store.documents
    assert not [c for c in store.chunks if c in chunk_ids]
    assert store.vectors.vectors_of(chunk_ids) == {}
    assert not set(chunk_ids) & set(store.keywords.chunk_ids)
    assert not (assistant.config.upload_folder / "memo.docx").exists()
    assert all("memo.docx" not in p.source for p in assistant.retrieve("Who leads Heron?", 5))
    assert "已删除" not in panel.remove(doc_id, "zh")  # gone already: says why not


def test_the_panel_lists_pages_passages_and_progress(tmp_path):
    assistant = tiny_assistant(tmp_path)
    panel = DocumentsPanel(assistant, lambda: assistant.store)
    pdf = multipage_pdf(["Page one.", "Page two says the heron nests in May."])
    panel.uploads.add(_files(tmp_path / "incoming", {"herons.pdf": pdf,
                                                    "bad.pdf": b"not a pdf"}))
    assert panel.uploads.wait(60)
    progress = panel.progress("en")
    assert "herons.pdf: indexed" in progress and "bad.pdf: not added" in progress
    rows = panel.rows("zh").value
    row = next(r for r in rows["data"] if r[1].endswith("herons.pdf"))
    assert row[4] == 2 and row[5] >= 1 and row[6]  # pages, passages, added
    assert rows["headers"][4] == "页数"
    labels = [label for label, _ in panel.removable()["choices"]]
    assert len(labels) == 1 and "herons.pdf" in labels[0]  # uploads only, not the corpus


def test_questions_are_answered_while_an_upload_is_being_embedded(tmp_path):
    """The upload holds the assistant's lock while it embeds; a question must not wait."""
    import threading

    from fakes import FakeEmbedder

    assistant = tiny_assistant(tmp_path)
    assistant.retrieve("What is DPO?")  # the retriever exists, as on a warmed-up page
    embedding, release = threading.Event(), threading.Event()

    class GatedEmbedder(FakeEmbedder):
        def embed_passages(self, texts):
            if any("Herons" in t for t in texts):  # the second file: after a swap
                embedding.set()
                assert release.wait(30)
            return super().embed_passages(texts)

    assistant._embedder = GatedEmbedder()
    uploads = Uploads(assistant)
    uploads.add(_files(tmp_path / "incoming", {
        "a.txt": b"Egrets nest in colonies near water.",
        "b.txt": b"Herons hunt fish in shallow water."}))
    try:
        assert embedding.wait(30)
        answered: list[object] = []
        question = threading.Thread(
            target=lambda: answered.append(assistant.retrieve("直接偏好优化是什么?", 2)))
        question.start()
        question.join(10)
        assert answered and answered[0], "the question waited for the upload"
    finally:
        release.set()
    assert uploads.wait(60)
    assert [f.status for f in uploads.job.files] == ["indexed", "indexed"]


def test_removal_is_off_where_uploads_are(tmp_path):
    assistant = tiny_assistant(tmp_path, ui_host="0.0.0.0")
    panel = DocumentsPanel(assistant, lambda: assistant.store)
    doc_id = next(iter(assistant.store.documents))
    assert "Uploads are off" in panel.remove(doc_id, "en")
    assert doc_id in assistant.store.documents
