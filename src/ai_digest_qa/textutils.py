"""Language detection and a Chinese-aware keyword tokenizer shared by indexing and search."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from functools import lru_cache
from importlib import resources
from typing import Any

# Bump whenever keyword_tokens()'s code changes: indexes record it and re-tokenize their
# chunks (a change of its data, the stoplist, is caught by KEYWORD_TOKENIZER_DATA).
KEYWORD_TOKENIZER_VERSION = 2

# The CJK ideograph ranges (extension A, unified, compatibility): the one definition.
CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_CHAR = re.compile(f"[{CJK_RANGES}]")
_LATIN_LETTER = re.compile(r"[A-Za-z]")
_WORD = re.compile(rf"[\w{CJK_RANGES}]+")
_jieba_lock = threading.Lock()


def parse_word_list(text: str) -> frozenset[str]:
    """The words of a word-list data file: one a line; blank lines and lines starting
    with ``#`` are skipped."""
    return frozenset(line.strip() for line in text.splitlines()
                     if line.strip() and not line.lstrip().startswith("#"))


def word_list_hash(words: frozenset[str]) -> str:
    """sha256 of ``words`` (sorted, one a line): the same for the same words, whatever
    the file's order and comments."""
    return hashlib.sha256("\n".join(sorted(words)).encode("utf-8")).hexdigest()


# Function words that carry no topic (data/stopwords.txt); both languages share one
# keyword index. Read once, at import.
STOPWORDS = parse_word_list(
    resources.files("ai_digest_qa").joinpath("data/stopwords.txt").read_text("utf-8"))
# What keyword_tokens() drops, as recorded by indexes beside KEYWORD_TOKENIZER_VERSION: a
# changed stoplist re-tokenizes their chunks like a new tokenizer version.
KEYWORD_TOKENIZER_DATA = word_list_hash(STOPWORDS)


def cjk_ratio(text: str) -> float:
    """Share of CJK characters among the letters of ``text`` (0.0 for no letters)."""
    cjk = len(CJK_CHAR.findall(text))
    latin = len(_LATIN_LETTER.findall(text))
    # A Chinese character carries about as much as a short English word.
    latin_words = latin / 5.0
    total = cjk + latin_words
    return cjk / total if total else 0.0


def detect_language(text: str) -> str:
    """``"zh"`` when the text is mostly Chinese, else ``"en"``."""
    return "zh" if cjk_ratio(text) >= 0.3 else "en"


@lru_cache(maxsize=1)
def _jieba() -> Any:  # the configured jieba module (untyped library)
    import jieba

    jieba.setLogLevel(logging.WARNING)
    with _jieba_lock:
        jieba.initialize()
    return jieba


@lru_cache(maxsize=1)
def _stemmer() -> Any:  # a PyStemmer Stemmer (untyped library)
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """English (Snowball) stem of a lower-case word; other scripts pass through."""
    if not word.isascii():
        return word
    return _stemmer().stemWord(word)


def keyword_tokens(text: str) -> list[str]:
    """Tokens for the keyword index: jieba words for Chinese, lower-cased words otherwise.

    jieba's search mode also emits the shorter words inside long ones, so "偏好优化"
    matches "优化"; English words are stemmed, so "APIs" matches "API".
    """
    tokens: list[str] = []
    jieba = _jieba()
    for piece in _WORD.findall(text.lower()):
        if CJK_CHAR.search(piece):
            words = jieba.lcut_for_search(piece)
        else:
            words = [piece]
        for word in words:
            word = word.strip()
            if not word or word in STOPWORDS:
                continue
            if len(word) == 1 and not CJK_CHAR.match(word) and not word.isdigit():
                continue
            tokens.append(stem(word))
    return tokens


def jieba_words(text: str) -> list[str]:
    """jieba's words of ``text`` (precise mode: "大模型透明度" is 大模型 / 透明度)."""
    return [w for w in _jieba().lcut(text) if w.strip()]


def page_label(first: int | None, last: int | None = None) -> str:
    """A page for display: ``p. 7``, ``p. 7–8`` for a range, or "" without a page."""
    if first is None:
        return ""
    return f"p. {first}" if last is None or last == first else f"p. {first}–{last}"
