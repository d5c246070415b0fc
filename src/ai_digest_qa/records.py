"""The public records, in one place: documents and their chunks, retrieved passages,
citations and answers, with the Literal types that name their modes, and the rows of the
evaluation and the benchmark. Modules import
these from here rather than from each other, so a type never costs an import cycle."""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

History = Sequence[tuple[str, str]]
# "baseline": the plain llama-index comparison (baseline.py).
# "quoted": the sources' own sentences, which the model judged to answer (answer.py).
AnswerMode = Literal["llm", "quoted", "extractive", "abstained", "baseline"]


# Why an answer abstained: nothing retrieved, a name the index never mentions, no
# sentence with the question's constraints, relevance below the threshold, or the LLM
# judging the quotes no answer while the evidence was weak too.
AbstentionKind = Literal["no-passages", "unknown-name", "not-covered", "off-topic",
                         "model-not-found"]


class PassageRecord(TypedDict):
    """A passage as JSON (:meth:`Passage.to_record`): for the page, the API and --json."""

    title: str
    url: str | None
    source: str
    page: int | None
    pages: list[int] | None
    doc_id: str
    chunk_id: str
    start: int
    end: int
    language: str
    section: str | None
    score: float
    text: str


class CitationRecord(TypedDict):
    """A citation as the page keeps it: its marker's number, the quote's span."""

    number: int
    chunk_id: str
    span: list[int] | None
    page: int | None


class ChatTurn(TypedDict):
    """One turn of the page's conversation, as Gradio keeps it in the session state
    (plain JSON, so a dict). The first four are there from the start; the rest arrive
    as the answer does (``final`` and after) or mark a turn that failed (``error``)."""

    question: str
    answer: str
    language: str
    passages: list[PassageRecord]
    mode: NotRequired[str]  # the mode the user picked (local, openai, extractive)
    error: NotRequired[bool]
    final: NotRequired[bool]
    llm: NotRequired[str]
    answer_mode: NotRequired[AnswerMode]
    seconds: NotRequired[float]
    abstained: NotRequired[bool]
    stopped: NotRequired[bool]
    notice: NotRequired[str | None]
    citations: NotRequired[list[CitationRecord]]
    note: NotRequired[str | None]


# A PDF's page section before pages were recorded (see Document.page_starts).
_LEGACY_PAGE = re.compile(r"p\. (\d+)")


def display_path(source: str, root: Path) -> str:
    """Corpus files by their project path, user files by their full path (for display)."""
    try:
        return str(Path(source).relative_to(root))
    except ValueError:
        return source


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

    @cached_property  # read for every passage: parse the metadata once
    def page_starts(self) -> tuple[int, ...]:
        """Where each page starts in ``text`` (item ``n - 1`` for page ``n``); empty for a
        document without pages (anything but a PDF).

        Read from ``metadata["page_starts"]``; a PDF indexed before pages were recorded
        has its pages as ``p. N`` sections instead, which give the same starts.
        """
        starts = self.metadata.get("page_starts")
        if isinstance(starts, list):
            return tuple(int(start) for start in starts)
        if not self.source.lower().endswith(".pdf") or not self.sections:
            return ()
        numbered = [(_LEGACY_PAGE.fullmatch(s.heading), s.start) for s in self.sections]
        if not all(match for match, _ in numbered):
            return ()
        known = {int(match.group(1)): start for match, start in numbered if match}
        # A page missing from the sections was empty: it starts where the next one does.
        return tuple(min([known[n] for n in known if n >= page], default=len(self.text))
                     for page in range(1, max(known) + 1))

    def page_of(self, offset: int) -> int | None:
        """The 1-based page that the character at ``offset`` of ``text`` was printed on;
        None for a document without pages."""
        starts = self.page_starts
        return max(1, bisect_right(starts, offset)) if starts else None

    def pages_of(self, start: int, end: int) -> tuple[int, int] | None:
        """The first and last page of ``text[start:end]`` (white space at either end, such
        as the blank line between two pages, does not count); None without pages."""
        if not self.page_starts:
            return None
        segment = self.text[start:end]
        if segment.strip():
            start += len(segment) - len(segment.lstrip())
            end -= len(segment) - len(segment.rstrip())
        first, last = self.page_of(start), self.page_of(max(start, end - 1))
        assert first is not None and last is not None
        return first, last

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

    A PDF passage has ``page``, its first page (1-based), and ``pages``, its first and
    last (equal for a passage on one page); ``page_breaks`` are the document offsets
    where its later pages start, so that :meth:`page_at` maps any offset inside it.
    All three are None (or empty) for documents without pages.
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
    page: int | None = None
    pages: tuple[int, int] | None = None
    page_breaks: tuple[int, ...] = ()

    def to_record(self, root: Path) -> PassageRecord:
        """The passage as JSON for the page, the API and ``--json``; corpus files by their
        project path (``root`` is the project folder)."""
        return {"title": self.title, "url": self.url,
                "source": display_path(self.source, root),
                "page": self.page, "pages": list(self.pages) if self.pages else None,
                "doc_id": self.doc_id, "chunk_id": self.chunk_id, "start": self.start,
                "end": self.end, "language": self.language, "section": self.section,
                "score": self.score, "text": self.text}

    def page_at(self, offset: int) -> int | None:
        """The page of the document offset ``offset`` (``start <= offset < end``)."""
        if self.pages is None:
            return self.page
        return min(self.pages[0] + bisect_right(self.page_breaks, offset), self.pages[1])


@dataclass(frozen=True)
class Citation:
    """A marker in the answer text (``[1]``) and the passage it refers to.

    ``span`` is the (start, end) of the passage text that supports the answer sentences
    carrying the marker: ``passage.text[start:end]`` (the quote the answer rests on);
    None when no sentence shares a term with them. ``page`` is the page that quote starts
    on (the passage's first page without a span; None without pages), derived here.
    """

    marker: str
    passage: Passage
    span: tuple[int, int] | None = None
    page: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        passage = self.passage
        page = (passage.page_at(passage.start + self.span[0]) if self.span is not None
                else passage.page)
        object.__setattr__(self, "page", page)


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


# --- evaluation and benchmark rows -------------------------------------------------------
# One row per question or corpus size. The evaluation's rows are written by --json as
# dataclasses.asdict gives them; the benchmark's by their to_json, which keeps bench.json's
# keys ("recall@10"; optional figures only when measured).


@dataclass(frozen=True)
class RetrievalRow:
    """How one question was retrieved (``evaluation.RetrievalReport.details``)."""

    id: str
    type: str
    question: str
    rank: int | None  # of the first passage holding the evidence, from 1; None: not found
    top: list[str]  # the retrieved passages' file names, best first
    seconds: float


@dataclass(frozen=True)
class AnswerRow:
    """How one question was answered (``evaluation.AnswerReport.details``)."""

    id: str
    type: str
    split: str
    kinds: tuple[str, ...]
    language: str
    answerable: bool
    correct: bool
    verdict: str  # correct / wrong / abstained (answerable); abstained / answered
    abstained: bool
    mode: str
    seconds: float
    first_token: float | None
    citations: int
    precise_citations: int
    answer: str
    abstention: str | None = None
    relevance: float | None = None
    notice: str | None = None


# p50/p95/mean in milliseconds and the number of timings ("n", "p50_ms", ...).
Latency = dict[str, float]


@dataclass(frozen=True)
class BenchAnswerRow:
    """One answer of ``bench.bench_answers``: our streamed timings, and raw llama.cpp's
    on the same prompt (``raw``) and on it focused (``raw_focused``) for a local model."""

    question: str
    first_token_s: float | None
    total_s: float
    streamed_pieces: int
    mode: str | None
    tokens_per_s: float | None = None  # None: fewer than two pieces streamed
    raw: dict[str, Any] | None = None  # None: not a local runtime, or nothing retrieved
    raw_focused: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """As in bench.json: the three optional figures only when they were measured."""
        data = asdict(self)
        for key in ("tokens_per_s", "raw", "raw_focused"):
            if data[key] is None:
                del data[key]
        return data


@dataclass(frozen=True)
class ScaleRow:
    """Vector search at one synthetic corpus size (``bench.bench_scale``): exact search
    against the FAISS index chosen for that size."""

    chunks: int
    index: str
    build_seconds: float
    exact: Latency
    chosen: Latency
    recall: float  # of the chosen index against exact search, at k
    index_mb: float
    rss_growth_mb: float
    speedup_vs_exact: float
    k: int = 10

    def to_json(self) -> dict[str, Any]:
        return {"chunks": self.chunks, "index": self.index,
                "build_seconds": self.build_seconds, "exact": dict(self.exact),
                "chosen": dict(self.chosen), f"recall@{self.k}": self.recall,
                "index_mb": self.index_mb, "rss_growth_mb": self.rss_growth_mb,
                "speedup_vs_exact": self.speedup_vs_exact}


@dataclass(frozen=True)
class MilvusScaleRow:
    """Milvus Lite against FAISS at one synthetic corpus size
    (``bench.bench_milvus_scale``)."""

    chunks: int
    faiss_index: str
    milvus_index: str
    faiss: Latency
    milvus: Latency
    faiss_recall: float  # against exact search, at k
    milvus_recall: float
    milvus_insert_seconds: float
    milvus_index_seconds: float
    p50_ratio_milvus_to_faiss: float
    k: int = 10

    def to_json(self) -> dict[str, Any]:
        return {"chunks": self.chunks, "faiss_index": self.faiss_index,
                "milvus_index": self.milvus_index, "faiss": dict(self.faiss),
                "milvus": dict(self.milvus), f"faiss_recall@{self.k}": self.faiss_recall,
                f"milvus_recall@{self.k}": self.milvus_recall,
                "milvus_insert_seconds": self.milvus_insert_seconds,
                "milvus_index_seconds": self.milvus_index_seconds,
                "p50_ratio_milvus_to_faiss": self.p50_ratio_milvus_to_faiss}


@dataclass(frozen=True)
class IntegrityRow:
    """What verifying the stored files of an index of ``chunks`` chunks costs
    (``bench.bench_integrity``), with sha256's in-memory speed measured in the same run."""

    chunks: int
    stored_mb: float  # every file the manifest has a checksum for
    deferred_mb: float  # of those, checked after load (0: all before serving)
    before_serving_seconds: float
    after_load_seconds: float
    file_mb_per_s: float  # stored_mb over both times
    raw_sha256_mb_per_s: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
