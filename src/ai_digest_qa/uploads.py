"""Documents users add from the web page: checked, saved under ``uploads_dir``, indexed
in the background one file at a time, and removable.

A file is checked before it is kept: its size (``max_file_mb``), the number of files in
one upload (``max_upload_files``), and its content against its extension (a PDF starts
with ``%PDF-``, a Word file is a zip holding ``word/document.xml``, text is UTF-8 without
NUL bytes or an executable's header). Its name is reduced to a plain file name (no
folders, no leading dots, no control characters, at most 200 bytes), and a name already
taken by another file gets a number; the same content uploaded twice, under any name, is
kept once. A rejected file gets
its reason, and the other files of the upload are still indexed.

Indexing reuses :meth:`Assistant.update_index` on the uploads folder, so uploads get the
same incremental, checksummed index as the corpus (FAISS or Milvus). An update works on
its own copy of the index and swaps it in when saved, so questions asked meanwhile are
answered from the index as it stands.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .checksums import file_sha256
from .corpus import SUPPORTED_SUFFIXES

if TYPE_CHECKING:
    from .assistant import Assistant
    from .records import Document

log = logging.getLogger(__name__)

# What the page accepts (".markdown" and ".htm" too, as the corpus does).
UPLOAD_SUFFIXES = SUPPORTED_SUFFIXES
_TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".jsonl")
# Headers of executables and archives that no text file starts with.
_BINARY_HEADERS = (b"\x7fELF", b"MZ", b"PK\x03\x04", b"%PDF-", b"\xcf\xfa\xed\xfe")
# In UTF-8 bytes: file systems limit names to 255 bytes, and a CJK character takes 3.
_NAME_LIMIT = 200


@dataclass
class FileOutcome:
    """What became of one uploaded file."""

    name: str  # as the user's browser named it
    saved_as: str = ""  # the file name kept under uploads_dir
    status: str = "queued"  # queued -> indexing -> indexed, or rejected / skipped
    reason: str = ""
    passages: int = 0


@dataclass
class UploadJob:
    """The files of the uploads in progress, and the passages of the one being embedded."""

    files: list[FileOutcome] = field(default_factory=list)
    embedded: int = 0
    to_embed: int = 0

    @property
    def finished(self) -> int:
        return sum(f.status in ("indexed", "skipped", "rejected") for f in self.files)

    @property
    def running(self) -> bool:
        return any(f.status in ("queued", "indexing") for f in self.files)


def content_problem(path: Path, suffix: str) -> str | None:
    """Why the file's bytes are not the kind its extension says (None: they are)."""
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if suffix == ".pdf":
        return None if head.startswith(b"%PDF-") else "its content is not a PDF"
    if suffix == ".docx":
        try:
            with zipfile.ZipFile(path) as archive:
                if "word/document.xml" in archive.namelist():
                    return None
        except (zipfile.BadZipFile, OSError):
            pass
        return ("its content is not a Word (.docx) document (a password-protected or old "
                ".doc file cannot be read)")
    if suffix in _TEXT_SUFFIXES:
        if b"\0" in head or head.startswith(_BINARY_HEADERS):
            return f"its content is binary, not {suffix} text"
        try:
            path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            return "it is not UTF-8 text; save it as UTF-8 and upload it again"
        return None
    return f"{suffix or 'no extension'} is not a supported type"


def safe_name(name: str) -> str:
    """A plain file name for ``name``: its last path part, without control characters,
    leading dots or characters other than letters, digits, CJK, space and ``._-()``."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = re.sub(r"[^\w .()\-]", "_", base).strip().lstrip(".")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    room = _NAME_LIMIT - len(suffix.encode()) - 1
    stem = stem.encode()[:room].decode("utf-8", "ignore").strip() or "upload"
    return f"{stem}.{suffix.lower()}" if suffix else stem


def place(source: Path, name: str, folder: Path) -> tuple[Path | None, str]:
    """Where ``source`` (uploaded as ``name``) is kept in ``folder``: (path, "") for a new
    file, (None, reason) when the same content is there already, under any name."""
    folder.mkdir(parents=True, exist_ok=True)
    size, digest = source.stat().st_size, file_sha256(source)
    for kept in sorted(folder.iterdir()):
        if kept.is_file() and kept.stat().st_size == size and file_sha256(kept) == digest:
            return None, f"already uploaded as {kept.name}"
    plain = Path(safe_name(name))
    target, number = folder / plain.name, 1
    while target.exists():  # another file by that name: never overwritten
        number += 1
        target = folder / f"{plain.stem}-{number}{plain.suffix}"
    return target, ""


class Uploads:
    """The uploads of one running app: checks, the background indexing, removal."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        config = assistant.config
        self.folder = config.upload_folder
        self.max_bytes = int(config.max_file_mb * 1e6)
        self.max_files = config.max_upload_files
        self.job = UploadJob()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._pending: list[tuple[FileOutcome, Path]] = []

    # -- checking and queueing --

    def add(self, files: list[tuple[str, Path]]) -> list[FileOutcome]:
        """Check ``files`` ((name as uploaded, temporary path) pairs), queue the good ones
        for indexing, and return every file's outcome (rejected ones with their reason)."""
        outcomes = []
        with self._lock:
            if not self.job.running:
                self.job = UploadJob()  # a new upload after the last finished
            for number, (name, path) in enumerate(files):
                outcome = FileOutcome(name)
                reason = self._problem(name, path, number)
                if reason:
                    outcome.status, outcome.reason = "rejected", reason
                else:
                    self._pending.append((outcome, path))
                self.job.files.append(outcome)
                outcomes.append(outcome)
            if self._pending and self._worker is None:
                self._worker = threading.Thread(target=self._index_all, name="uploads",
                                                daemon=True)
                self._worker.start()
        return outcomes

    def _problem(self, name: str, path: Path, number: int) -> str | None:
        if number >= self.max_files:
            return f"over the limit of {self.max_files} files per upload (max_upload_files)"
        suffix = Path(safe_name(name)).suffix.lower()
        if suffix not in UPLOAD_SUFFIXES:
            return (f"{suffix or 'a file without an extension'} is not supported; use "
                    f"{', '.join(UPLOAD_SUFFIXES)}")
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                return (f"{size / 1e6:.1f} MB is over the {self.max_bytes / 1e6:g} MB limit "
                        "(max_file_mb)")
            if size == 0:
                return "the file is empty"
            return content_problem(path, suffix)
        except OSError as exc:
            return f"cannot read the upload ({exc.strerror or exc})"

    # -- indexing, one file at a time --

    def _index_all(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    # Under the lock: a file added from now on starts a new worker.
                    self._worker = None
                    return
                outcome, path = self._pending.pop(0)
            self._index_one(outcome, path)

    def _index_one(self, outcome: FileOutcome, path: Path) -> None:
        outcome.status = "indexing"
        self.job.embedded = self.job.to_embed = 0
        target: Path | None = None
        try:
            target, duplicate = place(path, outcome.name, self.folder)
            if target is None:
                outcome.status, outcome.reason = "skipped", duplicate
                return
            shutil.copyfile(path, target)
            outcome.saved_as = target.name
            report = self.assistant.update_index([self.folder], progress=self._progress)
        except Exception as exc:  # noqa: BLE001 - shown on the page, logged in full
            log.exception("indexing the upload %s failed", outcome.name)
            if target is not None:  # not indexed, so not kept for a later scan either
                target.unlink(missing_ok=True)
            outcome.status, outcome.reason = "skipped", str(exc) or type(exc).__name__
            return
        problems = [why for where, why in report.skipped if Path(where) == target]
        if problems:
            # Not indexable (corrupt, encrypted, no text layer): not kept either.
            target.unlink(missing_ok=True)
            outcome.status, outcome.reason = "skipped", problems[0]
            return
        outcome.status = "indexed"
        outcome.passages = sum(1 for r in self.assistant.store.chunks.values()
                               if Path(self.assistant.store.documents[r.chunk.doc_id].source)
                               == target)

    def _progress(self, done: int, total: int) -> None:
        self.job.embedded, self.job.to_embed = done, total

    def wait(self, timeout: float | None = None) -> bool:
        """Until the queued files are indexed (for the CLI and tests); False on timeout."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True

    # -- what is there, and removal --

    def is_upload(self, document: Document) -> bool:
        return Path(document.source).parent == self.folder

    def remove(self, doc_id: str) -> str:
        """Remove uploaded document ``doc_id``: its file, and its passages from the index
        (a ``.jsonl`` upload goes as a whole, all its records). Returns the removed file's
        name; raises ValueError for anything not uploaded."""
        document = self.assistant.store.documents.get(doc_id)
        if document is None:
            raise ValueError("that document is no longer in the index")
        if not self.is_upload(document):
            raise ValueError("only uploaded documents can be removed from the page")
        if self.job.running:
            raise ValueError("uploads are being indexed; remove it when they are done")
        path = Path(document.source)
        path.unlink(missing_ok=True)
        Path(f"{path}.meta.json").unlink(missing_ok=True)
        self.assistant.update_index([self.folder])
        return path.name
