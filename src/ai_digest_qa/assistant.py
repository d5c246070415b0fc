"""The assistant: configuration, index and retriever wired together, loaded once."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from . import backends
from .answer import Answerer
from .answerability import RelevanceModel, Signals
from .bridge import TermBridge, default_cache_dir
from .chunking import Chunker
from .config import Config, ConfigError, load_config
from .embeddings import Embedder
from .index import IndexStore, UpdateReport, index_lock
from .lifecycle import IndexKeeper, IndexRequest, ProgressCallback
from .llm import ChatLLM, LLMError
from .records import Answer, Document, History, Passage, Retrieval
from .retrieval import CrossEncoderReranker, HybridRetriever


class Assistant:
    """Owns the index and the models for one configuration.

    The first use builds ``index/`` from ``corpus/`` (and any registered user sources)
    when it is missing, built with other settings, damaged, or older than the files;
    otherwise it loads it (what to do is decided by lifecycle.IndexKeeper). Thread-safe:
    searches may run concurrently.
    """

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or load_config()
        self._embedder: Embedder | None = None
        self._store: IndexStore | None = None
        self._retriever: HybridRetriever | None = None
        self._bridge: TermBridge | None = None
        self._lock = threading.RLock()
        self._llms: dict[str, ChatLLM | None] = {}
        self.last_update: UpdateReport | None = None
        # Damage the check after load found (the index was then rebuilt); None: none seen.
        self.integrity_problem: str | None = None
        # The relevance model answers use; None: the calibrated one (data/relevance.json).
        self.relevance: RelevanceModel | None = None

    # -- components, created on first use --

    # Each component is read without the lock once it exists: an index update holds the
    # lock while it embeds, and questions asked meanwhile must not wait for it.

    @property
    def embedder(self) -> Embedder:
        embedder = self._embedder  # read once: another thread may reset it
        if embedder is not None:
            return embedder
        with self._lock:
            if self._embedder is None:
                self._embedder = backends.create("embedder", self.config)
            return self._embedder

    @property
    def bridge(self) -> TermBridge | None:
        """The term bridge every answer shares, so its word cache lasts across questions
        (None when ``term_bridge`` is off); remade when the embedder is replaced."""
        if not self.config.term_bridge:
            return None
        embedder = self.embedder
        bridge = self._bridge
        if bridge is None or bridge.embedder is not embedder:
            with self._lock:
                if self._bridge is None or self._bridge.embedder is not embedder:
                    self._bridge = TermBridge(embedder, default_cache_dir(self.config))
                bridge = self._bridge
        return bridge

    def chunker(self) -> Chunker:
        return Chunker(self.config.chunk_size, self.config.chunk_overlap)

    @property
    def store(self) -> IndexStore:
        store = self._store
        if store is not None:
            return store
        with self._lock:
            if self._store is None:
                self.ensure_index()
            assert self._store is not None
            return self._store

    def ensure_index(self, progress: ProgressCallback | None = None,
                     rebuild: bool = False) -> UpdateReport:
        """Load the index, building it when needed, and updating it from the files unless
        ``auto_update`` is off."""
        return self.update_index([], progress=progress, rebuild=rebuild,
                                 scan=self.config.auto_update)

    def update_index(self, add_paths: list[Path], progress: ProgressCallback | None = None,
                     rebuild: bool = False, remove_paths: list[Path] | None = None,
                     scan: bool = True) -> UpdateReport:
        """Register ``add_paths`` as sources (files or folders) and index what changed.

        ``scan=False`` only loads a sound index (building one if there is none): for
        instances serving an index that an ingest job maintains.
        """
        return self._run(IndexRequest(tuple(add_paths), tuple(remove_paths or ()), rebuild,
                                      scan), progress)

    def migrate(self, to: str, progress: ProgressCallback | None = None) -> UpdateReport:
        """Move the index's vectors to backend ``to`` ("faiss" or "milvus") without
        re-embedding; resumable, with a count check at the end."""
        keyword = backends.lookup("keyword_search", self.config.keyword_search)
        if backends.missing(keyword, to):  # e.g. Milvus's full-text search goes with it
            keyword = backends.fitting("keyword_search", to)
        self.config = replace(self.config, vector_store=to, keyword_search=keyword.name)
        with self._lock:
            self._store = None
            self._retriever = None
            return self._run(IndexRequest(scan=self.config.auto_update, migrate_to=to),
                             progress)

    def _run(self, request: IndexRequest, progress: ProgressCallback | None) -> UpdateReport:
        """Have the keeper (lifecycle.py) bring the index to ``request``, then serve it."""
        with self._lock, index_lock(self.config.index_dir):
            keeper = IndexKeeper(self.config, _LazyEmbedder(self), self.chunker())
            store, report = keeper.run(request, progress)
            # The new retriever is made before the swap: a question asked while the next
            # upload embeds (holding the lock) must not wait to make one.
            old_retriever = self._retriever
            self._retriever = (self._new_retriever(store, old_retriever)
                               if old_retriever is not None else None)
            self._store = store
            self.last_update = report
        # Large indexes serve first and verify their big files after (integrity.py).
        store.integrity.start(partial(self._damaged, store))
        return report

    def _damaged(self, store: IndexStore, reason: str) -> None:
        """The check after load found ``store``'s files damaged: rebuild, as for damage
        found on load (lifecycle.IndexKeeper, with the reason)."""
        self.integrity_problem = reason
        with self._lock:
            if self._store is store:  # else a newer index already replaced it
                self._run(IndexRequest(scan=self.config.auto_update, damaged=reason), None)

    @property
    def retriever(self) -> HybridRetriever:
        retriever = self._retriever
        if retriever is not None:
            return retriever
        with self._lock:
            if self._retriever is None:
                self._retriever = self._new_retriever(self.store, None)
            return self._retriever

    def _new_retriever(self, store: IndexStore, previous: HybridRetriever | None
                       ) -> HybridRetriever:
        """A retriever over ``store``, keeping ``previous``'s reranker (a loaded model)."""
        reranker = previous.reranker if previous is not None else (
            CrossEncoderReranker(self.config.reranker_model)
            if self.config.reranker_model else None)
        import faiss

        faiss.omp_set_num_threads(self.config.faiss_threads)
        return HybridRetriever(store, self.embedder, self.config, reranker)

    # -- public operations --

    def retrieve(self, question: str, top_k: int | None = None) -> list[Passage]:
        """The ``top_k`` passages most relevant to ``question`` (Chinese or English)."""
        question = validate_question(question, self.config.max_question_chars)
        return self.retriever.run(question, top_k or self.config.top_k)

    def llm(self, backend: str | ChatLLM | None = None) -> ChatLLM | None:
        """The LLM for ``backend`` ("local", "openai", "extractive" or an LLM object);
        the configured one when None. Loaded once and shared."""
        if backend is None or isinstance(backend, str):
            name = backend or self.config.llm_backend
            if name in self._llms:  # entries are never removed: safe without the lock
                return self._llms[name]
            with self._lock:
                if name not in self._llms:
                    self._llms[name] = backends.create(
                        "llm", replace(self.config, llm_backend=name))
                return self._llms[name]
        return backend

    @overload
    def ask_stream(self, question: str, *, history: History | None = ...,
                   top_k: int | None = ..., llm: str | ChatLLM | None = ...,
                   cancel: threading.Event | None = ...,
                   include_retrieval: Literal[False] = ...,
                   temperature: float | None = ..., max_tokens: int | None = ...
                   ) -> Generator[str | Answer, None, None]: ...

    @overload
    def ask_stream(self, question: str, *, history: History | None = ...,
                   top_k: int | None = ..., llm: str | ChatLLM | None = ...,
                   cancel: threading.Event | None = ...,
                   include_retrieval: Literal[True],
                   temperature: float | None = ..., max_tokens: int | None = ...
                   ) -> Generator[str | Retrieval | Answer, None, None]: ...

    def ask_stream(self, question: str, *, history: History | None = None,
                   top_k: int | None = None, llm: str | ChatLLM | None = None,
                   cancel: threading.Event | None = None,
                   include_retrieval: bool = False,
                   temperature: float | None = None, max_tokens: int | None = None
                   ) -> Generator[str | Retrieval | Answer, None, None]:
        """Yield the answer's text as it is generated, then the final :class:`Answer`.

        With ``include_retrieval`` a :class:`Retrieval` (the passages) comes first, as
        soon as search is done: a UI shows the sources before the LLM's first token.
        Setting ``cancel`` stops generation; the final Answer then has notice "stopped".
        ``temperature`` and ``max_tokens`` override the configured ones for this answer
        (``max_tokens`` never above ``max_answer_tokens``: the configured cap stays a cap).
        """
        question = validate_question(question, self.config.max_question_chars)
        config = self._answer_config(temperature, max_tokens)
        try:
            model = self.llm(llm)
            failure = None
        except (LLMError, ConfigError) as exc:  # no model: answer extractively, say why
            model, failure = None, str(exc)
        answerer = Answerer(self.retriever, self.embedder, config, model, failure,
                            self.relevance, self.bridge)
        for item in answerer.stream(question, history, top_k, cancel):
            if include_retrieval or not isinstance(item, Retrieval):
                yield item

    def _answer_config(self, temperature: float | None, max_tokens: int | None) -> Config:
        changes: dict[str, Any] = {}
        if temperature is not None:
            changes["temperature"] = float(temperature)
        if max_tokens is not None:
            changes["max_answer_tokens"] = max(1, min(int(max_tokens),
                                                      self.config.max_answer_tokens))
        return replace(self.config, **changes) if changes else self.config

    def ask(self, question: str, *, history: History | None = None, top_k: int | None = None,
            llm: str | ChatLLM | None = None) -> Answer:
        """A cited answer to ``question`` in its language (Chinese or English)."""
        answer = None
        for item in self.ask_stream(question, history=history, top_k=top_k, llm=llm):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def previous_default(self) -> Assistant:
        """This assistant as the earlier default answered: the model reads the whole
        top passages (``answer_strategy = "passages"``) with the shipped weights on the
        xllamacpp wheel and up
        to 320 tokens. It shares this one's index and embedder (and its temperature, so
        that sampling adds no noise to the comparison); evaluations and the bench run it
        side by side."""
        other = Assistant(replace(self.config, answer_strategy="passages",
                                  local_model_format="shipped", llm_runtime="xllamacpp",
                                  max_answer_tokens=320))
        other._embedder = self.embedder
        other._store = self.store
        return other

    def answerability_signals(self, question: str, history: History | None = None
                              ) -> Signals | None:
        """What the relevance check reads for ``question`` (without generating), or None
        when an earlier check already decides it (no passage, unknown name, nothing
        covering its constraints). For calibration."""
        question = validate_question(question, self.config.max_question_chars)
        answerer = Answerer(self.retriever, self.embedder, self.config, None,
                            bridge=self.bridge)
        return answerer.signals(question, history)

    def document(self, doc_id: str) -> Document:
        """The cleaned document a passage's offsets point into."""
        try:
            return self.store.documents[doc_id]
        except KeyError:
            raise KeyError(f"No indexed document {doc_id!r}.") from None

    def documents(self) -> list[Document]:
        return sorted(self.store.documents.values(), key=lambda d: d.doc_id)


class _LazyEmbedder:
    """Loads the model only if something actually needs embedding."""

    def __init__(self, assistant: Assistant) -> None:
        self._assistant = assistant

    @property
    def dimension(self) -> int:
        return self._assistant.embedder.dimension

    @property
    def name(self) -> str:
        return self._assistant.embedder.name

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._assistant.embedder.embed_queries(texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._assistant.embedder.embed_passages(texts)


class QuestionError(ValueError):
    """The question cannot be searched; the message says what to change."""


MAX_QUESTION_CHARS = 4000


def validate_question(question: object, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """A cleaned question, or :class:`QuestionError` explaining what is wrong."""
    if not isinstance(question, str):
        raise QuestionError(f"The question must be text, not {type(question).__name__}.")
    cleaned = "".join(ch for ch in question if ch.isprintable() or ch in "\n\t")
    cleaned = cleaned.encode("utf-8", "replace").decode("utf-8").strip()
    if not cleaned:
        raise QuestionError("The question is empty; type a question in Chinese or English.")
    if not any(ch.isalnum() for ch in cleaned):  # only emoji or punctuation: nothing to search
        raise QuestionError("The question has no words, only symbols; ask it in Chinese or "
                            "English words.")
    if len(cleaned) > max_chars:
        raise QuestionError(
            f"The question is {len(cleaned)} characters long; the limit is "
            f"{max_chars} (setting max_question_chars). Shorten it to the part you want "
            "answered."
        )
    return cleaned


_default: Assistant | None = None
_default_lock = threading.Lock()


def default_assistant() -> Assistant:
    """The process-wide assistant for the default configuration (created once)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Assistant()
        return _default


def retrieve(question: str, top_k: int = 5) -> list[Passage]:
    """Passages for ``question`` from the default assistant (builds the index on first use)."""
    return default_assistant().retrieve(question, top_k)


def ask(question: str, *, history: History | None = None, top_k: int | None = None,
        llm: str | ChatLLM | None = None) -> Answer:
    """A cited answer from the default assistant (see :meth:`Assistant.ask`)."""
    return default_assistant().ask(question, history=history, top_k=top_k, llm=llm)


def ask_stream(question: str, *, history: History | None = None, top_k: int | None = None,
               llm: str | ChatLLM | None = None) -> Iterator[str | Answer]:
    """Streamed answer from the default assistant: text pieces, then the :class:`Answer`."""
    return default_assistant().ask_stream(question, history=history, top_k=top_k, llm=llm)
