"""Documents and how they are read from disk: text encodings, formats, sidecar metadata.

Supported files: ``.txt``, ``.md``, ``.html``/``.htm``, ``.pdf``, ``.docx`` (Word) and
``.jsonl`` (one record per line, like ``corpus/papers/papers.jsonl``). A file
``NAME.meta.json`` next to ``NAME.EXT`` supplies metadata (``title``, ``title_en``, ``url``,
``language``, ``kind``). Text files may be UTF-8 (with or without BOM), UTF-16 with BOM,
or GBK/GB18030.

A PDF's text is its pages' text (pypdf) joined by blank lines, and
``Document.metadata["page_starts"]`` records where each page starts in it (see
:meth:`Document.page_of`); its bookmarks, when it has any, become sections. A Word file's
text is its paragraphs and tables in document order (python-docx): ``Title`` and
``Heading 1``..``Heading 9`` paragraphs become sections, and each table row becomes one
line of cells joined by `` | ``. Neither is passed through :func:`clean_text` (the rules for
web scrapes), so the recorded offsets are offsets into the final text.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from .cleaning import clean_text, plain_tex
from .records import Document, Section
from .textutils import detect_language

if TYPE_CHECKING:
    from docx.table import Table
    from pypdf import PdfReader

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl")
META_SUFFIX = ".meta.json"


class DocumentError(ValueError):
    """A file could not be read as a document; the message says why."""


# --- encodings -----------------------------------------------------------------------

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def decode_text(data: bytes, name: str = "file") -> str:
    """Decode bytes of a text file: BOM, then UTF-8, then GB18030 (a superset of GBK)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding)
    if b"\x00" in data[:8192]:
        raise DocumentError(f"{name}: looks binary (NUL bytes), not text; skipped.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        pass
    raise DocumentError(
        f"{name}: not valid UTF-8 or GBK/GB18030 text; re-save it as UTF-8 and index again."
    )


# --- formats -------------------------------------------------------------------------

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)
_NUMBERED_HEADING = re.compile(
    r"^(?:\d+(?:\.\d+)*[.、]?\s*|[一二三四五六七八九十]+、\s*|第[一二三四五六七八九十\d]+[章节部分]\s*)\S"
)
_SENTENCE_END = tuple("。！？!?.:：,，;；、")
_CAPTION = re.compile(r"^(?:图|表|Figure|Fig\.|Table)\s*\d*\s*[:：.]", re.I)
# Lines that look short and bare but are provenance notes or code, not headings.
_NOT_HEADING = re.compile(
    r"^(?:(?:文章)?(?:转载)?来源|原文(?:来源|链接)?|作者|编辑|责编|出品)\s*[:：]|^(?:import|from|def|class)\s|[=]"
)
_WORDISH = re.compile(r"[A-Za-z\u3400-\u4dbf\u4e00-\u9fff]")


def _text_headings(text: str) -> list[Section]:
    """Headings of a plain-text scrape: short lines without sentence punctuation.

    A numbered line (``1.1 大模型的定义``, ``二、时间序列``) of up to 120 characters
    counts (paper titles are long); an unnumbered one when it is at most 30 characters
    and set off by blank lines. Indented lines are list
    items and figure captions are not headings.
    """
    sections: list[Section] = []
    lines = text.split("\n")
    offset = 0
    for index, line in enumerate(lines):
        stripped = line.strip()
        start = offset + (len(line) - len(line.lstrip()))
        offset += len(line) + 1
        # Two or more leading spaces mark a list item; one is a scraping artefact.
        if not stripped or line[:2].isspace() or stripped.endswith(_SENTENCE_END):
            continue
        if _CAPTION.match(stripped) or _NOT_HEADING.search(stripped) or len(stripped) > 120:
            continue
        if len(_WORDISH.findall(stripped)) < 2:
            continue
        blank_before = index == 0 or not lines[index - 1].strip()
        blank_after = index + 1 >= len(lines) or not lines[index + 1].strip()
        numbered = bool(_NUMBERED_HEADING.match(stripped))
        set_off = blank_before and blank_after and len(stripped) <= 30
        if numbered or set_off:
            sections.append(Section(start, stripped))
    return sections


def _markdown_headings(text: str) -> list[Section]:
    return [Section(m.start(), m.group(2).strip()) for m in _MD_HEADING.finditer(text)]


def _html_to_text(html: str) -> tuple[str, list[Section], str | None]:
    """Visible text of an HTML page, with its headings as sections and its <title>."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "nav", "footer", "iframe", "svg"]):
        tag.decompose()
    title_tag = soup.find("title")
    page_title = title_tag.get_text(" ", strip=True) if title_tag else None
    parts: list[str] = []
    sections: list[Section] = []
    length = 0
    body = soup.body or soup
    for element in body.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre",
                                  "blockquote", "td", "th", "dt", "dd"]):
        if element.find_parent(["p", "li", "pre", "blockquote", "td", "th", "dd", "dt"]):
            continue  # already part of an enclosing block
        text = element.get_text(" " if element.name != "pre" else "", strip=element.name != "pre")
        text = re.sub(r"[ \t\u00a0]+", " ", text).strip() if element.name != "pre" else text
        if not text:
            continue
        if element.name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            sections.append(Section(length, text))
        parts.append(text)
        length += len(text) + 2
    if not parts:  # pages without block markup: fall back to all text
        text = body.get_text("\n", strip=True)
        return text, [], page_title
    return "\n\n".join(parts), sections, page_title


def _pdf_to_text(path: Path) -> tuple[str, list[Section], list[int]]:
    """The PDF's text, its bookmarks as sections, and where each page starts in the text.

    ``page_starts[n - 1]`` is the offset of page ``n``; an empty page (a figure, a blank
    page) starts where the next page's text does, so every offset maps to the page it was
    printed on (:meth:`Document.page_of`).
    """
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise DocumentError(f"{path}: the PDF is encrypted; decrypt it and index again.")
        # A glyph without a Unicode mapping comes out as NUL: drop it, not the page.
        pages = [(page.extract_text() or "").replace("\x00", "") for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        if isinstance(exc, DocumentError):
            raise
        raise DocumentError(f"{path}: cannot read the PDF ({exc}).") from None
    text_parts: list[str] = []
    page_starts: list[int] = []
    length = 0
    for page in pages:
        page = page.strip()
        page_starts.append(length)
        if not page:
            continue
        text_parts.append(page)
        length += len(page) + 2
    text = "\n\n".join(text_parts)
    page_starts = [min(start, len(text)) for start in page_starts]
    return text, _pdf_outline_sections(reader, text, page_starts), page_starts


def _pdf_outline_sections(reader: PdfReader, text: str, page_starts: list[int]
                          ) -> list[Section]:
    """The PDF's bookmarks as sections: each at its title on its page, or at the page's
    start when the title is not found there. A broken outline gives no sections."""
    found: dict[int, Section] = {}

    def walk(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            page = reader.get_destination_page_number(item)
            if not title or page is None or not 0 <= page < len(page_starts):
                continue
            start = page_starts[page]
            end = page_starts[page + 1] if page + 1 < len(page_starts) else len(text)
            at = text.find(title, start, end)
            offset = at if at >= 0 else start
            found.setdefault(offset, Section(offset, title))

    try:
        walk(list(reader.outline))
    except Exception:  # noqa: BLE001 - bookmarks are optional; the text is what matters
        return []
    return [found[offset] for offset in sorted(found) if offset < len(text)]


# An encrypted (password-protected) OOXML file is an OLE compound file, not a zip; so is a
# legacy binary .doc renamed to .docx.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_DOCX_HEADING = re.compile(r"^(?:title|heading [1-9])$", re.I)
# A zip bomb renamed .docx is refused before it is unpacked (a 10 MB .docx of text unpacks
# to well under this).
_DOCX_MAX_UNPACKED = 100_000_000  # lxml needs several times this in memory


def _docx_to_text(path: Path) -> tuple[str, list[Section], str | None]:
    """A Word file's paragraphs and tables in document order, its headings as sections,
    and its title (the document property, else its first ``Title`` paragraph)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head == _OLE_MAGIC:
        raise DocumentError(
            f"{path}: an encrypted (password-protected) Word file, or an old binary .doc "
            "renamed .docx; save it as a .docx without a password and index again.")
    if not head.startswith(b"PK"):
        raise DocumentError(f"{path}: not a Word .docx file (it is not a zip package); "
                            "skipped.")
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        with zipfile.ZipFile(path) as package:
            unpacked = sum(item.file_size for item in package.infolist())
        if unpacked > _DOCX_MAX_UNPACKED:
            raise DocumentError(f"{path}: unpacks to {unpacked / 1e6:.0f} MB, over the "
                                f"{_DOCX_MAX_UNPACKED / 1e6:.0f} MB a Word file may hold; "
                                "skipped.")
        document = docx.Document(str(path))
        parts: list[str] = []
        sections: list[Section] = []
        title = (document.core_properties.title or "").strip() or None
        length = 0
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                text = _docx_table_text(block)
                heading = False
            else:
                text = "\n".join(line.rstrip() for line in block.text.splitlines()).strip()
                style = block.style.name if block.style is not None else ""
                heading = bool(style and _DOCX_HEADING.match(style))
                if heading and title is None and style.lower() == "title":
                    title = " ".join(text.split()) or None
            if not text:
                continue
            if heading:
                sections.append(Section(length, " ".join(text.split())))
            parts.append(text)
            length += len(text) + 2
    except DocumentError:
        raise
    except (PackageNotFoundError, zipfile.BadZipFile, EOFError):
        raise DocumentError(f"{path}: cannot read the Word file (a damaged or truncated "
                            "zip package); skipped.") from None
    except Exception as exc:  # noqa: BLE001 - python-docx fails on bad input in many ways
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise DocumentError(f"{path}: cannot read the Word file ({reason}).") from None
    return "\n\n".join(parts), sections, title


def _docx_table_text(table: Table) -> str:
    """One line per row, cells joined by `` | ``; a merged cell counts once, and a cell's
    own line breaks become spaces so that a row stays one line."""
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if previous is not None and cell._tc is previous:  # a horizontally merged cell
                continue
            previous = cell._tc
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _read_meta(path: Path) -> dict[str, Any]:
    meta_path = path.with_name(path.stem + META_SUFFIX)
    if not meta_path.is_file():
        return {}
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DocumentError(f"{meta_path}: invalid metadata JSON ({exc}).") from None
    if not isinstance(meta, dict):
        raise DocumentError(f"{meta_path}: metadata must be a JSON object.")
    return meta


def _first_line_title(text: str, fallback: str) -> str:
    for line in text.split("\n"):
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:120] if len(line) <= 120 else fallback
    return fallback


def _sections_after_clean(text: str, suffix: str) -> list[Section]:
    return _markdown_headings(text) if suffix in (".md", ".markdown") else _text_headings(text)


def load_file(path: Path, doc_id: str, max_bytes: int | None = None) -> list[Document]:
    """Read one supported file into documents (a ``.jsonl`` file yields one per record).

    A file over ``max_bytes`` is refused before it is read.
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"{path}: unsupported file type {suffix!r}.")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise DocumentError(f"{path}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:g} MB "
                            "limit (max_file_mb); split the file or raise the limit")
    if suffix == ".jsonl":
        return list(_load_jsonl(path, doc_id))
    meta = _read_meta(path)
    page_title = None
    page_starts: list[int] | None = None
    if suffix == ".pdf":
        text, sections, page_starts = _pdf_to_text(path)
    elif suffix == ".docx":
        text, sections, page_title = _docx_to_text(path)
    else:
        raw = decode_text(path.read_bytes(), str(path))
        if suffix in (".html", ".htm"):
            raw, _, page_title = _html_to_text(raw)
        text = clean_text(raw).text
        sections = _sections_after_clean(text, suffix)
    if not text.strip() and suffix == ".pdf":
        raise DocumentError(f"{path}: no text layer (a scanned PDF?); OCR is not enabled, "
                            "so it was skipped.")
    if not text.strip():
        raise DocumentError(f"{path}: no text content; skipped.")
    title = str(meta.get("title") or page_title or _first_line_title(text, path.stem))
    language = str(meta.get("language") or detect_language(text))
    extra = {k: v for k, v in meta.items() if k not in ("title", "url", "language", "kind")}
    if page_starts is not None:
        extra["page_starts"] = page_starts
    return [
        Document(
            doc_id=doc_id, text=text, title=title, source=str(path),
            url=meta.get("url"), language=language, kind=str(meta.get("kind") or "document"),
            sections=tuple(sections), metadata=extra,
        )
    ]


def _record_text(record: dict[str, Any]) -> tuple[str, list[Section]]:
    """Text of a paper-like record: title, bibliographic line, then the abstract."""
    title = str(record.get("title") or "").strip()
    lines = [title] if title else []
    bib = []
    if record.get("authors"):
        bib.append(f"Authors: {record['authors']}")
    if record.get("year"):
        bib.append(f"Year: {record['year']}")
    if record.get("venue"):
        bib.append(f"Venue: {record['venue']}")
    if record.get("arxiv_id"):
        bib.append(f"arXiv: {record['arxiv_id']}")
    if bib:
        lines.append(". ".join(bib) + ".")
    body = str(record.get("abstract") or record.get("text") or record.get("content") or "").strip()
    body = plain_tex(body)  # arXiv abstracts write "4.3$\times$", "\textbf{63.2}"
    # One section for the whole record: a chunk of title and authors alone would answer
    # nothing, so the header stays with the start of the abstract.
    sections = [Section(0, "Abstract" if record.get("abstract") else "Record")]
    if body:  # a single line break: one paragraph, so the chunker fills chunks by sentence
        lines.append(body)
    return "\n".join(lines).strip() + "\n", sections


def _load_jsonl(path: Path, doc_id: str) -> Iterator[Document]:
    raw = decode_text(path.read_bytes(), str(path))
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"{path}:{number}: invalid JSON ({exc.msg}).") from None
        if not isinstance(record, dict):
            raise DocumentError(f"{path}:{number}: each line must be a JSON object.")
        text, sections = _record_text(record)
        if not text.strip():
            raise DocumentError(f"{path}:{number}: record has no title or text.")
        key = str(record.get("key") or record.get("id") or record.get("arxiv_id") or number)
        url = record.get("url") or (
            f"https://arxiv.org/abs/{record['arxiv_id']}" if record.get("arxiv_id") else None
        )
        metadata = {k: record[k] for k in ("key", "authors", "year", "venue", "arxiv_id",
                                            "mentioned_in") if record.get(k) is not None}
        yield Document(
            doc_id=f"{doc_id}#{key}", text=text, title=str(record.get("title") or key),
            source=str(path), url=url,
            language=str(record.get("language") or detect_language(text)),
            kind=str(record.get("kind") or ("paper" if record.get("abstract") is not None
                                            or record.get("arxiv_id") else "record")),
            sections=tuple(sections), metadata=metadata,
        )


# --- discovery -----------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    """A file found under a registered source, with the fingerprint used to skip rereads."""

    path: Path
    doc_id: str
    size: int
    mtime_ns: int

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        meta = self.path.with_name(self.path.stem + META_SUFFIX)
        if meta.is_file():
            digest.update(meta.read_bytes())
        return digest.hexdigest()


def _doc_id_for(path: Path, root: Path, base: Path) -> str:
    """Readable, stable id: the path relative to the project for corpus files, else absolute."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def discover(
    sources: list[Path], base: Path, problems: list[tuple[str, str]] | None = None
) -> list[SourceFile]:
    """Supported files under ``sources`` (files or folders), sorted, without duplicates.

    Hidden files and folders are skipped, symlink loops are not followed twice, and
    anything that cannot be read is reported in ``problems`` as ``(path, reason)``.
    """
    problems = problems if problems is not None else []
    found: dict[Path, SourceFile] = {}
    for source in sources:
        if not source.exists():
            problems.append((str(source), "does not exist"))
            continue
        candidates: list[Path] = []
        root = source if source.is_dir() else source.parent
        if source.is_file():
            candidates.append(source)
        else:
            seen_dirs: set[tuple[int, int]] = set()
            def walk_error(error: OSError) -> None:
                problems.append((str(error.filename), error.strerror or str(error)))

            for dirpath, dirnames, filenames in os.walk(source, followlinks=True,
                                                        onerror=walk_error):
                stat = os.stat(dirpath)
                if (stat.st_dev, stat.st_ino) in seen_dirs:
                    problems.append((dirpath, "symlink loop; not followed again"))
                    dirnames[:] = []
                    continue
                seen_dirs.add((stat.st_dev, stat.st_ino))
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                candidates.extend(
                    Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
        for path in candidates:
            if path.name.endswith(META_SUFFIX) or path.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            resolved = path.resolve()
            try:
                stat = resolved.stat()
            except OSError as exc:
                problems.append((str(path), exc.strerror or str(exc)))
                continue
            if not S_ISREG(stat.st_mode):  # a FIFO named .txt would block the reader forever
                problems.append((str(path), "not a regular file"))
                continue
            if not os.access(resolved, os.R_OK):
                problems.append((str(path), "not readable (permission denied)"))
                continue
            doc_id = _doc_id_for(path.absolute(), root, base)
            found.setdefault(resolved, SourceFile(resolved, doc_id, stat.st_size, stat.st_mtime_ns))
    return sorted(found.values(), key=lambda f: f.doc_id)
