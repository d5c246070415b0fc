"""The keyword tokenizer's stoplist: a data file, read once, hashed by its words."""

import hashlib
from importlib import resources

from ai_digest_qa import textutils
from ai_digest_qa.textutils import (
    KEYWORD_TOKENIZER_DATA,
    STOPWORDS,
    keyword_tokens,
    parse_word_list,
    word_list_hash,
)


def test_stopwords_are_the_words_of_the_data_file():
    text = resources.files("ai_digest_qa").joinpath("data/stopwords.txt").read_text("utf-8")
    assert text.startswith("#")  # the header says what the list is
    lines = [line.strip() for line in text.splitlines()]
    words = [line for line in lines if line and not line.startswith("#")]
    assert STOPWORDS == frozenset(words) and len(words) == len(set(words))
    assert all(w == w.lower() and " " not in w for w in words)  # tokens are lower-cased
    assert {"the", "which", "的", "什么", "如何"} <= STOPWORDS
    assert KEYWORD_TOKENIZER_DATA == word_list_hash(STOPWORDS)


def test_stopwords_are_dropped_from_keyword_tokens():
    assert keyword_tokens("What is the FAISS library?") == ["faiss", "librari"]
    assert "的" not in keyword_tokens("直接偏好优化的原理是什么")
    assert "什么" not in keyword_tokens("直接偏好优化的原理是什么")


def test_parse_word_list_skips_comments_and_blank_lines():
    text = "# a header\n\nthe\n  of  \n# Chinese\n的\n   # indented comment\n"
    assert parse_word_list(text) == frozenset({"the", "of", "的"})


def test_word_list_hash_depends_on_the_words_alone():
    base = word_list_hash(frozenset({"the", "of", "的"}))
    assert base == word_list_hash(parse_word_list("# other comment\n的\nof\nthe\n"))
    assert base == hashlib.sha256("of\nthe\n的".encode()).hexdigest()
    assert base != word_list_hash(frozenset({"the", "of"}))
    assert base != word_list_hash(frozenset({"the", "of", "的", "and"}))


def test_keyword_tokens_reads_the_stoplist_it_is_given(monkeypatch):
    monkeypatch.setattr(textutils, "STOPWORDS", STOPWORDS | {"faiss"})
    assert keyword_tokens("What is the FAISS library?") == ["librari"]
