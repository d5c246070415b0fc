"""Where chunk vectors live: FAISS in the index folder (the default) or a Milvus collection.

Both are llama-index vector stores (``FaissMapVectorStore``, ``MilvusVectorStore``) behind
one small interface, :class:`ChunkVectors`. New vectors are made by the registry
(backends.py, ``vector_store``), and a generation's are opened by :func:`open_vectors`
from what its folder holds. The index owns everything else
(documents, chunks, keywords, manifest); only Milvus's clean-up after a killed build
(:meth:`MilvusVectors.reconcile`) is asked for by type.

Milvus Lite is the default Milvus target: a local ``.db`` folder served by milvus-lite
3.x, a pure-Python implementation of the Milvus API (FAISS underneath) that runs a gRPC
server on 127.0.0.1 inside our process. A Milvus standalone or cluster is the same code
with ``milvus_uri = "http://host:19530"`` and ``milvus_token``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .config import MilvusSettings, is_lite_uri
from .errors import ConfigError

if TYPE_CHECKING:
    import faiss
    from llama_index.vector_stores.faiss import FaissMapVectorStore

    from .config import Config

log = logging.getLogger(__name__)


# Exact search up to this many chunks (a few ms per query at 5e4 x 384 on one core);
# HNSW beyond, IVF beyond HNSW_LIMIT, where HNSW's build time and memory grow too large.
FLAT_LIMIT = 50_000
HNSW_LIMIT = 500_000


class ChunkVectors(Protocol):
    """Chunk-id keyed vectors with inner-product search.

    What differs between backends is said here as capabilities, so that callers never
    ask which class they hold: ``collection`` names the server-side collection the
    vectors live in (None: they live in the generation's own files), and
    :meth:`keyword_search` says what is wrong where the backend has no full-text search.
    """

    kind: str

    @property
    def collection(self) -> str | None: ...

    @property
    def size(self) -> int: ...

    @property
    def dimension(self) -> int: ...

    def add(self, ids: list[str], vectors: np.ndarray, texts: list[str]) -> None: ...

    def delete(self, ids: Iterable[str]) -> None: ...

    def vectors_of(self, ids: list[str]) -> dict[str, np.ndarray]: ...

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]: ...

    def ids(self) -> set[str]: ...

    def persist(self, folder: Path) -> None: ...

    def committed(self) -> None: ...

    def keyword_search(self, query: str, k: int) -> list[tuple[str, float]]: ...

    def reconcile(self, known: set[str]) -> int: ...

    def write_info(self, info_file: Path, **extra: Any) -> None: ...


# --- FAISS ---------------------------------------------------------------------------


def _faiss_store_class() -> type[FaissMapVectorStore]:
    """FaissMapVectorStore with the fixes we need, built lazily (llama-index is slow to import).

    Why wrap llama-index's ``FaissMapVectorStore``: it assigns each new vector the id
    ``ntotal``, which repeats an existing id once anything was deleted (our incremental
    updates delete), and it adds vectors one at a time. We allocate ids from a counter
    that only grows and add in one batch; the rest (query, delete, JSON id map) is theirs.
    """
    from llama_index.core.schema import BaseNode
    from llama_index.vector_stores.faiss import FaissMapVectorStore

    class ChunkVectorStore(FaissMapVectorStore):
        def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
            if not nodes:
                return []
            start = max(self._faiss_id_to_node_id_map, default=-1) + 1
            ids = np.arange(start, start + len(nodes), dtype=np.int64)
            vectors = np.asarray([node.get_embedding() for node in nodes], dtype=np.float32)
            self._faiss_index.add_with_ids(vectors, ids)
            for faiss_id, node in zip(ids.tolist(), nodes):
                self._node_id_to_faiss_id_map[node.node_id] = faiss_id
                self._faiss_id_to_node_id_map[faiss_id] = node.node_id
            return [node.node_id for node in nodes]

    return ChunkVectorStore


def choose_faiss_index(chunks: int, flat_limit: int = FLAT_LIMIT,
                       hnsw_limit: int = HNSW_LIMIT) -> str:
    """The FAISS index type for a corpus of ``chunks`` vectors: flat, hnsw or ivf."""
    if chunks <= flat_limit:
        return "flat"
    return "hnsw" if chunks <= hnsw_limit else "ivf"


def make_faiss_index(kind: str, dimension: int, vectors: np.ndarray) -> faiss.Index:
    """An inner-product FAISS index of ``kind`` holding ``vectors`` (ids = row numbers)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index: faiss.Index
    if kind == "flat":
        index = faiss.IndexFlatIP(dimension)
        index.add(vectors)
    elif kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 80
        hnsw.add(vectors)
        hnsw.hnsw.efSearch = 128
        index = hnsw
    elif kind == "ivf":
        lists = max(1, min(int(4 * np.sqrt(len(vectors))), len(vectors) // 39))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, lists,
                                 faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.random.default_rng(0).permutation(len(vectors))[:lists * 40]]
        ivf.train(sample)
        ivf.add(vectors)
        ivf.nprobe = 16
        index = ivf
    else:
        raise ValueError(f"unknown FAISS index type {kind!r}; use flat, hnsw or ivf")
    return index


class FaissVectors:
    """Vectors in a FAISS ``IndexIDMap2`` persisted as JSON + FAISS files in the index.

    Exact search up to ``flat_limit`` vectors; beyond, an HNSW or IVF index is built from
    the same vectors on the first search and kept in memory.
    """

    kind = "faiss"
    collection: str | None = None  # the generation's files are the whole state
    FILE = "default__vector_store.json"

    def __init__(self, store: Any, flat_limit: int = FLAT_LIMIT) -> None:
        self.store = store
        self.flat_limit = flat_limit
        self._ann: tuple[Any, np.ndarray] | None = None  # (index, row -> faiss id)
        self._ann_lock = threading.Lock()

    @classmethod
    def empty(cls, dimension: int) -> FaissVectors:
        import faiss

        store_class = _faiss_store_class()
        return cls(store_class(faiss_index=faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))))

    @classmethod
    def from_config(cls, config: Config, dimension: int) -> FaissVectors:
        return cls.empty(dimension)

    @classmethod
    def load(cls, folder: Path) -> FaissVectors:
        return cls(_faiss_store_class().from_persist_dir(str(folder)))

    @property
    def size(self) -> int:
        return int(self.store._faiss_index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self.store._faiss_index.d)

    def add(self, ids: list[str], vectors: np.ndarray, texts: list[str]) -> None:
        from llama_index.core.schema import TextNode

        # Texts stay in the index's chunk records; FAISS needs only the vectors.
        self.store.add([TextNode(id_=i, text="", embedding=v.tolist())
                        for i, v in zip(ids, vectors)])
        self._ann = None

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids:
            self.store.delete_nodes(ids)
            self._ann = None

    def vectors_of(self, ids: list[str]) -> dict[str, np.ndarray]:
        found = {}
        for chunk_id in ids:
            faiss_id = self.store._node_id_to_faiss_id_map.get(chunk_id)
            if faiss_id is not None:
                found[chunk_id] = self.store._faiss_index.reconstruct(int(faiss_id))
        return found

    def ids(self) -> set[str]:
        return set(self.store._node_id_to_faiss_id_map)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        from llama_index.core.vector_stores.types import VectorStoreQuery

        if self.size == 0:
            return []
        if self.size > self.flat_limit:
            return self._approximate_search(vector, k)
        result = self.store.query(VectorStoreQuery(
            query_embedding=np.asarray(vector, dtype=np.float32).tolist(),
            similarity_top_k=min(k, self.size)))
        return list(zip(result.ids or [], result.similarities or []))

    def _approximate_search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        with self._ann_lock:  # built once, by the first query that needs it
            if self._ann is None:
                self._ann = self._build_ann()
            index, row_ids = self._ann
        scores, rows = index.search(np.asarray(vector, dtype=np.float32)[None, :], k)
        id_to_node = self.store._faiss_id_to_node_id_map
        return [(id_to_node[int(row_ids[r])], float(s))
                for s, r in zip(scores[0], rows[0]) if r >= 0]

    def _build_ann(self) -> tuple[Any, np.ndarray]:
        import faiss

        id_map = self.store._faiss_index  # IndexIDMap2 over IndexFlatIP
        ids = faiss.vector_to_array(id_map.id_map).astype(np.int64)
        matrix = id_map.index.reconstruct_n(0, id_map.ntotal)
        kind = choose_faiss_index(len(ids), self.flat_limit, HNSW_LIMIT)
        return make_faiss_index(kind, matrix.shape[1], matrix), ids

    def persist(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.store.persist(str(folder / self.FILE))

    def committed(self) -> None:
        """Nothing to do: the generation folder is the whole state."""

    def keyword_search(self, query: str, k: int) -> list[tuple[str, float]]:
        # Not reached through the registry: no full-text capability (backends.require).
        raise ValueError("FAISS holds no chunk text: it has no full-text search")

    def reconcile(self, known: set[str]) -> int:
        """Nothing to remove: a killed build never wrote into a live generation's files."""
        return 0

    def write_info(self, info_file: Path, **extra: Any) -> None:
        """Nothing to name: the vectors are files beside the info (no collection)."""


# --- Milvus --------------------------------------------------------------------------


class MilvusMissingError(ConfigError):
    """The ``milvus`` extra is not installed."""


class VectorStoreUnavailable(RuntimeError):
    """The vector store server cannot be reached (not damage: nothing gets rebuilt)."""


class MilvusVectors:
    """Vectors (and chunk text) in a Milvus collection, through llama-index's
    ``MilvusVectorStore``.

    The collection is updated in place, so the index's generation swap cannot cover it.
    To keep "the live generation never points at missing vectors", deletions wait until
    the new generation is live (:meth:`committed`); vectors a killed build added are
    extra ids, removed by :meth:`reconcile` on the next load. Searches skip ids the
    loaded generation does not know.
    """

    kind = "milvus"
    INFO = "milvus.json"

    def __init__(self, settings: MilvusSettings, collection: str, dimension: int,
                 create: bool) -> None:
        """Settings only, no connection: :meth:`connect` (called by :meth:`create`,
        :meth:`load` and :meth:`load_named`, else by the first use) reaches Milvus."""
        try:
            from llama_index.vector_stores.milvus import MilvusVectorStore  # noqa: F401
        except ImportError as exc:
            raise MilvusMissingError(
                f"vector_store='milvus' needs the Milvus packages ({exc.name} is missing): "
                "pip install -e '.[milvus]'") from None

        self.settings = settings
        self.collection = collection
        self._dimension = dimension
        self._create = create  # a new collection: it must not exist yet
        self._store: Any = None
        self._connect_lock = threading.Lock()
        self._pending_deletes: set[str] = set()

    def connect(self) -> None:
        """Check the collection (exists, or not yet for a new one; its dimension) and
        open llama-index's store on it, once; later calls do nothing."""
        with self._connect_lock:
            if self._store is None:
                self._store = self._open_store()

    def _open_store(self) -> Any:
        from llama_index.vector_stores.milvus import MilvusVectorStore
        from llama_index.vector_stores.milvus.utils import BM25BuiltInFunction
        from pymilvus.exceptions import MilvusException

        settings, collection, create = self.settings, self.collection, self._create
        if settings.is_lite:
            Path(settings.uri).parent.mkdir(parents=True, exist_ok=True)
        _bypass_proxies_for_loopback()
        self._check_collection()
        try:
            # Milvus Lite's in-process gRPC server logs an error for AllocTimestamp, which
            # it does not implement and the client does without; keep it out of the log.
            with _quiet("grpc._server"):
                store = MilvusVectorStore(
                    uri=settings.uri, token=settings.token, collection_name=collection,
                    dim=self._dimension, overwrite=False, upsert_mode=True,
                    similarity_metric="IP",
                    index_config={"index_type": settings.index_type,
                                  "params": {"M": settings.hnsw_m,
                                             "efConstruction": settings.ef_construction}},
                    search_config={"ef": settings.ef},
                    consistency_level="Strong",  # a search right after an update sees it
                    # Every collection gets the BM25 field, so keyword_search can switch
                    # to Milvus without a rebuild.
                    enable_sparse=True,
                    sparse_embedding_function=BM25BuiltInFunction(
                        analyzer_params=settings.analyzer, enable_match=False),
                )
            if not create:
                # A collection another process (or an earlier run) wrote is "released":
                # every search fails until it is loaded into memory.
                store.client.load_collection(collection)
        except MilvusException as exc:
            raise _unavailable(settings, exc) from None
        return store

    def _check_collection(self) -> None:
        """A new collection must not exist yet, an existing one must, with the index's
        dimension."""
        from pymilvus.exceptions import MilvusException

        settings, collection, dimension = self.settings, self.collection, self._dimension
        probe = _connect(settings)
        try:
            exists = probe.has_collection(collection)
            actual = _collection_dimension(probe, collection) if exists else None
        except MilvusException as exc:
            raise _unavailable(settings, exc) from None
        finally:
            probe.close()
        if self._create and exists:  # names carry a random part: not ours to overwrite
            raise VectorStoreUnavailable(f"a Milvus collection named {collection!r} already "
                                         f"exists at {settings.shown_uri}")
        if not self._create and not exists:
            raise CollectionMissing(f"the Milvus collection {collection!r} is missing at "
                                    f"{settings.shown_uri}")
        if actual is not None and actual != dimension:
            raise CollectionMissing(f"the Milvus collection {collection!r} holds {actual}-d "
                                    f"vectors, the index expects {dimension}-d")

    @classmethod
    def create(cls, settings: MilvusSettings, dimension: int) -> MilvusVectors:
        """A new, empty collection (a full build never writes into the live one)."""
        name = (f"{settings.collection_prefix}_{time.strftime('%Y%m%d%H%M%S')}_"
                f"{uuid.uuid4().hex[:8]}")
        vectors = cls(settings, name, dimension, create=True)
        vectors.connect()
        return vectors

    @classmethod
    def from_config(cls, config: Config, dimension: int) -> MilvusVectors:
        return cls.create(config.milvus_settings, dimension)

    @classmethod
    def load(cls, folder: Path, settings: MilvusSettings) -> MilvusVectors:
        return cls.load_named(settings, folder / cls.INFO)

    @classmethod
    def load_named(cls, settings: MilvusSettings, info_file: Path) -> MilvusVectors:
        """The existing collection named in ``info_file`` (see :meth:`write_info`).

        An index built against another Milvus server is an error to fix in the settings,
        never a reason to rebuild (that would move a shared index back and forth).
        A Lite file may have moved with its index folder, so only servers are compared.
        """
        info = json.loads(info_file.read_text(encoding="utf-8"))
        recorded = str(info.get("uri", ""))
        if recorded and not (is_lite_uri(recorded) and settings.is_lite) \
                and recorded != settings.shown_uri:
            raise VectorStoreUnavailable(
                f"This index keeps its vectors in Milvus at {recorded}, but milvus_uri is "
                f"{settings.shown_uri}. Set milvus_uri to the index's server, or build a "
                "new index there with `ai-digest-qa index --rebuild`.")
        vectors = cls(settings, str(info["collection"]), int(info["dimension"]), create=False)
        vectors.connect()
        return vectors

    def info(self) -> dict[str, Any]:
        """What names this collection; the URI without credentials, never the token."""
        return {"collection": self.collection, "dimension": self._dimension,
                "uri": self.settings.shown_uri}

    def write_info(self, info_file: Path, **extra: Any) -> None:
        info_file.write_text(json.dumps({**self.info(), **extra}), encoding="utf-8")

    @property
    def store(self) -> Any:
        """llama-index's ``MilvusVectorStore`` on the collection, connected on first use."""
        if self._store is None:
            self.connect()
        return self._store

    @property
    def client(self) -> Any:
        return self.store.client

    @property
    def size(self) -> int:
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) - len(self._pending_deletes)

    @property
    def dimension(self) -> int:
        return self._dimension

    def add(self, ids: list[str], vectors: np.ndarray, texts: list[str]) -> None:
        from llama_index.core.schema import TextNode

        if not ids:
            return
        self._pending_deletes.difference_update(ids)
        batch = 1000  # keeps each gRPC message well under Milvus's 64 MB limit
        for start in range(0, len(ids), batch):
            self.store.add([TextNode(id_=i, text=t, embedding=np.asarray(v).tolist())
                            for i, v, t in zip(ids[start:start + batch],
                                               vectors[start:start + batch],
                                               texts[start:start + batch])])

    def delete(self, ids: Iterable[str]) -> None:
        self._pending_deletes.update(ids)

    def vectors_of(self, ids: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        wanted = [i for i in ids if i not in self._pending_deletes]
        for start in range(0, len(wanted), 500):
            rows = self.client.get(self.collection, ids=wanted[start:start + 500],
                                   output_fields=[self.store.embedding_field])
            for row in rows:
                found[row["id"]] = np.asarray(row[self.store.embedding_field],
                                              dtype=np.float32)
        return found

    def ids(self) -> set[str]:
        found: set[str] = set()
        # Milvus Lite cannot give the iterator a server timestamp (AllocTimestamp is not
        # implemented): its in-process gRPC server logs an error and pymilvus a warning,
        # then uses the client's time, which is what we want. Keep both out of the log.
        with _quiet("pymilvus", "grpc._server"):
            iterator = self.client.query_iterator(self.collection, batch_size=1000,
                                                  filter="", output_fields=["id"])
            try:
                while rows := iterator.next():
                    found.update(row["id"] for row in rows)
            finally:
                iterator.close()
        return found - self._pending_deletes

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        limit = k + len(self._pending_deletes)
        return self._search([np.asarray(vector, dtype=np.float32).tolist()],
                            self.store.embedding_field, k, metric="IP",
                            params={"ef": max(self.settings.ef, limit)})  # HNSW: ef >= limit

    def keyword_search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Milvus's full-text BM25 over the chunk text.

        Called on the client directly: llama-index's TEXT_SEARCH query hard-codes
        ``drop_ratio_search=0.2``, which Milvus Lite rejects (it supports only 0).
        """
        return self._search([query], self.store.sparse_embedding_field, k, metric="BM25",
                            params={"drop_ratio_search": 0})

    def _search(self, data: list[Any], field_name: str, k: int, metric: str,
                params: dict[str, Any]) -> list[tuple[str, float]]:
        """The ``k`` best ids, over-fetching by the deletes that still wait for the commit."""
        rows = self.client.search(
            self.collection, data=data, anns_field=field_name, output_fields=["id"],
            limit=k + len(self._pending_deletes),
            search_params={"metric_type": metric, "params": params})
        # Milvus Lite reports BM25 as a negative distance, a server as a positive score;
        # the order is right in both, and only the order is fused.
        score = abs if metric == "BM25" else float
        hits = [(row["id"], float(score(row["distance"]))) for row in rows[0]
                if row["id"] not in self._pending_deletes]
        return hits[:k]

    def reconcile(self, known: set[str]) -> int:
        """Delete vectors whose chunks the live generation does not have (left by a build
        that was killed before it went live); returns how many."""
        extra = sorted(self.ids() - known)
        self._delete_now(extra)
        return len(extra)

    def _delete_now(self, ids: list[str]) -> None:
        # By primary key, not llama-index's delete_nodes: that builds a filter expression
        # from the ids' repr, which file names with quotes could break.
        for start in range(0, len(ids), 500):
            self.client.delete(self.collection, ids=ids[start:start + 500])

    def persist(self, folder: Path) -> None:
        self.client.flush(self.collection)
        folder.mkdir(parents=True, exist_ok=True)
        self.write_info(folder / self.INFO)

    def committed(self) -> None:
        """The generation that no longer has these chunks is live: delete their vectors."""
        self._delete_now(sorted(self._pending_deletes))
        self._pending_deletes.clear()


class CollectionMissing(ValueError):
    """The collection an index names is gone or does not match it: the index is damaged."""


def _connect(settings: MilvusSettings) -> Any:
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    try:
        # Failures are logged with tracebacks by milvus-lite and pymilvus; we raise one
        # readable error instead.
        with _quiet("milvus_lite", "pymilvus"):
            return MilvusClient(uri=settings.uri, token=settings.token)
    except MilvusException as exc:
        raise _unavailable(settings, exc) from None
    except AssertionError as exc:  # milvus-lite's server manager reports a lock so
        raise _lite_unavailable(settings, exc) from None


def _collection_dimension(client: Any, collection: str) -> int | None:
    for field_info in client.describe_collection(collection).get("fields", []):
        dim = (field_info.get("params") or {}).get("dim")
        if dim is not None:
            return int(dim)
    return None


def _unavailable(settings: MilvusSettings, exc: Any) -> VectorStoreUnavailable:
    if settings.is_lite:
        return _lite_unavailable(settings, exc)
    message = getattr(exc, "message", None) or str(exc)
    return VectorStoreUnavailable(
        f"Cannot use Milvus at {settings.shown_uri} ({message}); start the server, or check "
        "milvus_uri and milvus_token.")


def drop_collections(settings: MilvusSettings, names: Iterable[str]) -> list[str]:
    """Drop the named collections that exist; returns those dropped. Best effort: the
    caller logs failures (a dropped collection is garbage, not data)."""
    names = list(names)
    if not names:
        return []
    client = _connect(settings)
    try:
        existing = set(client.list_collections())
        dropped = [name for name in names if name in existing]
        for name in dropped:
            client.drop_collection(name)
        return dropped
    finally:
        client.close()


_quiet_lock = threading.Lock()


@contextmanager
def _quiet(*logger_names: str) -> Iterator[None]:
    """Silence third-party loggers for a moment. Serialised: overlapping callers would
    otherwise restore each other's levels in the wrong order."""
    with _quiet_lock:
        loggers = [logging.getLogger(name) for name in logger_names]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(logging.CRITICAL + 1)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def _lite_unavailable(settings: MilvusSettings, exc: BaseException) -> VectorStoreUnavailable:
    if "lock" in str(exc).lower() or "Open local milvus failed" in str(exc):
        return VectorStoreUnavailable(
            f"Cannot open the Milvus Lite file {settings.uri}: another process (the web UI?) "
            "has it open, and a Milvus Lite file serves one process at a time. Stop that "
            "process, or serve the file to all of them: `milvus-lite server --data-dir "
            f"{settings.uri} --host 127.0.0.1 --port 19530`, then set milvus_uri = "
            "\"http://127.0.0.1:19530\" everywhere.")
    return VectorStoreUnavailable(f"Cannot open the Milvus Lite file {settings.uri} "
                                  f"({str(exc).splitlines()[0][:300]}).")


def _bypass_proxies_for_loopback() -> None:
    """gRPC honours http(s)_proxy/grpc_proxy, even for Milvus Lite's own server on
    127.0.0.1; without a no_proxy entry the connection fails behind a proxy."""
    if not any(os.environ.get(v) for v in ("http_proxy", "https_proxy", "grpc_proxy",
                                            "HTTP_PROXY", "HTTPS_PROXY")):
        return
    for name in ("no_proxy", "NO_PROXY"):
        entries = [e for e in os.environ.get(name, "").split(",") if e]
        missing = [h for h in ("127.0.0.1", "localhost") if h not in entries]
        if missing:
            os.environ[name] = ",".join(entries + missing)


def open_vectors(folder: Path, milvus: MilvusSettings | None = None
                 ) -> ChunkVectors:
    """The vectors a generation's ``vectors/`` folder describes."""
    if (folder / MilvusVectors.INFO).is_file():
        if milvus is None:
            raise ValueError("this index keeps its vectors in Milvus; set vector_store = "
                             "'milvus' and milvus_uri, or migrate it with "
                             "`ai-digest-qa migrate --to faiss`")
        return MilvusVectors.load(folder, milvus)
    return FaissVectors.load(folder)
