"""ai-digest-qa: bilingual question answering over AI digest articles and papers, offline."""

from . import _offline  # noqa: F401  (must run before any model library is imported)
from .assistant import Assistant, QuestionError, ask, ask_stream, default_assistant, retrieve
from .config import Config, ConfigError, load_config
from .records import Answer, Citation, Document, Passage, Retrieval

__all__ = [
    "Answer",
    "Assistant",
    "Citation",
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
