"""The assistant as llama-index components: a retriever and a query engine.

Someone with a llama-index application should be able to plug our hybrid search and our
cited answers into it without rewriting either: :func:`as_retriever` is a
``BaseRetriever`` (it goes into a ``RetrieverQueryEngine``, a ``QueryFusionRetriever``,
a router...) and :func:`as_query_engine` is a query engine whose ``query()`` runs our
whole answer pipeline (abstentions and verification included) and returns a llama-index
``Response``. Both are thin: every result comes from :meth:`Assistant.retrieve` or
:meth:`Assistant.ask`, converted by :func:`passage_node`, so the nodes carry our offsets
and metadata and ``assistant.document(doc_id).text[start:end] == node.text``.

llama-index costs about a second to import, so ``import ai_digest_qa`` does not import
this module; the package's ``as_retriever``/``as_query_engine`` import it on first use.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import Response
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.schema import (
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)
from pydantic import PrivateAttr

from .assistant import Assistant, default_assistant
from .records import Answer, Passage

# What llama-index may prepend to a node's text (it injects every metadata key not
# excluded, as "key: value" lines). A response synthesizer sees the title and section,
# as our own prompts show them (prompts.format_sources); ids, offsets, scores and the URL
# would only spend the LLM's context. Embedding text is the chunk alone, as our index
# embeds it, so re-embedding a node gives the vector its dense_score came from.
LLM_METADATA = ("title", "section")
EMBED_METADATA: tuple[str, ...] = ()


def passage_metadata(passage: Passage) -> dict[str, Any]:
    """A passage's provenance and scores, named as the :class:`Passage` fields."""
    return {
        "doc_id": passage.doc_id, "chunk_id": passage.chunk_id, "title": passage.title,
        "source": passage.source, "url": passage.url, "language": passage.language,
        "section": passage.section, "kind": passage.kind,
        "start": passage.start, "end": passage.end,
        "dense_score": passage.dense_score, "keyword_score": passage.keyword_score,
    }


def passage_node(passage: Passage) -> NodeWithScore:
    """``passage`` as a scored llama-index node (id = chunk_id, source = its document)."""
    metadata = passage_metadata(passage)
    node = TextNode(
        id_=passage.chunk_id, text=passage.text, metadata=metadata,
        start_char_idx=passage.start, end_char_idx=passage.end,
        excluded_llm_metadata_keys=[k for k in metadata if k not in LLM_METADATA],
        excluded_embed_metadata_keys=[k for k in metadata if k not in EMBED_METADATA],
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=passage.doc_id)},
    )
    return NodeWithScore(node=node, score=passage.score)


def answer_metadata(answer: Answer) -> dict[str, Any]:
    """What a :class:`Response` cannot otherwise say about our answer."""
    return {
        "mode": answer.mode, "abstained": answer.abstained,
        "abstention": answer.abstention, "notice": answer.notice,
        "language": answer.language,
        "citations": [{"marker": c.marker, "chunk_id": c.passage.chunk_id, "span": c.span}
                      for c in answer.citations],
    }


def answer_response(answer: Answer) -> Response:
    """``answer`` as a llama-index response: its text (with the [n] markers), the cited
    passages in citation order (all its passages when it cites none, as an abstention
    shows the nearest ones), each once, and :func:`answer_metadata`."""
    cited = {c.passage.chunk_id: c.passage for c in answer.citations}  # first marker first
    passages = list(cited.values()) or answer.passages
    return Response(response=answer.text, source_nodes=[passage_node(p) for p in passages],
                    metadata=answer_metadata(answer))


class AssistantRetriever(BaseRetriever):
    """:meth:`Assistant.retrieve` as a llama-index retriever. The async path is
    llama-index's default: it calls the sync one (our search is CPU-bound anyway)."""

    def __init__(self, assistant: Assistant, top_k: int = 5) -> None:
        super().__init__()
        self.assistant = assistant
        self.top_k = top_k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        passages = self.assistant.retrieve(query_bundle.query_str, self.top_k)
        return [passage_node(p) for p in passages]


class AssistantQueryEngine(CustomQueryEngine):
    """:meth:`Assistant.ask` as a llama-index query engine. ``aquery`` is
    llama-index's default: it calls the sync pipeline."""

    top_k: int | None = None
    llm: str | None = None
    _assistant: Assistant = PrivateAttr()

    def __init__(self, assistant: Assistant, top_k: int | None = None,
                 llm: str | None = None) -> None:
        super().__init__()  # fields set after: mypy types this as BaseQueryEngine's init
        self.top_k, self.llm, self._assistant = top_k, llm, assistant

    @property
    def assistant(self) -> Assistant:
        return self._assistant

    def custom_query(self, query_str: str) -> Response:
        return answer_response(self._assistant.ask(query_str, top_k=self.top_k,
                                                   llm=self.llm))


def as_retriever(top_k: int = 5, assistant: Assistant | None = None) -> AssistantRetriever:
    """Our hybrid search as a llama-index retriever of ``top_k`` nodes per query
    (``assistant`` defaults to :func:`default_assistant`)."""
    return AssistantRetriever(assistant if assistant is not None else default_assistant(),
                              top_k)


def as_query_engine(top_k: int | None = None, llm: str | None = None,
                    assistant: Assistant | None = None) -> AssistantQueryEngine:
    """Our cited-answer pipeline as a llama-index query engine. ``top_k`` and ``llm``
    ("local", "openai", "extractive") default to the assistant's configuration."""
    return AssistantQueryEngine(assistant if assistant is not None else default_assistant(),
                                top_k=top_k, llm=llm)
