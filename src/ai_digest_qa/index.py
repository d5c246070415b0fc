"""The persisted index: documents, chunks, vectors (FAISS or Milvus) and a Chinese-aware
keyword index.

One object, :class:`IndexStore`, owns build, incremental update, search, save and load
(as txtai's ``Embeddings`` does). On disk, ``index/`` holds generations::

    index/CURRENT              name of the live generation (replaced atomically)
    index/gen-<time>-<pid>/    manifest.json, documents.jsonl, chunks.jsonl,
                               vectors/ (FAISS + id map, or milvus.json naming the
                               collection), keyword/ (bm25s, npy + JSON)
    index/.milvus-collections  every Milvus collection this index created, so that
                               unused ones (old builds, killed builds) are dropped

A build writes a new generation folder and then swaps ``CURRENT``; a crash mid-build
leaves the previous generation live. The manifest records a sha256 of every other file
of its generation, verified on load (integrity.py; a large index's vectors and keyword
arrays just after). Nothing is unpickled on load: JSON, ``.npy``
loaded with ``allow_pickle=False`` and FAISS's own format only.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .chunking import Chunker
from .cleaning import CLEANER_VERSION
from .config import MilvusSettings
from .corpus import DocumentError, SourceFile, discover, load_file
from .embeddings import Embedder
from .integrity import BackgroundCheck, checksums, split, verify
from .records import Chunk, Document
from .textutils import (
    KEYWORD_TOKENIZER_DATA,
    KEYWORD_TOKENIZER_VERSION,
    detect_language,
    keyword_tokens,
)
from .vectorstores import (
    ChunkVectors,
    FaissVectors,
    MilvusMissingError,
    MilvusVectors,
    VectorStoreUnavailable,
    drop_collections,
    open_vectors,
)

FORMAT_VERSION = 1
log = logging.getLogger(__name__)

CURRENT_FILE = "CURRENT"
LOCK_FILE = ".lock"
COLLECTIONS_LEDGER = ".milvus-collections"
# Names the Milvus collection an interrupted `migrate --to milvus` was filling.
MIGRATION_MARKER = ".migration.json"


@dataclass
class _Scan:
    """What a scan of the sources found: each file's entry, the documents to (re)embed,
    those kept as they are, and every path seen."""

    files: dict[str, FileEntry] = field(default_factory=dict)
    new_docs: dict[str, Document] = field(default_factory=dict)
    kept_doc_ids: set[str] = field(default_factory=set)
    seen_paths: set[str] = field(default_factory=set)

    def keep(self, key: str, entry: FileEntry) -> None:
        self.files[key] = entry
        self.kept_doc_ids.update(entry.doc_ids)


def _under_a_source(path: Path, sources: list[Path]) -> bool:
    """Whether ``path`` is one of ``sources`` or lies under one of them."""
    resolved = path.resolve()
    return any(resolved.is_relative_to(source.resolve()) for source in sources)


class IndexCorruptError(RuntimeError):
    """The index on disk is missing, damaged or inconsistent; the message says what to do."""


# --- keyword index -------------------------------------------------------------------


class KeywordIndex:
    """BM25 over jieba tokens, so Chinese questions score (bm25s underneath).

    Why not llama-index's ``BM25Retriever``: it tokenizes with the regex ``\\w\\w+``,
    which makes a whole Chinese clause one token (every Chinese query then scores 0.0),
    and it has no tokenizer hook. We feed bm25s, the library it wraps, jieba tokens.
    """

    def __init__(self, chunk_ids: list[str], token_lists: list[list[str]]) -> None:
        import bm25s

        self.chunk_ids = list(chunk_ids)
        self._bm25 = bm25s.BM25()
        if self.chunk_ids:
            self._bm25.index(token_lists, show_progress=False)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Up to ``k`` ``(chunk_id, score)`` pairs; chunks sharing no term are dropped."""
        if not self.chunk_ids:
            return []
        vocab = self._bm25.vocab_dict
        tokens = [t for t in keyword_tokens(query) if t in vocab]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        k = min(k, len(self.chunk_ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.chunk_ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def document_frequency(self, tokens: Sequence[str], among: np.ndarray | None = None
                           ) -> dict[str, int]:
        """How many chunks (those where the boolean mask ``among``, aligned with
        ``chunk_ids``, is set) contain each token; 0 for tokens never seen."""
        if not self.chunk_ids:
            return {t: 0 for t in tokens}
        vocab = self._bm25.vocab_dict
        # bm25s keeps scores as a CSC matrix, one column per vocabulary entry: a column's
        # rows are the chunks containing the token.
        indptr, rows = self._bm25.scores["indptr"], self._bm25.scores["indices"]
        counts = {}
        for token in tokens:
            if token not in vocab:
                counts[token] = 0
                continue
            column = rows[indptr[vocab[token]]:indptr[vocab[token] + 1]]
            counts[token] = len(column) if among is None else int(among[column].sum())
        return counts

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "chunk_ids.json").write_text(json.dumps(self.chunk_ids), encoding="utf-8")
        if self.chunk_ids:
            self._bm25.save(str(folder), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex:
        import bm25s

        instance = cls.__new__(cls)
        instance.chunk_ids = json.loads((folder / "chunk_ids.json").read_text(encoding="utf-8"))
        if instance.chunk_ids:
            instance._bm25 = bm25s.BM25.load(str(folder), allow_pickle=False)
        else:
            instance._bm25 = bm25s.BM25()
        return instance


# --- manifest ------------------------------------------------------------------------


@dataclass
class FileEntry:
    size: int
    mtime_ns: int
    sha256: str
    doc_ids: list[str]


@dataclass
class Manifest:
    """What an index was built from and with; a mismatch in settings forces a rebuild."""

    embedder: str
    dimension: int
    chunking: dict[str, int]
    cleaner_version: int = CLEANER_VERSION
    format_version: int = FORMAT_VERSION
    keyword_version: int = KEYWORD_TOKENIZER_VERSION
    keyword_data: str = KEYWORD_TOKENIZER_DATA  # hash of the stoplist the tokens were cut with
    sources: list[str] = field(default_factory=list)
    files: dict[str, FileEntry] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)  # doc_id -> content hash
    built_at: float = 0.0
    # sha256 of every other file of the generation (path relative to it), checked on load:
    # damage inside a file with an intact header (a vector block overwritten) would
    # otherwise be searched as if it were data.
    checksums: dict[str, str] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        return {"embedder": self.embedder, "dimension": self.dimension,
                "chunking": self.chunking, "cleaner_version": self.cleaner_version,
                "format_version": self.format_version}

    def incompatibility(self, embedder: str, chunking: dict[str, int]) -> str | None:
        """Why this index cannot serve the given settings, or None when it can."""
        if self.format_version != FORMAT_VERSION:
            return f"index format {self.format_version} != {FORMAT_VERSION}"
        if self.embedder != embedder:
            return f"embedder changed ({self.embedder} -> {embedder})"
        if self.chunking != chunking:
            return f"chunking settings changed ({self.chunking} -> {chunking})"
        if self.cleaner_version != CLEANER_VERSION:
            return f"cleaner changed (v{self.cleaner_version} -> v{CLEANER_VERSION})"
        return None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        files = {path: FileEntry(**entry) for path, entry in data.get("files", {}).items()}
        return cls(
            embedder=data["embedder"], dimension=int(data["dimension"]),
            chunking=dict(data["chunking"]), cleaner_version=int(data["cleaner_version"]),
            format_version=int(data["format_version"]),
            keyword_version=int(data.get("keyword_version", 1)),  # 1: before it was recorded
            keyword_data=str(data.get("keyword_data", "")),  # "": before it was recorded
            sources=list(data.get("sources", [])),
            files=files, documents=dict(data.get("documents", {})),
            built_at=float(data.get("built_at", 0.0)),
            checksums={str(k): str(v) for k, v in data.get("checksums", {}).items()},
        )


@dataclass
class UpdateReport:
    """What an index update did, for the CLI summary and for tests."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    rebuilt_because: str | None = None
    seconds: float = 0.0
    # File sizes/mtimes changed without content changes: worth saving, nothing re-embedded.
    fingerprints_refreshed: bool = False
    vectors_moved: str | None = None  # "faiss -> milvus" when the backend changed
    notices: list[str] = field(default_factory=list)  # things the user should know

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.rebuilt_because)

    def summary(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.updated)} updated",
                 f"{len(self.removed)} removed", f"{self.unchanged} unchanged"]
        text = (f"documents: {', '.join(parts)}; chunks embedded: {self.chunks_embedded}, "
                f"reused: {self.chunks_reused}; {self.seconds:.1f}s")
        if self.rebuilt_because:
            text = f"rebuilt ({self.rebuilt_because}); " + text
        if self.vectors_moved:
            text = f"vectors moved ({self.vectors_moved}, no re-embedding); " + text
        for path, reason in self.skipped:
            text += f"\n  skipped {path}: {reason}"
        for notice in self.notices:
            text += f"\n  note: {notice}"
        return text


# --- the store -----------------------------------------------------------------------


def _embed_text(document: Document, chunk: Chunk) -> str:
    """What the embedder sees: the chunk with its title and section as context."""
    head = [document.title]
    if chunk.section and chunk.section != document.title and chunk.section not in chunk.text[:200]:
        head.append(chunk.section)
    if chunk.text.startswith(document.title):
        head = head[1:]
    return "\n".join([*head, chunk.text]) if head else chunk.text


def _keyword_text(document: Document, chunk: Chunk) -> str:
    extra = document.metadata.get("title_en") or ""
    return "\n".join(x for x in (document.title, extra, chunk.section or "", chunk.text) if x)


@dataclass(frozen=True)
class ChunkRecord:
    """A stored chunk: its span plus the hash of the text that was embedded."""

    chunk: Chunk
    embed_hash: str


def _hash(text: str) -> str:

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write_jsonl(path: Path, rows: Iterator[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)




def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    """Exclusive lock so two processes never build the same index at once."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class IndexStore:
    """Documents, chunks, vectors and keywords of one index, in memory and on disk."""

    def __init__(self, manifest: Manifest, dimension: int,
                 vectors: ChunkVectors | None = None) -> None:
        self.manifest = manifest
        self.documents: dict[str, Document] = {}
        self.chunks: dict[str, ChunkRecord] = {}
        self.vectors: ChunkVectors = (vectors if vectors is not None
                                      else FaissVectors.empty(dimension))
        self.keywords = KeywordIndex([], [])
        self.generation: str | None = None
        # Set when loading re-tokenized an outdated keyword index: save to keep it.
        self.keywords_rebuilt = False
        # Set when loading removed vectors a killed build had added (Milvus).
        self.vectors_reconciled = 0
        # The checks of the loaded files left until after load (none: all were done).
        self.integrity = BackgroundCheck()

    # -- persistence --

    @staticmethod
    def current_generation(index_dir: Path) -> Path | None:
        pointer = index_dir / CURRENT_FILE
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):  # missing or garbage: there is no live index
            return None
        # Only a generation folder of this index, never a path that leads elsewhere.
        if not re.fullmatch(r"gen-[\w.-]+", name):
            return None
        folder = index_dir / name
        return folder if folder.is_dir() else None

    @staticmethod
    def read_manifest(index_dir: Path) -> Manifest | None:
        folder = IndexStore.current_generation(index_dir)
        if folder is None:
            return None
        try:
            return Manifest.from_json(json.loads((folder / "manifest.json").read_text("utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @classmethod
    def load(cls, index_dir: Path, milvus: MilvusSettings | None = None,
             background_bytes: int | None = None) -> IndexStore:
        """Load the live generation; :class:`IndexCorruptError` if it is missing or damaged.

        Above ``background_bytes`` of stored files, the vectors and keyword arrays are
        verified after load instead (``store.integrity``, started by the caller).
        """
        folder = cls.current_generation(index_dir)
        if folder is None:
            raise IndexCorruptError(f"No index in {index_dir}; run `ai-digest-qa index`.")
        try:
            manifest = Manifest.from_json(json.loads((folder / "manifest.json").read_text("utf-8")))
            now, later = split(folder, manifest.checksums, background_bytes)
            verify(folder, now)
            store = cls(manifest, manifest.dimension, open_vectors(folder / "vectors", milvus))
            for row in _read_jsonl(folder / "documents.jsonl"):
                document = Document.from_record(row)
                store.documents[document.doc_id] = document
            for row in _read_jsonl(folder / "chunks.jsonl"):
                chunk = Chunk(row["chunk_id"], row["doc_id"], row["text"], row["start"],
                              row["end"], row["section"], row["ordinal"])
                store.chunks[chunk.chunk_id] = ChunkRecord(chunk, row["embed_hash"])
            store.keywords = KeywordIndex.load(folder / "keyword")
        except (MilvusMissingError, VectorStoreUnavailable):
            raise  # not damage: the user has to install or start something
        except _milvus_error() as exc:  # a server error is not damage: never rebuild for it
            raise VectorStoreUnavailable(f"Milvus failed while loading the index: {exc}") \
                from None
        # SyntaxError: llama-index's FAISS store parses its id map with ast.literal_eval.
        # CollectionMissing (a ValueError): the collection the index names is gone.
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SyntaxError) as exc:
            raise IndexCorruptError(
                f"The index in {folder} is damaged ({type(exc).__name__}: {exc}); "
                "it will be rebuilt (or run `ai-digest-qa index --rebuild`)."
            ) from exc
        store._check_consistency(folder)
        store.generation = folder.name
        store.integrity = BackgroundCheck(folder, later)
        if (manifest.keyword_version != KEYWORD_TOKENIZER_VERSION
                or manifest.keyword_data != KEYWORD_TOKENIZER_DATA):
            # Tokenization (its code or its stoplist) changed: re-tokenize the stored chunks
            # (no re-embedding needed).
            store._rebuild_keywords()
            manifest.keyword_version = KEYWORD_TOKENIZER_VERSION
            manifest.keyword_data = KEYWORD_TOKENIZER_DATA
            store.keywords_rebuilt = True
        return store

    def _check_consistency(self, folder: Path) -> None:
        problems = []
        if set(self.keywords.chunk_ids) != set(self.chunks):
            problems.append("keyword index and chunks differ")
        if set(self.documents) != set(self.manifest.documents):
            problems.append("documents and manifest differ")
        size = self.vectors.size  # a count query for Milvus: asked once, not per check
        if not problems and size != len(self.chunks):
            # Only once the generation itself is sound: remove what a killed build added.
            self.vectors_reconciled = self.vectors.reconcile(set(self.chunks))
            size = self.vectors.size
        if size != len(self.chunks):
            problems.append(f"{size} vectors for {len(self.chunks)} chunks")
        if self.vectors.dimension != self.manifest.dimension:
            problems.append(f"vector dimension {self.vectors.dimension} != manifest "
                            f"{self.manifest.dimension}")
        if problems:
            raise IndexCorruptError(
                f"The index in {folder} is inconsistent: {'; '.join(problems)}.")

    def save(self, index_dir: Path, milvus: MilvusSettings | None = None) -> Path:
        """Write a new generation and make it live atomically; old generations are removed,
        and with them (given ``milvus``) the Milvus collections no kept generation uses."""
        index_dir.mkdir(parents=True, exist_ok=True)
        name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        staging = index_dir / f".staging-{name}"
        staging.mkdir()
        try:
            _write_jsonl(staging / "documents.jsonl",
                         (d.to_record() for d in self.documents.values()))
            _write_jsonl(staging / "chunks.jsonl", (
                {**asdict(r.chunk), "embed_hash": r.embed_hash} for r in self.chunks.values()))
            self.vectors.persist(staging / "vectors")
            self.keywords.save(staging / "keyword")
            self.manifest.built_at = time.time()
            self.manifest.checksums = checksums(staging)
            # The manifest goes last: a generation without one is never made live.
            (staging / "manifest.json").write_text(
                json.dumps(self.manifest.to_json(), ensure_ascii=False, indent=1), "utf-8")
            for path in staging.rglob("*"):
                if path.is_file():
                    with open(path, "rb") as handle:
                        os.fsync(handle.fileno())
            os.rename(staging, index_dir / name)
            # The generation live until now (also after a rebuild, which starts afresh).
            live_before = IndexStore.current_generation(index_dir)
            previous = live_before.name if live_before else None
            pointer_tmp = index_dir / f".{CURRENT_FILE}.{os.getpid()}.tmp"
            pointer_tmp.write_text(name + "\n", encoding="utf-8")
            with open(pointer_tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(pointer_tmp, index_dir / CURRENT_FILE)
            _fsync_dir(index_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.generation = name
        # The new generation is live: what follows is clean-up, and a failure in it must
        # not turn a finished update into an error (the next load reconciles).
        try:
            self.vectors.committed()  # e.g. Milvus deletes that had to wait for this moment
            self._remove_stale(index_dir, {name, previous or name}, milvus)
        except Exception as exc:  # noqa: BLE001 - logged; the index itself is saved
            log.warning("index saved; clean-up of old data failed (%s: %s)",
                        type(exc).__name__, exc)
        return index_dir / name

    @staticmethod
    def _remove_stale(index_dir: Path, keep: set[str],
                      milvus: MilvusSettings | None = None) -> None:
        """Remove old generations and leftovers of killed builds, then the Milvus
        collections this index created that no kept generation (or migration) uses.

        The generation that was live until now is kept one round longer, so a process
        still reading it is not pulled from under; so is its collection.
        """
        for path in index_dir.iterdir():
            if path.name in keep:
                continue
            if path.name.startswith(("gen-", ".staging-", f".{CURRENT_FILE}.")):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        ledger = index_dir / COLLECTIONS_LEDGER
        if milvus is None or not ledger.is_file():
            return
        created = set(ledger.read_text(encoding="utf-8").split())
        in_use = {_collection_named(index_dir / name / "vectors" / MilvusVectors.INFO)
                  for name in keep}
        in_use.add(_collection_named(index_dir / MIGRATION_MARKER))
        unused = created - in_use
        if unused:
            dropped = drop_collections(milvus, sorted(unused))
            if dropped:
                log.info("dropped unused Milvus collections: %s", ", ".join(dropped))
            remaining = created - unused
            ledger.write_text("".join(f"{n}\n" for n in sorted(remaining)), encoding="utf-8")

    # -- building --

    def update(
        self,
        sources: list[Path],
        base: Path,
        embedder: Embedder,
        chunker: Chunker,
        batch_size: int = 16,
        progress: Callable[[int, int], None] | None = None,
        report: UpdateReport | None = None,
        max_file_bytes: int | None = None,
    ) -> UpdateReport:
        """Bring the index in line with the files under ``sources``; only changes are embedded.

        Files larger than ``max_file_bytes`` are skipped with a reason (their indexed
        version, if any, is kept).
        """
        started = time.perf_counter()
        report = report or UpdateReport()
        problems: list[tuple[str, str]] = []
        files = discover(sources, base, problems)
        report.skipped.extend(problems)
        scan = _Scan()
        for source in files:
            self._scan_file(source, scan, max_file_bytes, report)
        self._keep_undiscovered(scan, sources, report)

        gone = set(self.documents) - scan.kept_doc_ids - set(scan.new_docs)
        report.removed.extend(sorted(gone))
        for doc_id in scan.new_docs:
            (report.updated if doc_id in self.documents else report.added).append(doc_id)
        report.unchanged = len(scan.kept_doc_ids & set(self.documents))
        if scan.new_docs or gone:
            self._apply(scan.new_docs, gone | set(scan.new_docs), embedder, chunker,
                        batch_size, progress, report)
        report.fingerprints_refreshed = scan.files != self.manifest.files
        self.manifest.files = scan.files
        self.manifest.documents = {d: doc.content_hash for d, doc in self.documents.items()}
        report.seconds = time.perf_counter() - started
        return report

    def _scan_file(self, source: SourceFile, scan: _Scan, max_file_bytes: int | None,
                   report: UpdateReport) -> None:
        """Record ``source`` in ``scan``: unchanged (by size and time, then by hash),
        unreadable (its indexed version kept), or read, with its changed documents."""
        key = str(source.path)
        scan.seen_paths.add(key)
        old = self.manifest.files.get(key)
        if old and old.size == source.size and old.mtime_ns == source.mtime_ns:
            scan.keep(key, old)
            return
        digest = source.sha256()
        if old and old.sha256 == digest:
            scan.keep(key, FileEntry(source.size, source.mtime_ns, digest, old.doc_ids))
            return
        try:
            documents = load_file(source.path, source.doc_id, max_file_bytes)
        except (DocumentError, OSError, UnicodeError, RuntimeError) as exc:
            reason = str(exc).removeprefix(f"{source.path}: ")
            if old:  # keep what we had rather than lose a document to a bad edit
                reason += " (kept the previously indexed version)"
                scan.keep(key, old)
            report.skipped.append((key, reason))
            return
        scan.files[key] = FileEntry(source.size, source.mtime_ns, digest,
                                    [d.doc_id for d in documents])
        for document in documents:
            if self.manifest.documents.get(document.doc_id) == document.content_hash:
                scan.kept_doc_ids.add(document.doc_id)
            else:
                scan.new_docs[document.doc_id] = document

    def _keep_undiscovered(self, scan: _Scan, sources: list[Path],
                           report: UpdateReport) -> None:
        """Indexed files the scan did not find: present under a source but no longer
        discovered (unreadable now) are kept, and said so; deleted ones, and those of a
        removed source, go."""
        for key in set(self.manifest.files) - scan.seen_paths:
            if not Path(key).exists() or not _under_a_source(Path(key), sources):
                continue
            if not any(p == key for p, _ in report.skipped):
                report.skipped.append((key, "no longer readable; kept the indexed version"))
            scan.keep(key, self.manifest.files[key])

    def _apply(self, new_docs: dict[str, Document], drop: set[str], embedder: Embedder,
               chunker: Chunker, batch_size: int,
               progress: Callable[[int, int], None] | None, report: UpdateReport) -> None:
        reusable: dict[str, str] = {}  # embed hash -> an old chunk id with that vector
        doomed = [cid for cid, rec in self.chunks.items() if rec.chunk.doc_id in drop]
        for chunk_id in doomed:
            reusable.setdefault(self.chunks[chunk_id].embed_hash, chunk_id)

        pending: list[tuple[Chunk, str, str]] = []  # chunk, embed text, embed hash
        for document in new_docs.values():
            for chunk in chunker.run(document):
                text = _embed_text(document, chunk)
                pending.append((chunk, text, _hash(text)))

        vectors: dict[str, np.ndarray] = {}
        old_vectors = self.vectors.vectors_of(
            sorted({reusable[d] for _, _, d in pending if d in reusable}))
        to_embed = []
        for chunk, text, digest in pending:
            old_id = reusable.get(digest)
            vector = old_vectors.get(old_id) if old_id else None
            if vector is not None:
                vectors[chunk.chunk_id] = vector
                report.chunks_reused += 1
            else:
                to_embed.append((chunk, text))
        total = len(to_embed)
        for begin in range(0, total, batch_size):
            batch = to_embed[begin:begin + batch_size]
            embedded = embedder.embed_passages([text for _, text in batch])
            for (chunk, _), vector in zip(batch, embedded):
                vectors[chunk.chunk_id] = vector
            report.chunks_embedded += len(batch)
            if progress:
                progress(min(begin + batch_size, total), total)

        self.vectors.delete(doomed)
        for chunk_id in doomed:
            del self.chunks[chunk_id]
        for doc_id in drop:
            self.documents.pop(doc_id, None)
        if pending:
            self.vectors.add([c.chunk_id for c, _, _ in pending],
                             np.stack([vectors[c.chunk_id] for c, _, _ in pending]),
                             [_keyword_text(new_docs[c.doc_id], c) for c, _, _ in pending])
        for chunk, _, digest in pending:
            self.chunks[chunk.chunk_id] = ChunkRecord(chunk, digest)
        self.documents.update(new_docs)
        self._rebuild_keywords()

    def _rebuild_keywords(self) -> None:
        ids = list(self.chunks)
        tokens = []
        for chunk_id in ids:
            chunk = self.chunks[chunk_id].chunk
            tokens.append(keyword_tokens(_keyword_text(self.documents[chunk.doc_id], chunk)))
        self.keywords = KeywordIndex(ids, tokens)

    # -- search --

    @property
    def chunk_languages(self) -> dict[str, str]:
        """Language of every chunk (``"zh"``/``"en"``), computed once per index version."""
        cached = getattr(self, "_chunk_languages", None)
        if cached is None or len(cached) != len(self.chunks):
            cached = {cid: detect_language(rec.chunk.text) for cid, rec in self.chunks.items()}
            self._chunk_languages = cached
        return cached

    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """``(chunk_id, cosine similarity)`` for the ``k`` nearest chunks of this index.

        FAISS: exact up to ``FLAT_LIMIT`` chunks, then an in-memory HNSW or IVF index.
        Milvus: its own index; ids another process added but this generation does not
        know (yet) are skipped.
        """
        return self._known(self.vectors.search(vector, k))

    def keyword_search(self, query: str, k: int) -> list[tuple[str, float]]:
        """BM25 ``(chunk_id, score)`` from the index's own bm25s index
        (``keyword_search = "local"``)."""
        return self.keywords.search(query, k)

    def full_text_search(self, query: str, k: int) -> list[tuple[str, float]]:
        """BM25 ``(chunk_id, score)`` from the vector store's own full-text search (its
        ``full-text`` capability, e.g. ``keyword_search = "milvus"``), skipping ids as
        :meth:`dense_search` does."""
        return self._known(self.vectors.keyword_search(query, k))

    # -- vocabulary (what evidence.py asks of the index) --

    @property
    def chunk_count(self) -> int:
        return len(self.chunks)

    def document_frequency(self, tokens: Sequence[str], language: str | None = None
                           ) -> dict[str, int]:
        """Chunks (of ``language``, if given) containing each keyword token."""
        if language is None:
            return self.keywords.document_frequency(tokens)
        masks = getattr(self, "_language_masks", None)
        if masks is None or masks[0] != len(self.keywords.chunk_ids):
            languages = self.chunk_languages
            ids = self.keywords.chunk_ids
            masks = (len(ids), {lang: np.array([languages.get(c) == lang for c in ids], bool)
                                for lang in set(languages.values())})
            self._language_masks = masks
        mask = masks[1].get(language)
        if mask is None:
            return {t: 0 for t in tokens}
        return self.keywords.document_frequency(tokens, mask)

    def texts_mentioning(self, term: str, language: str | None = None) -> list[str]:
        """Title and text of the chunks (of ``language``, if given) that keyword search
        finds for ``term``: where to look whether the index mentions it."""
        languages = self.chunk_languages
        texts = []
        for chunk_id, _ in self.keywords.search(term, 50):
            if language is not None and languages.get(chunk_id) != language:
                continue
            chunk = self.chunks[chunk_id].chunk
            texts.append(f"{self.documents[chunk.doc_id].title}\n{chunk.text}")
        return texts

    def _known(self, hits: list[tuple[str, float]]) -> list[tuple[str, float]]:
        return [(chunk_id, float(score)) for chunk_id, score in hits if chunk_id in self.chunks]

    def migrate_vectors(self, target: ChunkVectors,
                        progress: Callable[[int, int], None] | None = None,
                        batch: int = 2000) -> int:
        """Copy every chunk's vector into ``target`` without re-embedding and switch to it.

        Resumable: ids ``target`` already holds (from an interrupted run) are skipped.
        Raises :class:`IndexCorruptError` when the counts differ at the end.
        """
        done = target.ids()
        todo = [cid for cid in self.chunks if cid not in done]
        total = len(todo)
        for start in range(0, total, batch):
            ids = todo[start:start + batch]
            found = self.vectors.vectors_of(ids)
            missing = [cid for cid in ids if cid not in found]
            if missing:
                raise IndexCorruptError(f"{len(missing)} chunks have no vector (e.g. "
                                        f"{missing[0]}); rebuild with `ai-digest-qa index "
                                        "--rebuild`.")
            texts = [_keyword_text(self.documents[self.chunks[cid].chunk.doc_id],
                                   self.chunks[cid].chunk) for cid in ids]
            target.add(ids, np.stack([found[cid] for cid in ids]), texts)
            if progress:
                progress(min(start + batch, total), total)
        extra = target.ids() - set(self.chunks)
        if extra:
            target.delete(extra)
            target.committed()
        if target.size != len(self.chunks):
            raise IndexCorruptError(f"migration count check failed: {target.size} vectors "
                                    f"in {target.kind} for {len(self.chunks)} chunks; run "
                                    "the migration again to resume.")
        self.vectors = target
        return total


def record_collection(index_dir: Path, vectors: ChunkVectors) -> None:
    """Note a Milvus collection this index created, before anything is written to it, so
    it is dropped once no generation uses it, even if its build is killed."""
    if vectors.collection is not None:
        index_dir.mkdir(parents=True, exist_ok=True)
        with open(index_dir / COLLECTIONS_LEDGER, "a", encoding="utf-8") as ledger:
            ledger.write(vectors.collection + "\n")


def _collection_named(info_file: Path) -> str | None:
    try:
        return str(json.loads(info_file.read_text(encoding="utf-8"))["collection"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class _NoMilvusError(Exception):
    """Never raised: stands for pymilvus's errors where pymilvus is not installed."""


def _milvus_error() -> type[BaseException]:
    """pymilvus's base exception when pymilvus is installed (it is imported lazily).

    Without pymilvus, an exception nothing raises: RuntimeError here would also catch
    faiss's errors on a truncated vector file and report damage as "Milvus failed".
    """
    try:
        from pymilvus.exceptions import MilvusException
    except ImportError:
        return _NoMilvusError
    return MilvusException


def progress_printer(label: str) -> Callable[[int, int], None]:
    """A tqdm bar on a terminal, occasional lines otherwise (logs, CI)."""
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = tqdm(total=total, desc=label, unit="chunk", file=sys.stderr,
                                disable=None, mininterval=0.5)
            state["last"] = 0
        bar = state["bar"]
        bar.update(done - state["last"])
        if bar.disable and (done == total or done // 64 != state["last"] // 64):
            print(f"{label}: {done}/{total} chunks", file=sys.stderr)
        state["last"] = done
        if done >= total:
            bar.close()

    return update
