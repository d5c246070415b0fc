"""Bilingual query expansion with a glossary of AI and tech-news terms.

The small multilingual embedder matches an English question to Chinese text poorly
(and the reverse), and keyword search cannot match across scripts at all. Expanding
a question with the other language's terms for the concepts it names gives both
retrievers something to match: "Which dataset was taken down over copyright?"
also searches "数据集 版权".

The glossary (``data/glossary.tsv``) is general vocabulary, one concept a line:
English variants, a tab, Chinese variants. English variants match by word stem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .textutils import detect_language, stem

_EN_WORD = re.compile(r"[a-z0-9][a-z0-9\-]*")


@dataclass(frozen=True)
class Glossary:
    english: dict[tuple[str, ...], tuple[str, ...]]  # stemmed phrase -> Chinese terms
    chinese: dict[str, tuple[str, ...]]  # Chinese term -> English terms

    def to_chinese(self, question: str) -> list[str]:
        words = [stem(w) for w in _EN_WORD.findall(question.lower())]
        longest = max((len(k) for k in self.english), default=1)
        found: list[str] = []
        i = 0
        while i < len(words):
            for size in range(min(longest, len(words) - i), 0, -1):
                terms = self.english.get(tuple(words[i:i + size]))
                if terms:
                    found.extend(t for t in terms if t not in found)
                    i += size
                    break
            else:
                i += 1
        return found

    def to_english(self, question: str) -> list[str]:
        found: list[str] = []
        remaining = question
        for term in sorted(self.chinese, key=len, reverse=True):
            if term in remaining:
                remaining = remaining.replace(term, " ")
                found.extend(t for t in self.chinese[term] if t not in found)
        return found


def parse_glossary(text: str) -> Glossary:
    english: dict[tuple[str, ...], list[str]] = {}
    chinese: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            en_part, zh_part = line.split("\t")
        except ValueError:
            raise ValueError(f"glossary line {number}: expected 'english<TAB>chinese'") from None
        en_terms = [t.strip() for t in en_part.split("|") if t.strip()]
        zh_terms = [t.strip() for t in zh_part.split("|") if t.strip()]
        for term in en_terms:
            key = tuple(stem(w) for w in _EN_WORD.findall(term.lower()))
            english.setdefault(key, []).extend(t for t in zh_terms if t not in english.get(key, []))
        for term in zh_terms:
            if re.search(r"[\u4e00-\u9fff]", term):
                chinese.setdefault(term, []).extend(
                    t for t in en_terms[:2] if t not in chinese.get(term, []))
    return Glossary({k: tuple(v) for k, v in english.items()},
                    {k: tuple(v) for k, v in chinese.items()})


@lru_cache(maxsize=1)
def default_glossary() -> Glossary:
    return parse_glossary(glossary_text())


@lru_cache(maxsize=1)
def glossary_text() -> str:
    """The text of ``data/glossary.tsv`` (hashed by what caches embeddings of it)."""
    return resources.files("ai_digest_qa").joinpath("data/glossary.tsv").read_text("utf-8")


# A run of Latin-script words (with the spaces, dots and dashes inside it): in a
# Chinese question, the names it writes in English ("Adam", "4D Gaussian Splatting").
_LATIN_RUN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .\-+/]*[A-Za-z0-9+]|[A-Za-z]")


def expand_query(question: str, glossary: Glossary | None = None) -> list[str]:
    """Extra phrasings of ``question`` in the other language (empty when none apply).

    A Chinese question's Latin-script words are already English: its English phrasing
    carries them beside the glossary's translations, since they are what an English
    abstract shares with it ("Adam论文…的变体" searches "Adam paper", not "paper").
    """
    glossary = glossary or default_glossary()
    if detect_language(question) == "zh":
        terms = [run.strip() for run in _LATIN_RUN.findall(question)]
        terms += [t for t in glossary.to_english(question) if t not in terms]
    else:
        terms = glossary.to_chinese(question)
    return [" ".join(terms)] if terms else []
