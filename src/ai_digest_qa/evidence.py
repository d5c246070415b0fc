"""Evidence: what a question is about, and which source sentences state it.

A question's *constraints* are what an answer must be about: its names (``GPT-4``,
``Llama 2``, ``斯坦福``), numbers and years. The sources answer a question only where one
passage mentions all of them, and the sentence that answers must mention them within a
small window (the sentence and its neighbours): a passage about ICML 2024 does not
answer a question about ICML 2023, and a sentence giving Llama 2's score does not give
Claude 2's. Its *terms* are the other content words, weighted by how rare they are in
the index, with the glossary's translations for the other language.

Everything here is plain text processing; the index is asked only through
:class:`Vocabulary` (document frequencies and where a name occurs).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any, NamedTuple, Protocol

from .chunking import split_sentences
from .glossary import default_glossary
from .textutils import (
    CJK_CHAR,
    CJK_RANGES,
    STOPWORDS,
    detect_language,
    jieba_words,
    keyword_tokens,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


class AnswerType(NamedTuple):
    """What a question's cue words ask for, and the pattern of a sentence that holds it;
    ``rank_only`` types only rank sentences, they never decide an abstention."""

    cues: tuple[str, ...]
    pattern: re.Pattern[str]
    rank_only: bool = False


@dataclass(frozen=True)
class Lexicon:
    """The word lists of ``data/evidence.toml`` (each explained there)."""

    question_words: frozenset[str]
    answer_stopwords: frozenset[str]
    generic_chinese_names: frozenset[str]
    chinese_name_flags: frozenset[str]
    metadata_fields: dict[str, tuple[str, ...]]
    number_cues: tuple[str, ...]
    not_number_cues: tuple[str, ...]
    source_references: tuple[str, ...]
    author_citation: re.Pattern[str]
    number_words: frozenset[str]
    answer_types: dict[str, AnswerType]
    ordinal_words: dict[str, int]
    comparison_cues: tuple[str, ...]
    measure_words: frozenset[str]
    negation_cues: tuple[str, ...]
    negation_chars: frozenset[str]
    not_denials: tuple[str, ...]
    wh_cues: tuple[str, ...]
    not_wh: tuple[str, ...]
    choice_cues: tuple[str, ...]
    quote_denials: tuple[str, ...]
    result_verbs: frozenset[str]
    not_metrics: frozenset[str]
    difference_cues: tuple[str, ...]
    unit_abbreviations: dict[str, str]


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    text = resources.files("ai_digest_qa").joinpath("data/evidence.toml").read_text("utf-8")
    data = tomllib.loads(text)
    return Lexicon(
        question_words=frozenset(data["question_words"]),
        answer_stopwords=frozenset(data["answer_stopwords"]),
        generic_chinese_names=frozenset(data["generic_chinese_names"]),
        chinese_name_flags=frozenset(data["chinese_name_flags"]),
        metadata_fields={k: tuple(v) for k, v in data["metadata_fields"].items()},
        number_cues=tuple(data["number_cues"]),
        not_number_cues=tuple(data["not_number_cues"]),
        source_references=tuple(data["source_references"]),
        result_verbs=frozenset(data["result_verbs"]),
        not_metrics=frozenset(data["not_metrics"]),
        difference_cues=tuple(data["difference_cues"]),
        author_citation=_author_citation(data["author_citation_words"]),
        number_words=frozenset(data["number_words"]),
        answer_types={name: AnswerType(tuple(t["cues"]), re.compile(t["pattern"], re.I),
                                       t.get("rank_only", False))
                      for name, t in data["answer_types"].items()},
        ordinal_words=dict(data["ordinal_words"]),
        comparison_cues=tuple(data["comparison"]["cues"]),
        measure_words=frozenset(data["measure_words"]),
        negation_cues=tuple(data["negation"]["answer"]),
        negation_chars=frozenset(data["negation"]["quote_chars"]),
        not_denials=tuple(data["negation"]["not_denials"]),
        wh_cues=tuple(data["restatement"]["wh_cues"]),
        not_wh=tuple(data["restatement"]["not_wh"]),
        choice_cues=tuple(data["restatement"]["choice_cues"]),
        quote_denials=tuple(data["negation"]["quote_words"]),
        unit_abbreviations={k.lower(): " ".join(v)
                            for k, v in data["unit_abbreviations"].items()},
    )


def _author_citation(words: list[str]) -> re.Pattern[str]:
    """A line's closing "(Narasimhan 等人)" / "(Kaplan et al.)"."""
    alternatives = "|".join(re.escape(w) for w in words)
    return re.compile(rf"[(（][^()（）]{{1,80}}(?:{alternatives})\s*[)）]\s*$", re.I)


class Vocabulary(Protocol):
    """What evidence needs to know of the index (``IndexStore`` provides it)."""

    def document_frequency(self, tokens: Sequence[str], language: str | None = None
                           ) -> dict[str, int]: ...

    @property
    def chunk_count(self) -> int: ...

    def texts_mentioning(self, term: str, language: str | None = None) -> list[str]: ...


def mentioned(term: str, vocabulary: Vocabulary, language: str | None = None) -> bool:
    """Whether the index (its chunks of ``language``) contains ``term`` in any of its
    written forms ("CIFAR-10" / "CIFAR10", "Llama 2" / "Llama-2")."""
    constraint = _constraint(term, "zh" if CJK_CHAR.search(term) else "latin")
    return any(constraint.found_in(normalise(text))
               for text in vocabulary.texts_mentioning(term, language))


# --- normalised matching ---------------------------------------------------------------

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def normalise(text: str) -> str:
    """Lower case, full-width forms folded (NFKC), ``×`` as ``x``, no thousands commas."""
    text = unicodedata.normalize("NFKC", text).lower().replace("×", "x")
    return _THOUSANDS.sub("", text)


def _latin_pattern(term: str) -> re.Pattern[str]:
    """``Llama 2`` matches "llama 2", "llama-2" and "llama2", not "llama 20" or "xllama"."""
    parts = re.findall(r"[a-z0-9]+|[^\sa-z0-9\-_]", normalise(term))
    body = r"[\s\-_]*".join(re.escape(p) for p in parts)
    return re.compile(rf"(?<![a-z0-9]){body}(?![a-z0-9])")


def _digits_pattern(number: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\d.]){re.escape(normalise(number))}(?![\d])")


@dataclass(frozen=True)
class Constraint:
    """A name or number the answer must be about, with the forms that count as it."""

    text: str
    patterns: tuple[re.Pattern[str], ...]

    def found_in(self, normalised_text: str) -> bool:
        return any(p.search(normalised_text) for p in self.patterns)


def _bare_number(term: str) -> Constraint:
    """A bare number read as a name ("2.8 times", "phi-1.5"'s 1.5): as a name, no letter
    may follow it, but "2.8×" (normalised "2.8x") holds it."""
    return Constraint(term, (re.compile(
        rf"(?<![a-z0-9.]){re.escape(normalise(term))}(?![a-wyz0-9]|\.\d)"),))


def _constraint(term: str, kind: str) -> Constraint:
    glossary = default_glossary()
    if kind == "number":
        return Constraint(term, (_digits_pattern(term),))
    if kind == "zh":
        forms = {term, *glossary.to_english(term)}
        patterns = tuple(_latin_pattern(f) if not CJK_CHAR.search(f)
                         else re.compile(re.escape(normalise(f))) for f in forms)
        return Constraint(term, patterns)
    forms = {term}
    if len(term) > 3 and term.endswith("s") and not term.endswith("ss"):
        forms.add(term[:-1])  # "APIs" is "API"
    head, _, modifier = term.partition("-")
    if modifier.isalpha() and modifier.islower():  # "RNN-style" is "RNN"; "GPT-4" stays
        forms.add(head)
    latin = [_latin_pattern(f) for f in forms]
    chinese = [re.compile(re.escape(normalise(t))) for t in glossary.to_chinese(term)]
    return Constraint(term, (*latin, *chinese))


# --- reading a question ----------------------------------------------------------------

# A capitalised or alphanumeric token, with a short version number glued on by a space
# ("Llama 2", "Gemini 1.5"), but not a year ("ICML 2024" is two constraints).
_LATIN_NAME = re.compile(
    r"(?<![A-Za-z0-9])(?:[A-Z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*|[a-z]*\d[A-Za-z0-9]*"
    r"(?:[-.][A-Za-z0-9]+)*)(?:\s\d{1,2}(?:\.\d)?(?![\d.,]))?(?![A-Za-z0-9])")
_NUMBER = re.compile(r"(?<![A-Za-z0-9.,])\d+(?:[.,]\d+)*(?![A-Za-z0-9])")


@dataclass(frozen=True)
class TermGroup:
    """A content word of the question and its translations (keyword tokens).

    ``weight`` is the word's rarity in the index (BM25's idf), damped for Chinese words
    that are common in Chinese at large (jieba's idf table: "里", "得", "做" say little).
    ``known_in`` lists the languages whose chunks contain one of its tokens.
    ``forms`` are the token sets that each stand for the term; a text covers it when it
    holds every token of one form. A glossary translation is one form, so "上下文" is
    covered by "context length" or "context window", never by a lone "window".
    """

    word: str
    tokens: frozenset[str]
    weight: float
    known_in: frozenset[str] = frozenset({"en", "zh"})
    forms: tuple[frozenset[str], ...] = ()

    def covered_by(self, tokens: set[str]) -> bool:
        if not self.forms:
            return bool(self.tokens & tokens)
        return any(form <= tokens for form in self.forms)


@dataclass(frozen=True)
class QuestionProfile:
    """What a question is about: constraints, weighted terms, asked metadata fields."""

    question: str
    language: str
    constraints: tuple[Constraint, ...]
    groups: tuple[TermGroup, ...]
    asked_fields: frozenset[str]
    unknown_share: float  # weight share of terms the index never contains
    wants_number: bool = False  # "how many", "多少": the answer is a quantity
    answer_type: str | None = None  # "date", "money", ...: what the answer must hold
    ordinals: frozenset[int] = frozenset()  # ranks asked about ("came second": 2)
    compares: bool = False  # "Is A faster than B?": one passage must name them all
    counted: tuple[TermGroup, ...] = ()  # what "how many" counts ("parameters", "论文")
    measure: str | None = None  # its Chinese measure word ("多少篇": 篇)
    preferred_type: str | None = None  # "institution": what answering sentences name
    # The attribute or metric whose value is asked ("上下文窗口有多长", "What PQ does ...").
    measured: tuple[TermGroup, ...] = ()

    @property
    def term_tokens(self) -> set[str]:
        """Every token of the question's terms, translations included."""
        return {t for g in self.groups for t in g.tokens}

    def coverage(self, tokens: set[str], language: str | None = None) -> float:
        """Weighted share of the question's known terms present among ``tokens``.

        For text in the other ``language``, only terms that language's chunks could
        contain count: an English question's "said" or "month" has no Chinese token
        unless the glossary gives one, and its absence from a Chinese sentence says
        nothing.
        """
        # Terms the index never contains count in ``unknown_share``, not here: "really"
        # in "What is DPO? really" says nothing about the passages.
        groups = tuple(g for g in self.groups if g.known_in or g.covered_by(tokens))
        if language is not None and language != self.language:
            groups = tuple(g for g in groups
                           if language in g.known_in or g.covered_by(tokens))
        total = sum(g.weight for g in groups)
        if not total:
            return 0.0
        return sum(g.weight for g in groups if g.covered_by(tokens)) / total


def latin_names(text: str, openers_too: bool = False) -> list[str]:
    """Capitalised and alphanumeric words of ``text`` that may be names.

    A capitalised word opening the text or a clause is grammar in a question ("And
    Which ...") and is left out, unless ``openers_too`` (answers: "Argentina won").
    """
    words = lexicon().question_words
    names = []
    for match in _LATIN_NAME.finditer(text):
        word = match.group(0)
        if word.lower() in words or word.isdigit():
            continue
        before = text[:match.start()].rstrip()
        opens = not before or before[-1] in ".?!;:,，。？！；：(（\"“"
        if opens and word[1:].islower() and word.isalpha() and not openers_too:
            continue
        names.append(word)
    return names


def chinese_names(text: str) -> list[str]:
    """Person, place, organisation and other proper names jieba finds in ``text``.

    Used to check answers ("在北京举办" when the sources say 维也纳), where a common word
    taken for a name only costs a fallback to the quotes; never to abstain, since the
    tagger also marks ordinary words ("论文", "英法").
    """
    if not CJK_CHAR.search(text):
        return []
    import jieba.posseg

    from .textutils import _jieba

    _jieba()  # initialised once, quietly
    words = lexicon()
    return [token.word for token in jieba.posseg.cut(text)
            if token.flag in words.chinese_name_flags and len(token.word) >= 2
            and CJK_CHAR.search(token.word)
            and token.word not in words.generic_chinese_names]


def numbers(text: str) -> list[str]:
    """Numbers with two or more digits (one-digit ones are too often paraphrased)."""
    found = []
    for match in _NUMBER.finditer(text):
        digits = re.sub(r"\D", "", match.group(0))
        if len(digits) >= 2:
            found.append(match.group(0))
    return found


def analyse(question: str, vocabulary: Vocabulary | None = None) -> QuestionProfile:
    """The constraints and weighted terms of ``question``."""
    language = detect_language(question)
    names = latin_names(question)
    named = " ".join(names)
    constraints = [_bare_number(n) if re.fullmatch(r"\d+(?:[.,]\d+)*", n)
                   else _constraint(n, "latin") for n in dict.fromkeys(names)]
    constraints += [_constraint(n, "number") for n in dict.fromkeys(numbers(question))
                    if n not in named]
    # jieba's Chinese names stay terms, not constraints: its tagger also marks ordinary
    # words ("论文", and "里加" cut from "优化里加正则项"), and one such word would
    # exclude every answering sentence.
    groups = _term_groups(_without_source_references(question), language, vocabulary)
    total = sum(g.weight for g in groups)
    unknown = 0.0
    if vocabulary is not None and total:
        frequencies = vocabulary.document_frequency(
            sorted({t for g in groups for t in g.tokens}))
        unknown = sum(g.weight for g in groups
                      if not any(frequencies.get(t, 0) for t in g.tokens)) / total
    asked = frozenset(field for field, cues in lexicon().metadata_fields.items()
                      if any(_cue_in(cue, question) for cue in cues))
    words = lexicon()
    counting = _without_non_number_words(question)
    metrics = metric_asked(question)
    wants_number = any(_cue_in(cue, counting) for cue in words.number_cues) or bool(metrics)
    answer_type, preferred = (next((name for name, kind in words.answer_types.items()
                                    if kind.rank_only == rank_only
                                    and any(_cue_in(cue, question) for cue in kind.cues)),
                                   None) for rank_only in (False, True))
    compares = any(_cue_in(cue, question) for cue in words.comparison_cues)
    words_counted, measure = _counted(question, metrics)
    counted = set(keyword_tokens(" ".join(words_counted)))
    counted_groups = tuple(g for g in groups if set(keyword_tokens(g.word)) & counted)
    attributes = set(keyword_tokens(" ".join(_measured(question) + metrics)))
    measured = tuple(g for g in groups if set(keyword_tokens(g.word)) & attributes)
    return QuestionProfile(question, language, tuple(constraints), tuple(groups), asked,
                           unknown, wants_number, answer_type, ordinals(question), compares,
                           counted_groups, measure, preferred, measured)


_HOW_MANY = re.compile(r"(?<![a-z])how many\s+([^?,.;:!]*)", re.I)
_COUNT_CJK = re.compile(r"多少|几|多[长大高快久]")  # the word after: what is counted or measured


def _without_source_references(question: str) -> str:
    """``question`` with the words that point at a source or frame it blanked ("那篇",
    "综述说", "起什么作用"; data/evidence.toml); unchanged when nothing else is left."""
    blanked = _blanked(question, sorted(lexicon().source_references, key=len, reverse=True))
    return blanked if blanked.strip(" ?？!！。,，") else question


def _without_non_number_words(question: str) -> str:
    """``question`` with the words that hold a number cue but ask no quantity blanked
    ("哪几条原则", "几乎")."""
    return _blanked(question, lexicon().not_number_cues)


def _blanked(text: str, phrases: Sequence[str]) -> str:
    """``text`` with each of ``phrases`` replaced by as many spaces (offsets are kept)."""
    for phrase in phrases:
        text = text.replace(phrase, " " * len(phrase))
    return text


def counted_words(question: str) -> list[str]:
    """The words naming what a "how many" / "多少" question counts: up to three words
    after "how many" before a verb or name ("how many learnable parameters does"), or
    the word after 多少/几 and its measure word ("多少篇论文": 论文)."""
    return _counted(question, metric_asked(question))[0]


def _counted(question: str, metrics: list[str]) -> tuple[list[str], str | None]:
    """:func:`counted_words` and the Chinese measure word before them ("多少篇": 篇);
    ``metrics`` are the question's :func:`metric_asked`."""
    words: list[str] = []
    stop = lexicon().question_words
    for match in _HOW_MANY.finditer(question):
        for word in match.group(1).split()[:3]:
            # A capitalised word is a name ("how many ICML papers"), except an acronym's
            # plural, which is what is counted ("how many GPUs").
            acronym = word.endswith("s") and word[:-1].isupper() and len(word) > 2
            if word.lower() in stop or (word[:1].isupper() and not acronym):
                break
            words.append(word)
    measures = lexicon().measure_words
    measure = None
    counting = _without_non_number_words(question)
    for match in _COUNT_CJK.finditer(counting):
        after = [w for w in jieba_words(question[match.end():]) if w.strip()]
        if after and after[0] in measures and measure is None:
            measure = after[0]
        while after and (after[0] in measures or after[0] in "的了"):
            after = after[1:]
        # A cue is not what it counts: "最多快多少倍" reads 多快, then 多少倍.
        if after and CJK_CHAR.match(after[0]) and not _COUNT_CJK.search(after[0]):
            words.append(after[0])
    # A metric written as a name ("PSNR", "top-1", "MT-Bench") must stand by the amount;
    # one in plain words ("frame rate") may be paraphrased ("30 fps"), and only makes the
    # question ask for a number.
    named = [w for w in metrics if _written_as_name(w)]
    return words + _measured(question) + named, measure


# "上下文窗口有多长", "接受率是多少": the attribute measured is the Chinese run before the
# cue, after its last 的; "how long is the context window of": the words after "is the".
_MEASURED_CJK = re.compile(r"([\u4e00-\u9fff]+)(?:有多[长大快高久宽远]|是多少|为多少)")
_MEASURED_EN = re.compile(
    r"(?<![a-z])how (?:long|large|big|fast|high|wide|far) (?:is|are|was|were) "
    r"(?:the |its |their |a )?((?:[a-z]+ ){0,2}[a-z]+)"
    r"(?= of| for| in| on| at| with|\s*[?.]|$)", re.I)


# "What top-1 accuracy does Vim reach?": the words between "what" and the auxiliary name
# the metric, and a result verb (data/evidence.toml result_verbs) ends the subject.
_METRIC_EN = (r"(?<![a-z])what\s+((?:[\w.+-]+\s+){{0,2}}[\w.+-]+)\s+(?:does|do|did|can|could)"
              r"\s+(?:\S+\s+){{0,5}}?(?:{verbs})(?![a-z])")
# "What is the FID of U-ViT on MS-COCO?": a metric written as a name (capitals or digits:
# FID, mIoU, top-1) between "what is the" and "of"/"on"; "What is the name of" names none.
# The determiner is required: "What was GPT-3 trained on" names no metric.
_METRIC_EN_IS = re.compile(
    r"(?<![a-z])what(?:'s|\s+is|\s+was|\s+are|\s+were)\s+(?:the|its|their)\s+"
    r"((?:[\w.+-]+\s+)?[\w.+-]+)\s+(?:of|on)\s", re.I)

# "Transformer在WMT 2014英德翻译上的BLEU是多少?": a Latin metric right before 是多少.
_METRIC_CJK = re.compile(r"(?<![A-Za-z0-9-])([A-Za-z][A-Za-z0-9-]*)\s*(?:是多少|为多少)")


@lru_cache(maxsize=1)
def _metric_en() -> re.Pattern[str]:
    verbs = "|".join(sorted(map(re.escape, lexicon().result_verbs), key=len, reverse=True))
    return re.compile(_METRIC_EN.format(verbs=verbs), re.I)


def _written_as_name(word: str) -> bool:
    """A metric written as a name: two capitals (FID, mIoU, MT-Bench) or a digit (top-1);
    "accuracy" and a capitalised "Accuracy" are plain words."""
    return sum(c.isupper() for c in word) >= 2 or any(c.isdigit() for c in word)


def metric_asked(question: str) -> list[str]:
    """The metric a question asks the value of: "What PQ does Mask DINO get on ADE20K?"
    (PQ), "DINO在COCO上的AP是多少?" (AP); empty for "What does Mamba achieve?" and
    "What results does it reach?" (no metric named)."""
    skip = lexicon().not_metrics | lexicon().question_words
    found = [w for match in _metric_en().finditer(question) for w in match.group(1).split()
             if w.lower() not in skip]
    for match in _METRIC_EN_IS.finditer(question):
        words = [w for w in match.group(1).split() if w.lower() not in skip]
        if any(_written_as_name(w) for w in words):
            found += [w for w in words if w not in found]
    return found + [m.group(1) for m in _METRIC_CJK.finditer(question)]


def _measured(question: str) -> list[str]:
    """The words naming what a "有多长" / "how long is the" question measures: the
    sentence stating the amount must name it too ("Mistral 7B的上下文窗口有多长?" is not
    answered by "Mistral 7B outperforms Llama 2 13B")."""
    stop = lexicon().question_words
    words = [w for m in _MEASURED_EN.finditer(question) for w in m.group(1).split()
             if w.islower() and w not in stop]  # a capitalised word is a name
    for match in _MEASURED_CJK.finditer(question):
        attribute = match.group(1).split("的")[-1]
        if len(attribute) >= 2:  # "它有多大": a pronoun names nothing
            words.append(attribute)
    return words


_CHINESE_NUMERALS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
                     "八": 8, "九": 9, "十": 10}
_CHINESE_RANK = re.compile(r"第\s*([一二两三四五六七八九十]|\d{1,2})(?![\d万亿千百])")
# "per second", "a second", "3 seconds" are time, not rank.
_NOT_RANK_BEFORE = re.compile(r"(?:per|a|one|each|every|\d+)\s*$", re.I)


def ordinals(text: str) -> frozenset[int]:
    """The ranks from 2 up that ``text`` names ("second", "2nd", "第二", "第3")."""
    found = set()
    for match in _CHINESE_RANK.finditer(text):
        rank = match.group(1)
        found.add(int(rank) if rank.isdigit() else _CHINESE_NUMERALS[rank])
    for word, rank in lexicon().ordinal_words.items():
        for match in re.finditer(rf"(?<![a-z0-9-]){re.escape(word)}(?![a-z0-9-])",
                                 text.lower()):
            if not _NOT_RANK_BEFORE.search(text[:match.start()]):
                found.add(rank)
    return frozenset(r for r in found if r >= 2)


def _counts(profile: QuestionProfile, quote: str) -> bool:
    """Whether ``quote`` states a quantity of what the question counts, or cannot say
    (the counted word has no form in the quote's language)."""
    language = detect_language(quote)
    checkable = [g for g in profile.counted
                 if language == profile.language or language in g.known_in]
    if not checkable:
        return True
    # The question's measure word after a number counts the same kind of thing ("多少篇
    # 投稿" and "9,653 篇论文"), whatever noun follows.
    numeral = r"[\d一二两三四五六七八九十百千万亿]\s*"
    if profile.measure and re.search(numeral + re.escape(profile.measure), quote):
        return True
    # "51.3AP" is an amount and its metric: apart, the metric is a word of its own.
    text = _units_spelled_out(re.sub(r"(\d)([a-z]{2,})", r"\1 \2", normalise(quote)))
    if not any(_cue_in(cue, profile.question) for cue in lexicon().difference_cues):
        text = _MARGIN.sub(" ", text)  # a margin is the answer only to "by how much"
    return any(_quantity_near(text, t, profile) for g in checkable for t in g.tokens)


def _units_spelled_out(text: str) -> str:
    """``text`` (normalised) with each unit abbreviation followed by what it counts:
    "82 fps" states a number of frames ("多少帧每秒", "how many frames per second")."""
    for abbreviation, counted in lexicon().unit_abbreviations.items():
        text = re.sub(rf"(?<![a-z0-9]){re.escape(abbreviation)}(?![a-z0-9])",
                      f"{abbreviation} {counted}", text)
    return text


# How near an amount stands to what it counts: at most two words between ("BLEU score
# of 41.8", "165K hours", "MultiNLI accuracy to 86.7%"), or six characters in Chinese
# ("具有 10 亿个参数"). Farther, the amount counts something else: "all 3 image quality
# metrics PSNR, SSIM, LPIPS" gives no SSIM.
NEAR_WORDS = 3
NEAR_CHARS = 6
_QUOTE_WORD = re.compile(r"[A-Za-z0-9][\w.%+×$-]*")


# An amount given as a margin: "by over 2", "+6.0", "1.8% superior", "提高了 5".
_MARGIN = re.compile(
    r"\bby\s+(?:over\s+|more than\s+|up to\s+|about\s+|nearly\s+)?\+?\d[\d.,]*%?"
    r"|(?<![\w.])\+\d[\d.,]*%?"
    r"|\d[\d.,]*\s*%?\s*(?:points?\s+)?(?:superior|higher|better|more|lower|less|faster"
    r"|absolute improvement|improvement|gain)\b"
    r"|(?:提高|提升|高出|多出|增加)了?\s*\d[\d.,]*%?")


def _quantity_near(text: str, token: str, profile: QuestionProfile) -> bool:
    """Whether ``text`` (a normalised quote) states an amount near a word of ``token`` (a
    keyword token). The question's other names do not count in the distance: "scored
    Llama 2 at 54" gives Llama 2's score."""
    for name in names_of(profile):
        if token not in keyword_tokens(name.text):
            for pattern in name.patterns:
                text = pattern.sub(" ", text)
    # Within its clause: in "1.8% superior accuracy, while running 5.8x faster" the
    # 5.8x is a speed.
    return any(_near_in_clause(clause, token, profile.question)
               for clause in _NEAR_CLAUSE.split(text))


_NEAR_CLAUSE = re.compile(r"[,;，；。()（）]|\bwhile\b|\bwhereas\b")


def _near_in_clause(clause: str, token: str, question: str) -> bool:
    if CJK_CHAR.search(token):  # a substring: "多少分" is answered by "得分54", one word
        return any(states_quantity(
            clause[max(0, m.start() - NEAR_CHARS):m.end() + NEAR_CHARS], question)
            for m in re.finditer(re.escape(token), clause))
    words = [m.group(0) for m in _QUOTE_WORD.finditer(clause)]
    return any(states_quantity(" ".join(words[max(0, i - NEAR_WORDS):i + NEAR_WORDS + 1]),
                               question)
               for i, word in enumerate(words) if token in keyword_tokens(word))


def states_answer_type(profile: QuestionProfile, text: str) -> bool:
    """Whether ``text`` holds what the question's answer type asks for (a day, a price);
    True when it has none."""
    if profile.answer_type is None:
        return True
    return lexicon().answer_types[profile.answer_type].pattern.search(normalise(text)) \
        is not None


def unmet_requirement(profile: QuestionProfile, quotes: Sequence[str],
                      passage_texts: Sequence[str]) -> str | None:
    """What the question asks for that none of ``quotes`` holds: its answer type ("day",
    "money"), a quantity ("how many"), a count of the thing counted, an amount of the names
    asked together ("binding": each amount belongs to another name), its rank ("rank 2"),
    or, for a comparison, one passage naming all compared (``passage_texts`` are the quotes'
    passages); None when the quotes may answer."""
    missing = _missing_kind(profile, quotes)
    if missing is not None:
        return missing
    if profile.answer_type is None and profile.wants_number and profile.counted \
            and not any(_counts(profile, q) for q in quotes):
        return "count"
    # A metric the index never mentions, in either language, is stated nowhere in it
    # ("Hyena在WikiText103上的困惑度是多少?": no abstract reports a perplexity).
    if profile.wants_number and any(not g.known_in for g in profile.measured):
        return "count"
    if (profile.wants_number or profile.answer_type is not None) and quotes and all(
            _amounts_bound_elsewhere(profile, q) for q in quotes):
        return "binding"
    if profile.ordinals and not any(profile.ordinals <= ordinals(q) for q in quotes):
        return "rank " + ", ".join(str(r) for r in sorted(profile.ordinals))
    names = [c for c in profile.constraints if any(ch.isalpha() for ch in c.text)]
    if profile.compares and len(names) >= 2 and not any(
            not missing_in(names, text) for text in passage_texts):
        return "comparison"
    return None


# Where a sentence lists several results, each clause binds its amount to the names in
# it: "59.4 PQ on COCO, and 60.8 mIoU on ADE20K".
_RESULT_CLAUSE = re.compile(r"[,;，；、()（）\[\]]|\band\b|\bwhile\b|以及|而")


def _clause_names(clause: str) -> list[str]:
    """The names in ``clause`` ("COCO", and metrics written "mIoU"), not its amounts
    ("5.48", "52K", "256x256") nor a capitalised word opening it ("Using")."""
    names = [n for n in latin_names(clause)
             if not re.fullmatch(r"[\d.,]+(?:[KMBkmb]|x\d+)?", n)]
    return names + _mixed_case(clause)


def _amounts_bound_elsewhere(profile: QuestionProfile, quote: str) -> bool:
    """Whether every amount in ``quote`` sits in a clause that lacks one of the question's
    names which another amount's clause holds: "Mask DINO's PQ on ADE20K" is not answered
    by "(59.4 PQ on COCO) ... (60.8 mIoU on ADE20K)", each clause binding its amount to
    the names in it. The names before the first amount are the sentence's subject
    ("LLaMA-Adapter introduces 1.2M parameters, and costs one hour on 8 A100 GPUs"): they
    bind every clause and are not asked of each. (So a list whose first result names its
    qualifier before the amount, "pushing MultiNLI accuracy to 86.7%, ...", is taken for
    one about MultiNLI throughout.)"""
    binding = _clause_binding(profile, quote)
    return bool(binding) and all(elsewhere for _, elsewhere in binding)


def _clause_binding(profile: QuestionProfile, quote: str) -> list[tuple[str, bool]]:
    """The clauses of ``quote`` stating an amount of something named, each with whether
    it is claimed elsewhere (see :func:`_amounts_bound_elsewhere`); empty when fewer
    than two clauses state one, or the question names nothing."""
    # A metric written "mIoU" is a name here too: it is what one clause's amount measures.
    names = names_of(profile) + [_constraint(w, "latin") for w in _mixed_case(profile.question)]
    clauses = [c for c in _RESULT_CLAUSE.split(quote) if c.strip()]
    # Clauses stating an amount of something named ("59.4 PQ on COCO"); an amount with no
    # name ("among models under one billion parameters") qualifies the whole sentence.
    stating = [i for i, c in enumerate(clauses)
               if states_quantity(c, profile.question) and _clause_names(c)]
    if not names or len(stating) < 2:
        return []
    first = clauses[stating[0]]
    amount = re.search(r"\d", _NAME_DIGITS.sub(lambda m: "x" * len(m.group(0)), first))
    subject = " ".join(clauses[:stating[0]]) + " " + first[:amount.start() if amount else 0]

    def claimed_elsewhere(i: int) -> bool:
        return any(missing_in([n], clauses[i]) and missing_in([n], subject)
                   and any(not missing_in([n], clauses[j]) for j in stating if j != i)
                   for n in names)

    return [(clauses[i], claimed_elsewhere(i)) for i in stating]


def _bound_elsewhere(value: float, binding: Sequence[tuple[str, bool]]) -> bool:
    """Whether the quotes state ``value`` only in clauses bound to another name (see
    :func:`_clause_binding`)."""
    holding = [elsewhere for clause, elsewhere in binding if value in number_values(clause)]
    return bool(holding) and all(holding)


def _mixed_case(text: str) -> list[str]:
    """Words starting lower-case with a capital inside ("mIoU", "iPhone")."""
    return re.findall(r"(?<![A-Za-z0-9-])[a-z]+[A-Z][A-Za-z0-9-]*", text)


def _missing_kind(profile: QuestionProfile, texts: Sequence[str]) -> str | None:
    """The kind of answer the question asks for that none of ``texts`` holds: its answer
    type ("day", "money") or, for "how many", a quantity; None when one holds it. A price
    or a date is checked by its type, not as any number ("ICML 2024" holds the year
    asked for; "多少钱" counts no "钱")."""
    if profile.answer_type is not None:
        if not any(states_answer_type(profile, t) for t in texts):
            return profile.answer_type
    elif profile.wants_number and not any(states_quantity(t, profile.question) for t in texts):
        return "quantity"  # they talk around it
    return None


def answer_lacks(profile: QuestionProfile, answer: str) -> str | None:
    """What the answer leaves out of what the question asks for: its answer type ("day",
    "money") or, for "how many", any quantity; "restated" when a question asking for
    something (``[restatement]`` in data/evidence.toml) gets only its own words back;
    "bare number" when a question asking for no amount gets only one ("RWKV这个名字是哪几个
    英文单词的缩写?" answered "14"). None when it may answer. :func:`unmet_requirement`
    checks the quotes for the same kind."""
    missing = _missing_kind(profile, [answer])
    if missing is not None:
        return missing
    if not profile.wants_number and profile.answer_type is None \
            and _BARE_AMOUNT.fullmatch(answer.strip(" \n.。")):
        return "bare number"
    words = lexicon()
    question = profile.question
    for phrase in words.not_wh:
        question = question.replace(phrase, " ")
    # A choice ("A or B?", "A还是B?") and a yes/no question may be answered in their words.
    asks_for_new = (any(_cue_in(cue, question) for cue in words.wh_cues)
                    and not profile.compares
                    and not any(_cue_in(cue, question) for cue in words.choice_cues)
                    and not question.rstrip(" ?？。").endswith(("吗", "呢")))
    if asks_for_new and not set(keyword_tokens(answer)) - set(keyword_tokens(profile.question)):
        return "restated"
    return None


def _cue_in(cue: str, question: str) -> bool:
    """A cue word or phrase in the question; "*" in a cue stands for up to three words
    ("what * score" matches "what transparency score")."""
    if CJK_CHAR.search(cue):
        return cue in question
    pattern = r"(?:\s+\S+){0,3}\s+".join(re.escape(part.strip()) for part in cue.split("*"))
    return re.search(rf"(?<![a-z]){pattern}(?![a-z])", question.lower()) is not None


# An answer that is an amount and nothing else: "14", "2,609 篇", "14 billion".
_BARE_AMOUNT = re.compile(rf"\d[\d.,%×x]*\s*(?:[A-Za-z]{{0,8}}|[{CJK_RANGES}]{{0,2}})")

_QUANTITY = re.compile(
    r"\d|[一二两三四五六七八九十百千万亿几]+(?:个|篇|倍|分|位|年|月|天|种|次|亿|万)")


# A name's digits: glued or hyphenated ("H100", "phi-1.5"), or after a capitalised word
# ("Llama 2"); a lower-case word and a number are a quantity ("achieves 28.4").
_NAME_DIGITS = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z][A-Za-z]*[-\s]?|[A-Za-z]+-?)\d+(?:\.\d+)?"
                          r"(?![\d%]|[.,]\d)(?![kKmMbB万亿])")


# A size inside a hyphenated name ("Llama2-Chat-70B", "Mistral-7B-Instruct") is part of
# the name: "Zephyr-7B surpasses Llama2-Chat-70B" states no score.
_SIZE_IN_NAME = re.compile(r"(?<![\w.-])[A-Za-z][\w.]*(?:-[\w.]+)*-\d+(?:\.\d+)?[BMK](?![\w])",
                           re.I)


_ENUMERATOR = re.compile(r"(?:^|(?<=[\s:：;；,，]))[(（]?\d{1,2}[)）、](?!\d)")


def states_quantity(sentence: str, question: str) -> bool:
    """Whether ``sentence`` holds a number the question does not already give."""
    # Digits of names ("GPT-3", "Llama 2", "H100") count no quantity; "128k", "7B" do;
    # nor do a list's item numbers ("3、先进的性能", "1) first tokenizes").
    sentence = _NAME_DIGITS.sub(" ", _SIZE_IN_NAME.sub(" ", sentence))
    sentence = _ENUMERATOR.sub(" ", sentence)
    given = set(re.findall(r"\d+(?:\.\d+)?", normalise(question)))
    found = set(re.findall(r"\d+(?:\.\d+)?", normalise(sentence)))
    words = set(re.findall(r"[a-z]+", sentence.lower()))
    return (bool(found - given) or bool(words & lexicon().number_words)
            or bool(_QUANTITY.search(re.sub(r"\d", "", sentence))))


def _term_groups(question: str, language: str, vocabulary: Vocabulary | None
                 ) -> list[TermGroup]:
    skip = lexicon().question_words
    forms: dict[str, set[frozenset[str]]] = {}
    for word, translations, whole in _question_terms(question):
        if word.lower() in skip:
            continue
        # A glossary term's own tokens stand together too; a plain word's tokens are
        # jieba's overlapping cuts of it ("上下", "下文"), each enough.
        own = {frozenset(keyword_tokens(word))} if whole else \
            {frozenset({t}) for t in keyword_tokens(word)}
        translated = {frozenset(keyword_tokens(t)) for t in translations}
        forms.setdefault(word.lower(), set()).update(own | {f for f in translated if f})
    groups = {w: {t for f in fs for t in f} for w, fs in forms.items()}
    if vocabulary is None:
        return [TermGroup(w, frozenset(t), 1.0, forms=tuple(forms[w]))
                for w, t in groups.items()]
    every = sorted({t for ts in groups.values() for t in ts})
    frequencies = vocabulary.document_frequency(every)
    by_language = {lang: vocabulary.document_frequency(every, lang) for lang in ("en", "zh")}
    n = max(vocabulary.chunk_count, 1)

    def idf(token: str) -> float:
        df = frequencies.get(token, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    out = []
    for word, tokens in groups.items():
        weight = max(idf(t) for t in keyword_tokens(word)) * _commonness_damping(word)
        known = frozenset(lang for lang, df in by_language.items()
                          if any(df.get(t, 0) for t in tokens))
        out.append(TermGroup(word, frozenset(tokens), weight, known, tuple(forms[word])))
    return out


def _question_terms(question: str) -> list[tuple[str, list[str], bool]]:
    """The question's terms, each with its glossary translations and whether it is a
    whole glossary term.

    A Chinese glossary term is one term even where jieba cuts it ("直接偏好优化" is
    "direct preference optimization", not 直接, 偏好 and 优化 apart, which scattered
    English words would cover one by one).
    """
    glossary = default_glossary()
    terms: list[tuple[str, list[str], bool]] = []
    remaining = question
    for term in sorted(glossary.chinese, key=len, reverse=True):
        if len(term) >= 2 and term in remaining:
            remaining = remaining.replace(term, " ")
            terms.append((term, list(glossary.chinese[term]), True))
    for word in _question_words(remaining):
        translated = glossary.to_english(word) if CJK_CHAR.search(word) else \
            glossary.to_chinese(word)
        terms.append((word, translated, False))
    return terms


def _commonness_damping(word: str) -> float:
    """jieba's idf of a Chinese word over its median, capped at 1 (1 for other words)."""
    if not CJK_CHAR.search(word):
        return 1.0
    table, median = _jieba_idf()
    return min(1.0, table.get(word, median) / median)


@lru_cache(maxsize=1)
def _jieba_idf() -> tuple[dict[str, float], float]:
    from jieba.analyse.tfidf import TFIDF

    table, median = TFIDF().idf_loader.get_idf()
    return table, median


def _question_words(question: str) -> list[str]:
    """Content words of ``question``: jieba words for Chinese runs, words otherwise."""
    from .textutils import jieba_words

    words: list[str] = []
    for piece in re.findall(r"[A-Za-z0-9][A-Za-z0-9\-.]*[A-Za-z0-9]|[A-Za-z0-9]|"
                            r"[\u3400-\u9fff\uf900-\ufaff]+", question):
        if CJK_CHAR.search(piece):
            words.extend(jieba_words(piece))
        elif "-" in piece and not any(ch.isdigit() for ch in piece):
            # Each part of "English-to-German" must be covered on its own: as one term,
            # "English-to-French" would cover it by "English".
            words.extend(piece.split("-"))
        else:
            words.append(piece)
    return [w for w in words if keyword_tokens(w)]


# --- sentences of a passage --------------------------------------------------------------

_FIELD_LINE = re.compile(r"^\s*([A-Za-z]+)\s*:\s")
_HEADING_NUMBER = re.compile(r"^\s*(?:\d+(?:\.\d+)*\.?|[一二三四五六七八九十]+[、.])\s*\S")
_SENTENCE_PUNCTUATION = re.compile(r"[。！？；.!?;…”\"')）:：]\s*$")
# Where a sentence ends inside a line (a full stop before a space, not in "e.g." or "3.5").
_SENTENCE_END = re.compile(r"[。！？!?]|(?<![A-Z.]\w)\.(?=\s)")


@dataclass(frozen=True)
class Sentence:
    """A sentence of a passage: ``passage.text[start:end]``, stripped."""

    start: int
    end: int
    text: str
    field: str | None  # the metadata field of a "Year: 2024." line
    heading: bool  # a heading or title line: context, never an answer on its own


def sentences(text: str) -> list[Sentence]:
    """The non-empty sentences of ``text`` with offsets and their kind."""
    fields = lexicon().metadata_fields
    out: list[Sentence] = []
    offset = 0
    for piece in split_sentences(text):
        stripped = piece.strip()
        if stripped and any(ch.isalnum() for ch in stripped):
            start = offset + piece.index(stripped[0])
            match = _FIELD_LINE.match(stripped)
            field = match.group(1).lower() if match and match.group(1).lower() in fields \
                else None
            previous = out[-1] if out else None
            if (field is None and previous is not None and previous.field
                    and "\n" not in text[previous.end:start]):
                # "Authors: A. Smith, B. Jones." was cut at an initial: one field line.
                end = start + len(stripped)
                out[-1] = replace(previous, end=end, text=text[previous.start:end])
            else:
                out.append(Sentence(start, start + len(stripped), stripped, field,
                                    _is_heading(stripped)))
        offset += len(piece)
    return out


def _is_heading(sentence: str) -> bool:
    """Short and unpunctuated, a numbered section title ("1.3 大模型的挑战"), or a paper's
    title line ending in its authors ("Time Weaver:条件时间序列生成模型(Narasimhan 等人)")."""
    units = len(CJK_CHAR.findall(sentence)) + len(re.findall(r"[A-Za-z0-9]+", sentence))
    cited = lexicon().author_citation.search(sentence)
    if cited and not _SENTENCE_END.search(sentence[:cited.start()]):
        return True
    if _HEADING_NUMBER.match(sentence) and units <= 20 and \
            not _SENTENCE_PUNCTUATION.search(sentence):
        return True  # a numbered list item ends like a sentence; a heading does not
    return units <= 12 and not _SENTENCE_PUNCTUATION.search(sentence)


# --- choosing evidence -------------------------------------------------------------------


class PassageLike(Protocol):
    # Read-only (properties): a frozen record such as Passage provides them.
    @property
    def text(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def language(self) -> str: ...
    @property
    def section(self) -> str | None: ...


class SentenceEmbedder(Protocol):
    def embed_queries(self, texts: list[str]) -> Any: ...

    def embed_passages(self, texts: list[str]) -> Any: ...


@dataclass(frozen=True)
class Evidence:
    """A sentence of passage ``passage`` (0-based) chosen to answer the question.

    ``mass`` is the weighted share of all the question's terms in the sentence's window
    (the sentence counted twice over its neighbours); ``coverage`` the same share of
    the terms the passage's language could contain; ``similarity`` the embedder's
    cosine between question and sentence (0.0 when no embedder was given). ``context``
    is the sentence before it when that one names the subject the sentence leaves
    implicit ("它" / "It").
    """

    passage: int
    sentence: Sentence
    mass: float
    coverage: float
    similarity: float = 0.0
    context: Sentence | None = None
    quantity_fit: float = 0.0  # + when a "how many" question meets a number, - when not
    # The sentences a "以下几项原则:" / "the following steps:" sentence announces.
    continuation: tuple[Sentence, ...] = ()
    boost: float = 0.0  # from the embedder's similarity, relative to the other candidates
    named: int = 0  # how many of the question's names (not bare numbers) its window has
    subject_fit: float = 0.0  # + when its record is the one the question names by title

    @property
    def quote(self) -> str:
        parts = [self.context] if self.context else []
        parts += [self.sentence, *self.continuation]
        return " ".join(p.text for p in parts)

    @property
    def span(self) -> tuple[int, int]:
        """Where the quote lies in its passage's text."""
        first = self.context or self.sentence
        last = self.continuation[-1] if self.continuation else self.sentence
        return first.start, last.end

    @property
    def score(self) -> float:
        return self.term_score + self.boost

    @property
    def term_score(self) -> float:
        """The score before the embedder's: terms, the kind of answer, the record."""
        return self.mass + self.quantity_fit + self.subject_fit


# How much the embedder's similarity counts against term coverage when ranking
# sentences, per standard deviation of the candidates' similarities (so it means the
# same for embedders whose cosines spread over 0.05 or over 0.5).
SIMILARITY_WEIGHT = 0.05
# A question asking for a quantity (or a kind of answer) prefers sentences stating one by this much.
QUANTITY_FIT = 0.15
# Sentences embedded per question: the best by terms (about 25 ms each on two cores).
EMBEDDED_CANDIDATES = 10
# A sentence of the record the question names by its title ("RWKV利用了哪一种注意力机制?"
# and the RWKV paper) is preferred by this much over one of a source that mentions the
# subject in passing: a Chinese article retelling several papers covers a Chinese
# question's words better than the paper's own English abstract, which answers it.
SUBJECT_FIT = 0.1


def missing_in(constraints: Sequence[Constraint], text: str) -> list[Constraint]:
    normalised = normalise(text)
    return [c for c in constraints if not c.found_in(normalised)]


def candidate_sentences(profile: QuestionProfile, passages: Sequence[PassageLike]
                        ) -> list[Evidence]:
    """Every sentence that may answer: its window (itself and its neighbours, with the
    passage's title and section) mentions every constraint with digits (versions,
    numbers, years: what binds a fact to its subject), it is no heading, and a metadata
    line only if the question asks for that field."""
    candidates: list[Evidence] = []
    names = names_of(profile)
    # Names with digits bind a fact to its subject ("GPT-4", "Claude 2", "2024"); a name
    # without ("OpenAI" in "OpenAI's GPT-4 Turbo") only qualifies it, may be paragraphs
    # away, and is not required: questions add what the sources leave out ("Microsoft's
    # phi-1.5"), and requiring it turned answerable ones away. It still counts in what
    # the quotes must hold: see about_the_subject.
    binding = _binding(profile)
    for index, passage in enumerate(passages):
        frame = f"{passage.title} {passage.section or ''}"
        record = f"{passage.text} {frame}"
        if missing_in(binding, record):
            continue
        parts = sentences(passage.text)
        # A field line describes its record. It answers for no record that names none of
        # the question's names; for one the question names by its title ("DPO" for
        # "Direct Preference Optimization: ..."), it answers for the whole record and for
        # the words asking for its field ("在哪个会议发表").
        names_none = bool(names) and len(missing_in(names, record)) == len(names)
        head_tokens = _named_head(profile, passage.title)
        about_record = bool(head_tokens)
        record_tokens = set(keyword_tokens(record)) if about_record else None
        title_line = normalise(passage.title)
        for position, sentence in enumerate(parts):
            if not _may_answer(sentence, profile) or (sentence.field and names_none):
                continue
            if normalise(sentence.text) == title_line:
                continue  # the record's title line is its heading, however long
            before = parts[position - 1] if position else None
            after = parts[position + 1] if position + 1 < len(parts) else None
            window = " ".join(s.text for s in (before, sentence, after) if s) + " " + frame
            if missing_in(binding, window):
                continue
            continuation = _announced(parts, position)
            around = set(keyword_tokens(window + " " + " ".join(s.text for s in continuation)))
            named_record = sentence.field is not None and record_tokens is not None
            if sentence.field is not None:  # "Authors: ..." answers with its record's title
                if record_tokens is not None:
                    around = record_tokens | _field_cue_tokens(sentence.field)
                mass = profile.coverage(around)
                coverage = profile.coverage(around, passage.language)
            else:
                own = set(keyword_tokens(" ".join(s.text for s in (sentence, *continuation))))
                # Every sentence of the record the question names is about its subject,
                # named or not: "Our models are released under the Apache 2.0 license"
                # answers for Mistral 7B as much as a sentence repeating the name.
                own |= head_tokens
                mass = (2 * profile.coverage(own) + profile.coverage(around)) / 3
                coverage = (2 * profile.coverage(own, passage.language)
                            + profile.coverage(around, passage.language)) / 3
            context = None
            if before and missing_in(binding, sentence.text + " " + frame) and not \
                    missing_in(binding, f"{before.text} {sentence.text} {frame}"):
                context = before
            fit = _answer_fit(profile, sentence.text, named_record)
            candidates.append(Evidence(index, sentence, mass, coverage, 0.0, context, fit,
                                       continuation,
                                       named=len(names) - len(missing_in(
                                           names, record if sentence.field else window)),
                                       subject_fit=SUBJECT_FIT if about_record
                                       and not named_record else 0.0))
    return candidates


def _answer_fit(profile: QuestionProfile, text: str, named_record: bool) -> float:
    """+QUANTITY_FIT when the sentence holds the kind of answer asked for (a date, an
    amount, the asked field of the record named, a preferred type), - when it lacks it."""
    if profile.answer_type is not None:  # the date, the price
        return QUANTITY_FIT if states_answer_type(profile, text) else -QUANTITY_FIT
    if profile.wants_number:
        return QUANTITY_FIT if states_quantity(text, profile.question) else -QUANTITY_FIT
    if named_record:  # the asked field of the record named: the answer itself
        return QUANTITY_FIT
    if profile.preferred_type is not None:  # "which lab": a sentence naming one
        pattern = lexicon().answer_types[profile.preferred_type].pattern
        return QUANTITY_FIT if pattern.search(text) else -QUANTITY_FIT
    return 0.0


def names_record(profile: QuestionProfile, title: str) -> bool:
    """Whether the question names the record titled ``title``: every word of the title's
    head (see :func:`title_head`) is among the question's terms or their translations.
    "DPO" ("直接偏好优化") names "Direct Preference Optimization: ..."; "Vision
    Transformers" does not name "EfficientViT: Memory Efficient Vision Transformer ...". """
    return bool(_named_head(profile, title))


def _named_head(profile: QuestionProfile, title: str) -> set[str]:
    """The tokens of the title's head when the question names the record, else none."""
    head = set(keyword_tokens(title_head(title)))
    said = profile.term_tokens | set(keyword_tokens(" ".join(c.text for c in profile.constraints)))
    return head if head <= said else set()


# Where a title without a colon turns from its name to what it does: "4D Gaussian
# Splatting for Real-Time ...", "Scaling Laws for Neural Language Models".
_TITLE_TURN = re.compile(r"\s(?:for|with|via|using|from|towards|in|on|of)\s")


def title_head(title: str) -> str:
    """The name part of a title: before its colon, else before the first preposition
    that follows a word."""
    head = re.split(r"[:：]", title)[0]
    if head == title:
        head = _TITLE_TURN.split(title, maxsplit=1)[0]
    return head


@lru_cache(maxsize=16)
def _field_cue_tokens(field: str) -> frozenset[str]:
    """The tokens of the words that ask for ``field`` (data/evidence.toml)."""
    return frozenset(keyword_tokens(" ".join(lexicon().metadata_fields.get(field, ()))))


def _binding(profile: QuestionProfile) -> list[Constraint]:
    """The constraints every answering window must mention: names with digits, and a
    name written with a number ("ICLR 2024", "CVPR 2024": the number alone would let
    ICML 2024's figures answer for ICLR)."""
    numbers_given = [c.text for c in profile.constraints if is_number(c.text)]
    return [c for c in profile.constraints
            if any(ch.isdigit() for ch in c.text)
            or any(re.search(rf"(?<![A-Za-z0-9]){re.escape(c.text)}\s*{re.escape(n)}(?!\d)",
                             profile.question)
                   for n in numbers_given)]


def names_of(profile: QuestionProfile) -> list[Constraint]:
    """The question's constraints that are names, not bare numbers ("GPT-4", "ICML";
    not "2024", "1,000")."""
    return [c for c in profile.constraints if not is_number(c.text)]


def about_the_subject(evidence: Sequence[Evidence]) -> list[Evidence]:
    """The quotes whose windows mention one of the question's names, where any does.

    Names without digits are not required of a quote (questions add what the sources
    leave out: "Microsoft's phi-1.5"), but where some quotes do name them, one that does
    not is about something else: what the question asks for must be in a quote about
    its subject ("Which university are the ABLE-NeRF authors from?" is not answered by
    another paper's 华中科技大学)."""
    # One name is enough: a quote naming "Microsoft" beside "phi-1.5" is no more about
    # phi-1.5 than one naming phi-1.5 alone.
    naming = [e for e in evidence if e.named]
    return naming or list(evidence)


_ANNOUNCES = re.compile(r"[:：]\s*$")
# At most this many sentences, and characters, follow an announcing sentence.
ANNOUNCED_SENTENCES = 4
ANNOUNCED_CHARS = 240


def _announced(parts: Sequence[Sentence], position: int) -> tuple[Sentence, ...]:
    """The sentences a sentence ending in a colon introduces (a list, steps, code)."""
    if not _ANNOUNCES.search(parts[position].text):
        return ()
    following: list[Sentence] = []
    used = 0
    for sentence in parts[position + 1:position + 1 + ANNOUNCED_SENTENCES]:
        if following and used + len(sentence.text) > ANNOUNCED_CHARS:
            break
        following.append(sentence)
        used += len(sentence.text)
    return tuple(following)


def _may_answer(sentence: Sentence, profile: QuestionProfile) -> bool:
    if sentence.heading:
        return False
    if sentence.field:
        return sentence.field in profile.asked_fields
    units = len(CJK_CHAR.findall(sentence.text)) + len(re.findall(r"[A-Za-z0-9]+",
                                                                   sentence.text))
    return units >= MIN_SENTENCE_UNITS


# Fragments shorter than this (in CJK characters plus Latin words) state nothing.
MIN_SENTENCE_UNITS = 5


def choose_evidence(profile: QuestionProfile, passages: Sequence[PassageLike],
                    embedder: SentenceEmbedder | None = None, limit: int = 2
                    ) -> list[Evidence]:
    """The best answering sentences, at most ``limit``, best first.

    Candidates are ranked by term mass; the best few are re-ranked with the embedder's
    similarity, which matches paraphrases and translations the glossary does not know.
    Later sentences join the best one when they score within ``SECOND_SENTENCE_GAP`` of
    it and come from its passage, or from another passage that names more of the
    question's names than it does: an answer rests on one source, and another one's
    sentences about the same subject are citations that hold nothing new.
    """
    ranked = sorted(candidate_sentences(profile, passages),
                    key=lambda e: (-e.term_score, e.passage, e.sentence.start))
    head = ranked[:EMBEDDED_CANDIDATES]
    if embedder is not None and head:
        vectors = embedder.embed_passages([e.quote for e in head])
        query = embedder.embed_queries([profile.question])[0]
        similarities = vectors @ query
        spread = float(similarities.std()) or 1.0
        boosts = SIMILARITY_WEIGHT * (similarities - similarities.mean()) / spread
        head = [replace(e, similarity=float(s), boost=float(b))
                for e, s, b in zip(head, similarities.tolist(), boosts.tolist())]
    head.sort(key=lambda e: (-e.score, e.passage, e.sentence.start))
    chosen: list[Evidence] = []
    for evidence in head:
        if len(chosen) >= limit:
            break
        if not chosen or _joins(evidence, chosen):
            chosen.append(evidence)
    return chosen


def _joins(evidence: Evidence, chosen: Sequence[Evidence]) -> bool:
    """Whether ``evidence`` joins the chosen quotes (see :func:`choose_evidence`)."""
    best = chosen[0]
    if evidence.score < best.score - SECOND_SENTENCE_GAP or _overlaps(evidence, chosen):
        return False
    return evidence.passage == best.passage or evidence.named > best.named


def _overlaps(evidence: Evidence, chosen: Sequence[Evidence]) -> bool:
    start, end = evidence.span
    return any(c.passage == evidence.passage and c.span[0] < end and start < c.span[1]
               for c in chosen)


# A second sentence joins the first only when it scores within this of it.
SECOND_SENTENCE_GAP = 0.3


def unknown_names(question: str, vocabulary: Vocabulary) -> list[str]:
    """Latin-script names in ``question`` (``FIFA``, ``H100``) that no indexed passage or
    title contains.

    jieba's Chinese names are left out: its tagger also marks ordinary words ("英法",
    "比特", "里加" cut from "优化里加正则项"), so an unknown one is weighed by the
    relevance check (as an unknown term) instead of abstaining outright. "PhD" is still
    known when the sources say 博士 (glossary), and
    "APIs", "RNN-style" or "800x800" when they say "API", "RNN", "800×800".
    """
    glossary = default_glossary()
    candidates = [n for n in latin_names(question) if not n.isdigit()]
    missing = []
    for term in dict.fromkeys(candidates):
        if len(term) < 2:
            continue
        variants = {term, term.replace("x", "×")}
        if len(term) > 3 and term.endswith("s"):
            variants.add(term[:-1])
        head, _, modifier = term.partition("-")
        if modifier.isalpha() and modifier.islower():
            variants.add(head)
        if " " in term:  # "Llama 2": the name part is what must be known
            variants.add(term.split(" ")[0])
        variants |= set(glossary.to_chinese(term) or glossary.to_english(term))
        if not any(len(v) >= 2 and mentioned(v, vocabulary) for v in variants):
            missing.append(term)
    return missing


# --- numbers with scale words ------------------------------------------------------------

_SCALED = re.compile(
    r"(\d+(?:\.\d+)?)\s*(亿|万|千|百万|million|billion|trillion|thousand|[kmb](?![a-z]))?",
    re.IGNORECASE)
_SCALES = {"亿": 1e8, "万": 1e4, "千": 1e3, "百万": 1e6, "thousand": 1e3, "million": 1e6,
           "billion": 1e9, "trillion": 1e12, "k": 1e3, "m": 1e6, "b": 1e9}


def is_number(text: str) -> bool:
    """Whether ``text`` is one number, perhaps with a scale word ("2,609", "5.4亿")."""
    return _SCALED.fullmatch(normalise(text.strip())) is not None


def number_values(text: str) -> set[float]:
    """Values of the numbers in ``text``, scale words applied ("5.4亿" and "540 million"
    are both 5.4e8), so a translated number can be checked against its source."""
    values = set()
    for match in _SCALED.finditer(normalise(text)):
        value = float(match.group(1))
        values.add(value)
        if match.group(2):
            values.add(round(value * _SCALES[match.group(2).lower()], 6))
    return values


def unsupported(text: str, support: str, question: str) -> list[str]:
    """Numbers and names in ``text`` found neither in ``support`` nor in ``question``.

    Numbers are compared by value with scale words; Latin names also by their glossary
    translations; Chinese names also by their English ones.
    """
    allowed = normalise(support + " " + question)
    values = number_values(support + " " + question)
    problems = []
    for match in _SCALED.finditer(normalise(text)):
        number = match.group(1)
        if re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", allowed):
            continue
        scaled = {float(number)}
        if match.group(2):
            scaled.add(round(float(number) * _SCALES[match.group(2).lower()], 6))
        if not any(abs(v - w) <= 1e-6 * max(abs(w), 1) for v in scaled for w in values):
            problems.append(match.group(0).strip())
    stop = lexicon().answer_stopwords
    for name in latin_names(text, openers_too=True):
        if name in stop or len(name) < 3 or name.lower() in STOPWORDS:
            continue
        if name[1:].islower() and re.search(rf"(?<![a-z]){name.lower()}(?![a-z])", allowed):
            continue  # "Because ..." when the sources say "because": a word, not a name
        if not _constraint(name, "latin").found_in(allowed):
            problems.append(name)
    for name in chinese_names(text):
        if not _constraint(name, "zh").found_in(allowed):
            problems.append(name)
    return list(dict.fromkeys(problems))


_CLAUSE_BREAK = re.compile(r"[,，;；。!?！？、:：()（）]|(?<=[A-Za-z])\.\s")
# Words this close to a number in an answer say what the number counts.
NUMBER_WINDOW = 3


def misbound_numbers(text: str, quotes: Sequence[str], question: str) -> list[str]:
    """Numbers the answer ties to a word that the quotes tie only to other numbers.

    "accepted 9,653 papers" from "提交了 9,653 篇论文,仅接受 2,609 篇": "accepted" (接受) is
    in the clause of 2,609, not of 9,653. Each number of the answer is checked with the
    words next to it against the clauses of the quotes holding that number.
    """
    numbered = [clause for quote in quotes for clause in _numbered_clauses(quote)]
    given = number_values(question)
    profile = analyse(question)
    # Where a quote lists results clause by clause, an amount whose every clause lacks a
    # name of the question that another clause holds is said of something else: asked
    # U-ViT's FID on ImageNet, "5.48" is MS-COCO's in "(2.29 ... on ImageNet 256x256),
    # and 5.48 ... on MS-COCO".
    binding = [b for quote in quotes for b in _clause_binding(profile, quote)]
    problems = []
    for match in _SCALED.finditer(normalise(text)):
        value = _value(match)
        if value in given:
            continue
        if _bound_elsewhere(value, binding):
            problems.append(match.group(0).strip())
            continue
        # Each word near the number, as the forms that stand for it: any one of its
        # tokens; for a bare "48 [1]", which answers the question, the question's terms,
        # a glossary term by a whole translation (英德: "English" and "German" together).
        near: list[tuple[frozenset[str], ...]] = [
            tuple(frozenset({t}) for t in tokens)
            for tokens in _near_terms(normalise(text), match.start(), match.end())]
        if not near:
            near = [g.forms or tuple(frozenset({t}) for t in g.tokens)
                    for g in profile.groups]
        own = [terms for values, terms in numbered if value in values]
        others = [terms for values, terms in numbered if value not in values]
        if not own or not near:
            continue
        own_terms = set().union(*own)
        elsewhere = set().union(*others) if others else set()
        # Only words that tell the clauses apart count: one found with this number and
        # with others ("papers") says nothing.
        if any(_held(forms, elsewhere) and not _held(forms, own_terms) for forms in near):
            problems.append(match.group(0).strip())
    return list(dict.fromkeys(problems))


def _held(forms: Sequence[frozenset[str]], terms: set[str]) -> bool:
    return any(form <= terms for form in forms)


def unsupported_denial(text: str, quotes: Sequence[str]) -> bool:
    """Whether the answer denies something while none of its quotes denies anything
    (see ``[negation]`` in data/evidence.toml)."""
    words = lexicon()
    text = _LEADING_YES_NO.sub("", text.lower())  # "No, it is proprietary" denies nothing
    text = _NUMBER_SIGN.sub(" ", text)  # "No. 1"
    for phrase in words.not_denials:
        text = text.replace(phrase, " ")
    if not any(_cue_in(cue, text) for cue in words.negation_cues):
        return False
    cues = (*words.negation_cues, *words.quote_denials)
    return not any(any(ch in quote for ch in words.negation_chars)
                   or any(_cue_in(cue, quote) for cue in cues) for quote in quotes)


_LEADING_YES_NO = re.compile(r"^\s*(?:yes|no)\s*[,.!]\s*")
_NUMBER_SIGN = re.compile(r"\bno\.\s*\d")


def _value(match: re.Match[str]) -> float:
    value = float(match.group(1))
    return round(value * _SCALES[match.group(2).lower()], 6) if match.group(2) else value


def _numbered_clauses(quote: str) -> list[tuple[set[float], set[str]]]:
    """The clauses of ``quote`` holding numbers: their values, and their words with those
    of the clause before. Chinese often leaves the counted noun out after the first
    clause ("提交了 9,653 篇论文,仅接受 2,609 篇"): the second clause counts papers too."""
    clauses: list[tuple[set[float], set[str]]] = []
    previous: set[str] = set()
    for clause in _CLAUSE_BREAK.split(normalise(quote)):
        terms = set(keyword_tokens(clause))
        values = number_values(clause)
        if values:
            clauses.append((values, terms | previous))
            previous = terms
        elif clauses:  # "Llama 2得分54,透明度排第一": the ranking is said of 54 only
            clauses[-1][1].update(terms)
            previous = set()
    return clauses


def _near_terms(text: str, start: int, end: int) -> list[set[str]]:
    """The words within NUMBER_WINDOW of a number, each with its glossary translations."""
    glossary = default_glossary()
    # Within the number's own clause: "收到9,653篇投稿,接受了2,609篇" ties 接受 to 2,609.
    before = _words(_CLAUSE_BREAK.split(text[:start])[-1])[-NUMBER_WINDOW:]
    after = _words(_CLAUSE_BREAK.split(text[end:])[0])[:NUMBER_WINDOW]
    groups = []
    for word in before + after:
        tokens = set(keyword_tokens(word))
        if not tokens or word.isdigit():
            continue
        translated = glossary.to_english(word) if CJK_CHAR.search(word) else \
            glossary.to_chinese(word)
        for term in translated:
            tokens |= set(keyword_tokens(term))
        groups.append(tokens)
    return groups


def _words(text: str) -> list[str]:
    from .textutils import jieba_words

    words: list[str] = []
    for piece in re.findall(rf"[A-Za-z][A-Za-z\-]*|[{CJK_RANGES}]+", text):
        words.extend(jieba_words(piece) if CJK_CHAR.search(piece) else [piece])
    return words
