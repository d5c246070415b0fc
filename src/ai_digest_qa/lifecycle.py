"""The index's life cycle, decided in one place: load what is on disk, then update,
rebuild or migrate it as the files, the settings and the caller ask, and save it.

``IndexStore`` (index.py) holds one index in memory and writes its generations; this
module decides what happens to it. The :class:`~ai_digest_qa.assistant.Assistant` only
holds the locks and swaps in the result.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import backends
from .chunking import Chunker
from .config import Config
from .embeddings import Embedder
from .index import (
    MIGRATION_MARKER,
    IndexCorruptError,
    IndexStore,
    Manifest,
    UpdateReport,
    progress_printer,
    record_collection,
)
from .vectorstores import (
    ChunkVectors,
    MilvusMissingError,
    MilvusVectors,
    VectorStoreUnavailable,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class IndexRequest:
    """What the caller asks of the index: sources to add or remove, a rebuild, a scan of
    the files for changes (off: only load a sound index), or moving its vectors to
    another backend (``migrate_to``)."""

    add_paths: tuple[Path, ...] = ()
    remove_paths: tuple[Path, ...] = ()
    rebuild: bool = False
    scan: bool = True
    migrate_to: str | None = None
    # Damage found after load (the background integrity check): rebuild for this reason.
    damaged: str | None = None


class IndexKeeper:
    """Brings ``config.index_dir`` to what a request asks, and says what it did.

    ``embedder`` is only asked for vectors (or its dimension) when something needs
    embedding, so loading a sound index never loads the model.
    """

    def __init__(self, config: Config, embedder: Embedder, chunker: Chunker) -> None:
        self.config = config
        self.embedder = embedder
        self.chunker = chunker

    def run(self, request: IndexRequest, progress: ProgressCallback | None = None
            ) -> tuple[IndexStore, UpdateReport]:
        """The index after ``request``, and the report of what changed. The caller holds
        the index folder's lock."""
        report = UpdateReport()
        store = self._open(request, report)
        if store is None:
            store = self._new_store()
            report.rebuilt_because = report.rebuilt_because or "no index yet"
        else:
            self._place_vectors(store, request.migrate_to, progress, report)
        # scan=False serves a sound index as it is; a new one is built from the files.
        if request.scan or store.generation is None or request.add_paths \
                or request.remove_paths:
            self._update_from_sources(store, request, progress, report)
        if (report.changed or report.fingerprints_refreshed or store.generation is None
                or store.keywords_rebuilt or request.remove_paths or report.vectors_moved):
            store.save(self.config.index_dir, self.config.milvus_settings)
        if report.vectors_moved:  # only now: until saved, a rerun must be able to resume
            (self.config.index_dir / MIGRATION_MARKER).unlink(missing_ok=True)
        return store, report

    # -- load, or decide to rebuild --

    def _open(self, request: IndexRequest, report: UpdateReport) -> IndexStore | None:
        """The index on disk if it can be kept; None (with the reason in ``report``) when
        it must be built anew."""
        rebuild = request.rebuild
        if request.damaged:  # as if the load had found it: IndexCorruptError below
            report.rebuilt_because = request.damaged
            return None
        try:
            store = self._load_or_none(report)
        except (VectorStoreUnavailable, MilvusMissingError) as exc:
            if not rebuild:
                raise
            report.notices.append(f"the old index's vectors could not be reached ({exc}); "
                                  "built a new index without them")
            store = None
        if store is not None:
            reason = store.manifest.incompatibility(backends.identity(self.config),
                                                    self.chunker.settings)
            if rebuild or reason:
                report.rebuilt_because = reason or "rebuild requested"
                return None
        elif rebuild:
            report.rebuilt_because = "rebuild requested"
        return store

    def _load_or_none(self, report: UpdateReport) -> IndexStore | None:
        try:
            return IndexStore.load(self.config.index_dir, self.config.milvus_settings,
                                   int(self.config.verify_background_mb * 1e6))
        except IndexCorruptError as exc:
            if IndexStore.current_generation(self.config.index_dir) is not None:
                report.rebuilt_because = str(exc)
            return None

    def _new_store(self) -> IndexStore:
        previous = IndexStore.read_manifest(self.config.index_dir)
        dimension = self.embedder.dimension
        vectors = self._new_vectors(self.config.vector_store, dimension)
        store = IndexStore(
            Manifest(embedder=backends.identity(self.config), dimension=dimension,
                     chunking=self.chunker.settings,
                     sources=previous.sources if previous else []),
            dimension, vectors)
        # A rebuild ends any interrupted migration (its collection is dropped later).
        (self.config.index_dir / MIGRATION_MARKER).unlink(missing_ok=True)
        return store

    def _new_vectors(self, kind: str, dimension: int) -> ChunkVectors:
        """Empty vectors of ``kind``; a new Milvus collection is recorded first, so it is
        dropped once unused even if its build is killed."""
        vectors: ChunkVectors = backends.build("vector_store", kind, self.config,
                                               dimension=dimension)
        record_collection(self.config.index_dir, vectors)
        return vectors

    # -- migrate --

    def _place_vectors(self, store: IndexStore, migrate_to: str | None,
                       progress: ProgressCallback | None, report: UpdateReport) -> None:
        """Move the vectors when asked to; else say when they are not where the settings
        put new builds. Only the migrate command moves them: one misconfigured instance
        must not move a shared index back and forth."""
        kind = store.vectors.kind
        if migrate_to and kind != migrate_to:
            report.vectors_moved = f"{kind} -> {migrate_to}"
            self._move_vectors(store, migrate_to, progress)
        elif kind != self.config.vector_store:
            notice = (f"the index keeps its vectors in {kind}; "
                      f"vector_store={self.config.vector_store!r} applies to new builds. "
                      f"Move them with `ai-digest-qa migrate --to {self.config.vector_store}`.")
            report.notices.append(notice)
            log.warning(notice)

    def _move_vectors(self, store: IndexStore, to: str, progress: ProgressCallback | None,
                      batch: int = 2000) -> None:
        marker = self.config.index_dir / MIGRATION_MARKER
        source = {"source_generation": store.generation, "embedder": store.manifest.embedder}
        target: ChunkVectors | None = None
        resumable = backends.has("vector_store", to, backends.COLLECTION)
        if resumable and marker.is_file():  # resume an interrupted migration...
            try:
                recorded = json.loads(marker.read_text(encoding="utf-8"))
                # ...but only of this very index: otherwise its vectors may be stale.
                if all(recorded.get(k) == v for k, v in source.items()):
                    target = MilvusVectors.load_named(self.config.milvus_settings, marker)
            except (OSError, ValueError, KeyError, VectorStoreUnavailable) as exc:
                log.info("not resuming the earlier migration (%s); starting afresh", exc)
                target = None
        if target is None:
            target = self._new_vectors(to, store.manifest.dimension)
            target.write_info(marker, **source)  # a collection's name, to resume
        store.migrate_vectors(target, progress, batch)

    # -- update from the files --

    def _update_from_sources(self, store: IndexStore, request: IndexRequest,
                             progress: ProgressCallback | None, report: UpdateReport) -> None:
        config = self.config
        sources = list(store.manifest.sources)
        for path in request.add_paths:
            resolved = str(path.expanduser().resolve())
            if resolved not in sources and Path(resolved) != config.corpus_dir:
                sources.append(resolved)
        for path in request.remove_paths:
            resolved = str(path.expanduser().resolve())
            if resolved in sources:
                sources.remove(resolved)
        store.manifest.sources = sources
        if progress is None and sys.stderr.isatty():
            progress = progress_printer("embedding")
        store.update(source_folders(config, store.manifest), config.corpus_dir.parent,
                     self.embedder, self.chunker, config.embedding_batch_size,
                     progress, report, max_file_bytes=int(config.max_file_mb * 1e6))


def source_folders(config: Config, manifest: Manifest | None) -> list[Path]:
    """The corpus folder and the sources users registered."""
    registered = [Path(p) for p in manifest.sources] if manifest else []
    return [config.corpus_dir, *registered]
