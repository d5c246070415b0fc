"""The public records, in one place: documents and their chunks, retrieved passages,
citations and answers, with the Literal types that name their modes. Modules import
these from here rather than from each other, so a type never costs an import cycle."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

History = Sequence[tuple[str, str]]
# "baseline": the plain llama-index comparison (baseline.py).
AnswerMode = Literal["llm", "extractive", "abstained", "baseline"]


# Why an answer abstained: nothing retrieved, a name the index never mentions, no
# sentence with the question's constraints, relevance below the threshold, or the LLM
# judging the quotes no answer while the evidence was weak too.
AbstentionKind = Literal["no-passages", "unknown-name", "not-covered", "off-topic",
                         "model-not-found"]


@dataclass(frozen=True)
class Section:
    """A heading and the character offset where its section starts in the document text."""

    start: int
    heading: str


@dataclass(frozen=True)
class Document:
    """One cleaned document. ``text`` is what chunk offsets point into."""

    doc_id: str
    text: str
    title: str
    source: str
    url: str | None
    language: str
    kind: str
    sections: tuple[Section, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        payload = json.dumps(
            [self.text, self.title, self.url, self.language, self.kind,
             [(s.start, s.heading) for s in self.sections], self.metadata],
            ensure_ascii=False, sort_keys=True,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def to_record(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id, "text": self.text, "title": self.title,
            "source": self.source, "url": self.url, "language": self.language,
            "kind": self.kind, "sections": [[s.start, s.heading] for s in self.sections],
            "metadata": self.metadata,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Document:
        return cls(
            doc_id=record["doc_id"], text=record["text"], title=record["title"],
            source=record["source"], url=record["url"], language=record["language"],
            kind=record["kind"],
            sections=tuple(Section(int(s), str(h)) for s, h in record["sections"]),
            metadata=dict(record.get("metadata") or {}),
        )


@dataclass(frozen=True)
class Chunk:
    """A span of a document: ``document.text[start:end] == text``."""

    chunk_id: str
    doc_id: str
    text: str
    start: int
    end: int
    section: str | None
    ordinal: int

    @property
    def text_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with where it comes from. ``source_text[start:end] == text``.

    ``start``/``end`` are character offsets into the document's cleaned text
    (``Assistant.document(doc_id).text``). ``score`` is the fused (or reranked) score;
    ``dense_score`` (cosine) and ``keyword_score`` (BM25) are the raw evidence, None
    when that retriever did not return the chunk.
    """

    text: str
    score: float
    title: str
    source: str
    url: str | None
    doc_id: str
    chunk_id: str
    start: int
    end: int
    language: str
    section: str | None = None
    kind: str = "document"
    dense_score: float | None = None
    keyword_score: float | None = None


@dataclass(frozen=True)
class Citation:
    """A marker in the answer text (``[1]``) and the passage it refers to.

    ``span`` is the (start, end) of the passage text that supports the answer sentences
    carrying the marker: ``passage.text[start:end]`` (the quote the answer rests on);
    None when no sentence shares a term with them.
    """

    marker: str
    passage: Passage
    span: tuple[int, int] | None = None


@dataclass(frozen=True)
class Retrieval:
    """The passages found for a question, streamed before the answer is generated."""

    question: str
    standalone_question: str
    passages: list[Passage]
    seconds: float


@dataclass(frozen=True)
class Answer:
    """An answer with the passages it rests on.

    ``mode`` says what produced the text; ``notice`` explains a fallback (LLM failure,
    timeout, unverifiable answer) or is ``"stopped"``. An abstention's ``abstention``
    says why (:data:`AbstentionKind`); its passages are the nearest ones, related but
    not an answer. ``relevance`` is the calibrated probability that the sources answer.
    ``timings`` holds seconds for ``retrieval``, ``first_token`` and ``total``.
    """

    question: str
    text: str
    citations: list[Citation]
    abstained: bool
    language: str
    llm: str
    mode: AnswerMode
    timings: dict[str, float] = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)
    standalone_question: str = ""
    notice: str | None = None
    abstention: AbstentionKind | None = None
    relevance: float | None = None
