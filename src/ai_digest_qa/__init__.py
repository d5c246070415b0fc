"""ai-digest-qa: bilingual question answering over AI digest articles and papers, offline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _offline  # noqa: F401  (must run before any model library is imported)
from .assistant import Assistant, QuestionError, ask, ask_stream, default_assistant, retrieve
from .config import Config, ConfigError, load_config
from .records import Answer, Citation, Document, Passage, Retrieval

if TYPE_CHECKING:
    from .llamaindex import AssistantQueryEngine, AssistantRetriever

__all__ = [
    "Answer",
    "Assistant",
    "Citation",
    "as_query_engine",
    "as_retriever",
    "ask",
    "ask_stream",
    "Config",
    "ConfigError",
    "Document",
    "Passage",
    "QuestionError",
    "Retrieval",
    "default_assistant",
    "load_config",
    "retrieve",
]
__version__ = "0.1.0"


# llama-index takes about a second to import: these import it on first use, not here.
def as_retriever(top_k: int = 5, assistant: Assistant | None = None) -> AssistantRetriever:
    """Our search as a llama-index retriever (see :mod:`ai_digest_qa.llamaindex`)."""
    from .llamaindex import as_retriever

    return as_retriever(top_k, assistant)


def as_query_engine(top_k: int | None = None, llm: str | None = None,
                    assistant: Assistant | None = None) -> AssistantQueryEngine:
    """Our cited answers as a llama-index query engine (see :mod:`ai_digest_qa.llamaindex`)."""
    from .llamaindex import as_query_engine

    return as_query_engine(top_k, llm, assistant)
