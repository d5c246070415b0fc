"""Hybrid retrieval: dense + keyword candidates, fused by reciprocal rank, optionally reranked.

Each step is a small component with a validated ``__init__`` and one ``run()``
(Haystack 2.x style), so steps can be tested, measured and replaced one by one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from . import backends
from .config import Config
from .embeddings import Embedder
from .evidence import title_head
from .glossary import expand_query
from .index import IndexStore
from .records import Passage
from .textutils import detect_language

Ranked = list[tuple[str, float]]


class DenseRetriever:
    """Nearest chunks by embedding similarity, for one or more phrasings of a question."""

    def __init__(self, store: IndexStore, embedder: Embedder, top_n: int = 30) -> None:
        if top_n < 1:
            raise ValueError("top_n must be >= 1")
        if embedder.dimension != store.manifest.dimension:
            raise ValueError(
                f"embedder dimension {embedder.dimension} does not match the index "
                f"({store.manifest.dimension}); rebuild the index."
            )
        self.store, self.embedder, self.top_n = store, embedder, top_n

    def run(self, query: str) -> dict[str, Ranked]:
        """Ranked hits per chunk language (see :meth:`by_language`)."""
        vector = self.embedder.embed_queries([query])[0]
        return self.by_language(self.store.dense_search(vector, self.top_n * 4))

    def by_language(self, hits: Ranked) -> dict[str, Ranked]:
        """Split hits into one list per chunk language, each cut to ``top_n``.

        Multilingual embedders score passages in the question's language higher than
        equally relevant passages in the other language, so an English question's best
        Chinese passage can rank below many loosely related English ones. Ranking each
        language separately before fusion gives the best match in each language a top
        rank.
        """
        languages = self.store.chunk_languages
        groups: dict[str, Ranked] = {}
        for chunk_id, score in hits:
            groups.setdefault(languages.get(chunk_id, "en"), []).append((chunk_id, score))
        return {language: ranked[: self.top_n] for language, ranked in groups.items()}


class KeywordRetriever:
    """BM25 over jieba tokens; chunks that share no term with the question are dropped.

    ``backend`` is a keyword search of the registry (backends.py): "local" is the
    index's own bm25s index (stemmed, jieba); "milvus" the vector store's full-text
    search, which only a vector store with that capability has.
    """

    def __init__(self, store: IndexStore, top_n: int = 30, backend: str = "local") -> None:
        if top_n < 1:
            raise ValueError("top_n must be >= 1")
        entry = backends.lookup("keyword_search", backend)
        backends.require(entry, store.vectors.kind)
        self.store, self.top_n, self.backend = store, top_n, backend
        self._search: Callable[[IndexStore, str, int], Ranked] = entry.factory()

    def run(self, query: str) -> Ranked:
        return self._search(self.store, query, self.top_n)


class ReciprocalRankFusion:
    """Fuse ranked lists: score = sum over lists of weight / (k + rank).

    Our own component rather than llama-index's ``QueryFusionRetriever``: that one
    needs an LLM object even when it generates no queries, fuses whole retrievers
    rather than ranked id lists, and has no per-list weights.
    """

    def __init__(self, k: int = 60) -> None:
        if k < 1:
            raise ValueError("k must be >= 1")
        self.k = k

    def run(self, ranked_lists: Sequence[Ranked], weights: Sequence[float] | None = None) -> Ranked:
        weights = list(weights) if weights is not None else [1.0] * len(ranked_lists)
        if len(weights) != len(ranked_lists):
            raise ValueError("one weight per ranked list")
        fused: dict[str, float] = {}
        for ranked, weight in zip(ranked_lists, weights):
            for rank, (item, _score) in enumerate(ranked, start=1):
                fused[item] = fused.get(item, 0.0) + weight / (self.k + rank)
        return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


class CrossEncoderReranker:
    """Rescore passages with a sentence-transformers ``CrossEncoder`` (name or local path)."""

    def __init__(self, model: str) -> None:
        if not model:
            raise ValueError("a CrossEncoder model name or path is required")
        from sentence_transformers import CrossEncoder

        self.model_name = model
        self._model = CrossEncoder(model, device="cpu")

    def run(self, question: str, passages: Sequence[Passage]) -> list[Passage]:
        if not passages:
            return []
        scores = self._model.predict([(question, p.text) for p in passages],
                                     show_progress_bar=False)
        rescored = [replace(p, score=float(s)) for p, s in zip(passages, scores)]
        return sorted(rescored, key=lambda p: -p.score)


class HybridRetriever:
    """Question -> passages: expansion, dense + keyword search, fusion, optional rerank."""

    def __init__(self, store: IndexStore, embedder: Embedder, config: Config,
                 reranker: CrossEncoderReranker | None = None) -> None:
        self.store = store
        self.config = config
        self.dense = DenseRetriever(store, embedder, config.dense_candidates)
        self.keyword = KeywordRetriever(store, config.keyword_candidates, config.keyword_search)
        self.fusion = ReciprocalRankFusion(config.rrf_k)
        self.reranker = reranker
        self._heads: tuple[tuple[int, int, int],
                           list[tuple[re.Pattern[str], str, str]]] | None = None

    def run(self, question: str, top_k: int) -> list[Passage]:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        config = self.config
        same = detect_language(question)
        other = "en" if same == "zh" else "zh"
        dense = self.dense.run(question)
        keyword = self.keyword.run(question)
        other_lists = [dense.get(other, [])]
        expansion_lists: list[Ranked] = []
        if config.query_expansion:
            # The glossary's other-language terms only reorder the other language's
            # candidates; they add no votes against passages in the question's language.
            for expansion in expand_query(question):
                expansion_lists += [self.dense.run(expansion).get(other, []),
                                    [h for h in self.keyword.run(expansion)
                                     if self.store.chunk_languages.get(h[0]) == other]]
        if expansion_lists:
            other_ranked = self.fusion.run(
                [*other_lists, *expansion_lists],
                [1.0] + [config.expansion_weight] * len(expansion_lists))
        else:
            other_ranked = other_lists[0]
        fused = self.fusion.run(
            [dense.get(same, []), other_ranked[: self.dense.top_n], keyword],
            [config.dense_weight, config.dense_weight, config.keyword_weight])
        fused = self._reserve_other_language(fused, other_ranked, other, top_k)
        fused = self._reserve_named(fused, question, top_k)
        dense_best = _best_scores(list(dense.values()))
        keyword_best = _best_scores([keyword])
        wanted = self.config.reranker_candidates if self.reranker else top_k
        # A Milvus collection is shared: while an update (an upload) is being applied, it
        # can return chunks this index generation does not have yet. They are skipped.
        known = [(c, s) for c, s in fused if c in self.store.chunks]
        passages = [self._passage(chunk_id, score, dense_best.get(chunk_id),
                                  keyword_best.get(chunk_id))
                    for chunk_id, score in known[:max(wanted, top_k)]]
        if self.reranker:
            passages = self.reranker.run(question, passages)
        return passages[:top_k]

    def _reserve_other_language(self, fused: Ranked, other_ranked: Ranked, other: str,
                                top_k: int) -> Ranked:
        """Make sure the best other-language candidates reach the top ``top_k``.

        Dense and keyword scores favour the question's own language, so without this an
        English question whose answer is only in a Chinese article would see English
        abstracts only. ``cross_language_slots`` of the ``top_k`` places go to the best
        other-language candidates when fusion left them out.
        """
        slots = min(self.config.cross_language_slots, top_k - 1, len(other_ranked))
        if slots <= 0:
            return fused
        head_ids = {item for item, _ in fused[:top_k]}
        missing = [item for item, _ in other_ranked[:slots] if item not in head_ids]
        languages = self.store.chunk_languages
        return _place(fused, top_k, missing, lambda item: languages.get(item) == other)

    def _reserve_named(self, fused: Ranked, question: str, top_k: int) -> Ranked:
        """Make sure a record the question names by its title's head ("ABLE-NeRF",
        "Zephyr") has a chunk in the top ``top_k``: its best-ranked one, else its first.
        An article that retells the paper repeats the name more often than the paper's
        own abstract, so keyword and dense scores alone can leave the record out ("Which
        metrics does ABLE-NeRF beat Ref-NeRF on?" saw four Chinese passages)."""
        named = named_documents(question, self._name_heads())[
            : max(0, min(NAMED_SLOTS, top_k - 1))]
        if not named:
            return fused
        chunks = self.store.chunks
        doc_of = {c: chunks[c].chunk.doc_id for c, _ in fused if c in chunks}
        present = {doc_of.get(c) for c, _ in fused[:top_k]}
        best: dict[str, str] = {}
        for chunk_id, _ in fused:  # each record's best-ranked chunk
            best.setdefault(doc_of.get(chunk_id, ""), chunk_id)
        picks = [best.get(doc, first) for doc, first in named if doc not in present]
        named_ids = {doc for doc, _ in named}
        return _place(fused, top_k, picks, lambda item: doc_of.get(item) in named_ids)

    def _name_heads(self) -> list[tuple[re.Pattern[str], str, str]]:
        """:func:`name_heads` of the store, computed again only when its documents or
        chunks change (questions are many, uploads few)."""
        key = (id(self.store.documents), len(self.store.documents), len(self.store.chunks))
        if self._heads is None or self._heads[0] != key:
            self._heads = (key, name_heads(self.store))
        return self._heads[1]

    def _passage(self, chunk_id: str, score: float, dense: float | None,
                 keyword: float | None) -> Passage:
        chunk = self.store.chunks[chunk_id].chunk
        document = self.store.documents[chunk.doc_id]
        pages = document.pages_of(chunk.start, chunk.end)
        return Passage(
            text=chunk.text, score=score, title=document.title, source=document.source,
            url=document.url, doc_id=document.doc_id, chunk_id=chunk.chunk_id,
            start=chunk.start, end=chunk.end,
            language=detect_language(chunk.text) if document.kind != "paper" else document.language,
            section=chunk.section, kind=document.kind, dense_score=dense, keyword_score=keyword,
            page=pages[0] if pages else None, pages=pages,
            page_breaks=document.page_starts[pages[0]:pages[1]] if pages else (),
        )


# Records named in one question that get a reserved place: a question rarely names more
# than two ("Is Vim faster than DeiT?"); more would crowd out the passages that answer.
NAMED_SLOTS = 2
# A title's head longer than this is a phrase, not a name.
_LONGEST_NAME = 40


_SEPARATOR = r"[\s\-‐-―_]"  # spaces, hyphens and dashes, underscores


def _compact(text: str) -> str:
    """``text`` without spaces and hyphens, case kept."""
    return re.sub(_SEPARATOR + "+", "", text)


def _spelled(head: str) -> re.Pattern[str]:
    """``head`` as a question may spell it: case kept, spaces and hyphens optional
    ("ABLE-NeRF", "ABLE NeRF"), and not inside a longer word ("BERT" in "RoBERTa"; and
    "position" is not the head "Position" of "Position: ...")."""
    body = (_SEPARATOR + "*").join(re.escape(ch) for ch in _compact(head))
    return re.compile(rf"(?<![A-Za-z0-9]){body}(?![a-z])")


def name_heads(store: IndexStore) -> list[tuple[re.Pattern[str], str, str]]:
    """(how the title head is spelled, document id, its first chunk id) for every document
    whose head may be a name, longest first."""
    first: dict[str, str] = {}
    for chunk_id, record in store.chunks.items():
        first.setdefault(record.chunk.doc_id, chunk_id)
    heads = [(title_head(document.title or ""), doc_id) for doc_id, document
             in store.documents.items() if doc_id in first]
    heads = [(h, d) for h, d in heads if 4 <= len(_compact(h)) <= _LONGEST_NAME]
    heads.sort(key=lambda entry: -len(_compact(entry[0])))
    return [(_spelled(head), doc_id, first[doc_id]) for head, doc_id in heads]


def named_documents(question: str, heads: Sequence[tuple[re.Pattern[str], str, str]]
                    ) -> list[tuple[str, str]]:
    """(document id, first chunk id) of the documents whose title head the question spells
    out, longest head first; a head found inside a longer named one is left out ("Mamba"
    in "Vision Mamba")."""
    kept: list[tuple[str, str]] = []
    spans: list[tuple[int, int]] = []
    for spelled, doc_id, first in heads:
        match = spelled.search(question)
        if match is None or any(s <= match.start() and match.end() <= e for s, e in spans):
            continue
        spans.append(match.span())
        kept.append((doc_id, first))
    return kept


def _place(fused: Ranked, top_k: int, picks: Sequence[str],
           keep: Callable[[str], bool]) -> Ranked:
    """``fused`` with ``picks`` in its top ``top_k``, each replacing the lowest-ranked
    entry there that ``keep`` does not protect; a pick keeps its fused score (0.0 if it
    had none) and the head is ranked again."""
    if not picks:
        return fused
    head = list(fused[:top_k])
    scores = dict(fused)
    replaceable = [i for i in range(len(head) - 1, -1, -1) if not keep(head[i][0])]
    for index, item in zip(replaceable, picks):
        head[index] = (item, scores.get(item, 0.0))
    head.sort(key=lambda pair: -pair[1])
    chosen = {item for item, _ in head}
    return head + [pair for pair in fused if pair[0] not in chosen]


def _best_scores(ranked_lists: Sequence[Ranked]) -> dict[str, float]:
    best: dict[str, float] = {}
    for ranked in ranked_lists:
        for item, score in ranked:
            if item not in best or score > best[item]:
                best[item] = score
    return best
