"""Chunking that suits Chinese and English and keeps character offsets and sections.

llama-index's ``SentenceSplitter`` does the packing of sentences into chunks with
overlap. It falls short for us in three ways, which this module wraps:

* its sentence splitter (NLTK punkt) does not split Chinese at ``。！？；…``, and its
  sub-sentence fallback does not know ``，；：、``: we pass both as functions;
* it counts tiktoken tokens, tied to OpenAI vocabularies: we count one unit per CJK
  character or Latin word, which tracks the embedders' own token counts closely enough
  and does not change when the embedder does;
* it returns strings only: we split section by section and recover each chunk's exact
  character span in the document, so a citation can be highlighted in the source.
"""

from __future__ import annotations

import hashlib
import re

from .records import Chunk, Document

CHUNKER_VERSION = 1

_UNIT = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")
# A sentence ends after CJK terminal punctuation (with closing quotes), after ASCII
# .!?; followed by white space, or at a line break.
_SENTENCE_END = re.compile(
    r"[。！？；…]+[”’」』）)\]\"']*|[.!?;]+[\"')\]”’]*(?=\s)|\n+"
)
_SUB_SENTENCE = r"[^,.;:，；：、。？！]+[,.;:，；：、。？！]?|[,.;:，；：、。？！]"


def count_units(text: str) -> int:
    """Length in chunking units: one per CJK character, Latin word or symbol."""
    return len(_UNIT.findall(text))


def _units(text: str) -> list[str]:
    return _UNIT.findall(text)


def split_sentences(text: str) -> list[str]:
    """Split into sentences; the pieces concatenate back to ``text`` exactly."""
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if end > start:
            pieces.append(text[start:end])
            start = end
    if start < len(text):
        pieces.append(text[start:])
    return pieces


class Chunker:
    """Splits documents into overlapping, sentence-aligned chunks with offsets."""

    def __init__(self, chunk_size: int = 240, chunk_overlap: int = 40) -> None:
        if chunk_size < 16:
            raise ValueError(f"chunk_size must be at least 16 units, got {chunk_size}.")
        if not 0 <= chunk_overlap < chunk_size:
            raise ValueError("chunk_overlap must be >= 0 and smaller than chunk_size.")
        from llama_index.core.node_parser import SentenceSplitter

        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._splitter = SentenceSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            tokenizer=_units,
            paragraph_separator="\n\n",
            chunking_tokenizer_fn=split_sentences,
            secondary_chunking_regex=_SUB_SENTENCE,
            include_prev_next_rel=False,
        )

    @property
    def settings(self) -> dict[str, int]:
        return {"chunk_size": self.chunk_size, "chunk_overlap": self.chunk_overlap,
                "chunker_version": CHUNKER_VERSION}

    def _section_spans(self, document: Document) -> list[tuple[int, int, str | None]]:
        """``(start, end, heading)`` spans; a short section joins the next one.

        A bare heading or a two-line section would otherwise become a chunk too small
        to answer anything; the merged span is labelled with its longest part's heading.
        """
        bounds = sorted({0, *(s.start for s in document.sections), len(document.text)})
        headings = {s.start: s.heading for s in document.sections}
        spans: list[tuple[int, int, str | None]] = []
        group: list[tuple[int, int, str | None]] = []
        heading: str | None = None
        minimum = max(self.chunk_size // 4, 1)
        for begin, end in zip(bounds, bounds[1:]):
            heading = headings.get(begin, heading)
            group.append((begin, end, heading))
            if count_units(document.text[group[0][0]:end]) >= minimum:
                longest = max(group, key=lambda g: g[1] - g[0])
                spans.append((group[0][0], end, longest[2]))
                group = []
        if group:
            if spans:  # a short tail joins the previous span
                first, _, label = spans.pop()
                spans.append((first, group[-1][1], label))
            else:
                spans.append((group[0][0], group[-1][1], group[-1][2]))
        return spans

    def run(self, document: Document) -> list[Chunk]:
        """Chunks of ``document``, never crossing a (merged) section boundary."""
        chunks: list[Chunk] = []
        for begin, end, current_heading in self._section_spans(document):
            span = document.text[begin:end]
            if not span.strip():
                continue
            cursor = 0
            for piece in self._splitter.split_text(span):
                found = span.find(piece, cursor)
                if found < 0:  # the splitter normalised something; fall back to a search
                    found = span.find(piece)
                if found < 0:
                    raise RuntimeError(f"chunk not found in {document.doc_id}: {piece[:40]!r}")
                start = begin + found
                ordinal = len(chunks)
                digest = hashlib.sha256(
                    f"{document.doc_id}\0{start}\0{piece}".encode()
                ).hexdigest()[:16]
                chunks.append(Chunk(
                    chunk_id=f"{document.doc_id}::{ordinal}:{digest}",
                    doc_id=document.doc_id, text=piece, start=start,
                    end=start + len(piece), section=current_heading, ordinal=ordinal,
                ))
                cursor = found + 1
        return chunks
