"""Grounded answers: retrieve, decide whether the corpus can answer, generate, verify, cite.

The pipeline for one question:

1. a follow-up is condensed with the conversation into a standalone question;
2. passages are retrieved (hybrid search);
3. if the question names something the corpus never mentions (``FIFA``, ``H100``,
   ``世界杯``), the answer abstains and says which term was not found;
4. the LLM answers from the numbered passages in the question's language, citing [n];
5. the answer is checked against what it cites: every marker must point to a passage,
   and every number and Latin-script name in it must appear in the cited passages (or
   the question). A failed check, an LLM error or a timeout falls back to the
   extractive answer (the best supporting sentences) with a visible notice.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .chunking import split_sentences
from .config import Config
from .embeddings import Embedder
from .glossary import default_glossary
from .index import IndexStore
from .llm import ChatLLM, LLMError
from .prompts import (
    EXTRACTIVE_HEADER,
    FALLBACK_NOTICE,
    MISSING_TERMS,
    NOT_FOUND,
    answer_messages,
    condense_messages,
)
from .retrieval import HybridRetriever, Passage
from .textutils import STOPWORDS, detect_language, keyword_tokens

History = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Citation:
    """A marker in the answer text (``[1]``) and the passage it refers to.

    ``span`` is the (start, end) of the passage sentence that best supports the answer
    sentences carrying the marker: ``passage.text[start:end]``; None when no sentence
    shares a term with them.
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

    ``mode`` is ``"llm"``, ``"extractive"`` or ``"abstained"``; ``notice`` explains a
    fallback (LLM failure, timeout, unverifiable answer). ``timings`` holds seconds for
    ``retrieval``, ``first_token`` and ``total``.
    """

    question: str
    text: str
    citations: list[Citation]
    abstained: bool
    language: str
    llm: str
    mode: str
    timings: dict[str, float] = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)
    standalone_question: str = ""
    notice: str | None = None


CITATION_MARKER = re.compile(r"\[(\d{1,2})\]")  # [1] .. [99] in answer text
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Lookarounds, not \b: CJK characters count as word characters, so \b finds no edge in
# "FAISS绕过了" and a wrong name glued to Chinese text would go unchecked.
_LATIN_NAME = re.compile(r"(?<![A-Za-z0-9])[A-Z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*(?![A-Za-z0-9])")
_EN_SALIENT = re.compile(
    r"(?<![A-Za-z0-9])(?:[A-Z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*|[a-z]*\d[A-Za-z0-9-]*)"
    r"(?![A-Za-z0-9])")
_ABSTAIN_PHRASES = ("资料中没有找到答案", "没有找到答案", "do not contain the answer",
                    "does not contain the answer", "not contain the answer",
                    "no information", "not mentioned")
_QUESTION_WORDS = {"who", "what", "which", "when", "where", "why", "how", "is", "are", "does",
                   "did", "do", "can", "was", "were", "according", "in", "the", "a"}
# Common nouns jieba tags as place names: "在哪个城市举办" asks about a city, it names none.
_GENERIC_ZH_NAMES = {"城市", "城镇", "农村", "地方", "当地", "本地", "各地", "全国", "全球",
                     "世界", "国内", "国外", "海外", "各国", "首都", "省份", "地区"}
_NAME_STOPWORDS = {"The", "In", "It", "This", "That", "These", "Sources", "Source", "Answer",
                   "According", "However", "Also", "And", "But", "For", "With", "Its", "They"}


def missing_terms(question: str, store: IndexStore) -> list[str]:
    """Names in ``question`` that no indexed passage contains (case-insensitive).

    Names are Latin-script proper nouns and alphanumerics (``FIFA``, ``H100``) and, in
    Chinese, jieba's person/place/organisation/proper-noun words (``卡塔尔``, ``世界杯``).
    """
    candidates: list[str] = []
    first_word = re.match(r"\W*([A-Za-z]+)", question)
    for word in _EN_SALIENT.findall(question):
        if word.lower() in _QUESTION_WORDS or word.lower() in STOPWORDS:
            continue
        if first_word and word == first_word.group(1) and word[1:].islower():
            # "Summarise ..." is capitalised because it starts the question, which says
            # nothing about it being a name; an unknown name there goes unchecked.
            continue
        if word.isdigit() and len(word) == 4:  # years say little about the topic
            continue
        candidates.append(word)
    if detect_language(question) == "zh":
        candidates.extend(_chinese_names(question))
    def mentioned(term: str) -> bool:
        needle = term.lower()
        for chunk_id, _ in store.keywords.search(term, 50):
            chunk = store.chunks[chunk_id].chunk
            title = store.documents[chunk.doc_id].title
            if needle in chunk.text.lower() or needle in title.lower():
                return True
        return False

    glossary = default_glossary()
    missing = []
    for term in dict.fromkeys(candidates):
        # "PhD" is still known when the Chinese sources say 博士 (and the reverse), and
        # "APIs", "RNN-style" or "800x800" when the sources say "API", "RNN", "800×800".
        if len(term) < 2:
            continue
        variants = {term, term.removesuffix("s"), term.replace("x", "×")}
        head, _, modifier = term.partition("-")
        if modifier.isalpha() and modifier.islower():  # "RNN-style", not "GPT-5"
            variants.add(head)
        variants |= set(glossary.to_chinese(term) or glossary.to_english(term))
        if not any(len(v) >= 2 and mentioned(v) for v in variants):
            missing.append(term)
    return missing


def _is_abstention(text: str) -> bool:
    lowered = text.lower()
    return any(phrase in lowered for phrase in _ABSTAIN_PHRASES)


def cite(text: str, passages: Sequence[Passage]) -> list[Citation]:
    """Citations for the ``[n]`` markers in ``text`` that point to a passage, in order,
    each with the span of its passage that supports the sentences citing it."""
    claims: dict[str, list[str]] = {}
    claim = ""
    for sentence in split_sentences(text):
        body = CITATION_MARKER.sub(" ", sentence)
        if any(ch.isalnum() for ch in body):
            claim = body  # a marker after the full stop ("... 2024. [1]") cites the sentence
        for match in CITATION_MARKER.finditer(sentence):
            number = int(match.group(1))
            if 1 <= number <= len(passages):
                claims.setdefault(match.group(0), []).append(claim)
    return [Citation(marker, passages[int(marker[1:-1]) - 1],
                     supporting_span(" ".join(said), passages[int(marker[1:-1]) - 1].text))
            for marker, said in claims.items()]


def supporting_span(claim: str, passage_text: str) -> tuple[int, int] | None:
    """The (start, end) of the sentence of ``passage_text`` sharing most terms with
    ``claim``, without surrounding whitespace; None when none shares a term."""
    terms = set(keyword_tokens(claim))
    best: tuple[int, int] | None = None
    best_overlap = 0
    offset = 0
    for sentence in split_sentences(passage_text):
        overlap = len(terms & set(keyword_tokens(sentence)))
        if overlap > best_overlap:
            stripped = sentence.strip()
            start = offset + sentence.index(stripped[:1]) if stripped else offset
            best, best_overlap = (start, start + len(stripped)), overlap
        offset += len(sentence)
    return best


def focus_passages(question: str, passages: Sequence[Passage], embedder: Embedder,
                   budget: int) -> list[Passage]:
    """The passages as the LLM sees them: each longer than ``budget`` characters cut down
    to its sentences closest to ``question`` (in their original order, gaps marked "…").

    Reading the prompt is most of an answer's time on a CPU (about 8 ms per token for the
    0.5B model on two cores); a 300-word English chunk is ~400 tokens, most of them
    unrelated to the question. ``budget`` <= 0 keeps whole passages.
    """
    if budget <= 0:
        return list(passages)
    long = [i for i, p in enumerate(passages) if len(p.text) > budget]
    if not long:
        return list(passages)
    pieces = {i: [s for s in split_sentences(passages[i].text) if s.strip()] for i in long}
    flat = [(i, j) for i in long for j in range(len(pieces[i]))]
    vectors = embedder.embed_passages([pieces[i][j].strip() for i, j in flat])
    scores = vectors @ embedder.embed_queries([question])[0]
    by_passage: dict[int, list[tuple[float, int]]] = {i: [] for i in long}
    for (i, j), score in zip(flat, scores.tolist()):
        by_passage[i].append((score, j))
    focused = list(passages)
    for i in long:
        chosen: list[int] = []
        used = 0
        for _, j in sorted(by_passage[i], reverse=True):
            length = len(pieces[i][j].strip())
            if chosen and used + length > budget:
                continue
            chosen.append(j)
            used += length
        parts, previous = [], -1
        for j in sorted(chosen):
            if previous >= 0 and j != previous + 1:
                parts.append("…")
            parts.append(pieces[i][j].strip())
            previous = j
        focused[i] = replace(passages[i], text=" ".join(parts))
    return focused


def attribute_citations(text: str, passages: Sequence[Passage]) -> str:
    """Append a marker to each uncited sentence: the passage sharing most of its terms.

    Small local models often answer correctly but forget the markers; the sentence is
    then attributed to the passage it overlaps most, and verification checks it there.
    """
    passage_terms = [set(keyword_tokens(p.text + " " + p.title)) for p in passages]
    out = []
    for sentence in split_sentences(text):
        body = sentence.rstrip()
        if body and not CITATION_MARKER.search(body) and sum(ch.isalnum() for ch in body) >= 2:
            terms = set(keyword_tokens(body))
            overlaps = [len(terms & candidate) for candidate in passage_terms]
            best = max(range(len(passages)), key=lambda i: overlaps[i]) if passages else -1
            if best >= 0 and overlaps[best] > 0:
                sentence = f"{body} [{best + 1}]" + sentence[len(body):]
        out.append(sentence)
    return "".join(out)


def unsupported_claims(text: str, citations: Sequence[Citation], question: str) -> list[str]:
    """Numbers, Latin-script names and Chinese proper names (jieba) in ``text`` found in
    neither the cited passages nor the question: the signs of a hallucinated answer."""
    body = CITATION_MARKER.sub(" ", text)
    support = " ".join(c.passage.text + " " + c.passage.title for c in citations) + " " + question
    support_squashed = re.sub(r"[\s,]", "", support).lower()
    problems = []
    for number in _NUMBER.findall(body):
        if number.replace(",", "") not in support_squashed:
            problems.append(number)
    for name in _LATIN_NAME.findall(body):
        if name in _NAME_STOPWORDS or len(name) < 3:
            continue
        if name.lower() not in support.lower():
            problems.append(name)
    glossary = default_glossary()
    for name in _chinese_names(body):  # "在北京举办" when the sources say 维也纳
        variants = {name, *glossary.to_english(name)}
        if not any(v.lower() in support.lower() for v in variants):
            problems.append(name)
    return list(dict.fromkeys(problems))


def _chinese_names(text: str) -> list[str]:
    """Person, place, organisation and other proper names jieba finds in ``text``."""
    if not re.search(r"[\u4e00-\u9fff]", text):
        return []
    import jieba.posseg

    return [token.word for token in jieba.posseg.cut(text)
            if token.flag in ("nr", "ns", "nt", "nz") and len(token.word) >= 2
            and token.word not in _GENERIC_ZH_NAMES]


class Answerer:
    """Turns a question (and conversation history) into a cited :class:`Answer`."""

    def __init__(self, retriever: HybridRetriever, embedder: Embedder, config: Config,
                 llm: ChatLLM | None, llm_unavailable: str | None = None) -> None:
        """``llm`` None answers extractively; ``llm_unavailable`` says why when that was
        not the user's choice (shown as the fallback notice)."""
        if config.answer_top_k < 1:
            raise ValueError("answer_top_k must be >= 1")
        self.retriever = retriever
        self.store = retriever.store
        self.embedder = embedder
        self.config = config
        self.llm = llm
        self.llm_unavailable = llm_unavailable

    def stream(self, question: str, history: History | None = None, top_k: int | None = None,
               cancel: threading.Event | None = None) -> Iterator[str | Retrieval | Answer]:
        """Yield the :class:`Retrieval`, text pieces as they are generated, then the final
        :class:`Answer`.

        The pieces are provisional: when verification replaces the LLM's text by the
        extractive fallback, the final ``Answer.text`` is what counts.
        """
        started = time.perf_counter()
        language = detect_language(question)
        timings: dict[str, float] = {}
        standalone = self._standalone(question, history or (), language, cancel)
        timings["condense"] = time.perf_counter() - started
        passages = self.retriever.run(standalone, top_k or self.config.answer_top_k)
        timings["retrieval"] = time.perf_counter() - started - timings["condense"]
        yield Retrieval(question, standalone, passages, timings["retrieval"])
        base = dict(question=question, language=language, passages=passages,
                    standalone_question=standalone, timings=timings)

        missing = missing_terms(standalone, self.store) if passages else ["?"]
        if not passages or missing:
            terms = "、".join(missing) if language == "zh" else ", ".join(
                f"'{t}'" for t in missing)
            text = MISSING_TERMS[language].format(terms=terms) if passages else NOT_FOUND[language]
            timings["total"] = time.perf_counter() - started
            yield text
            yield Answer(text=text, citations=[], abstained=True, llm="none", mode="abstained",
                         **base)
            return

        if self.llm is None:
            answer = self._extractive(standalone, passages, language, base,
                                      self.llm_unavailable)
            timings["total"] = time.perf_counter() - started
            yield answer.text
            yield answer
            return

        pieces: list[str] = []
        notice = None
        try:
            shown = focus_passages(standalone, passages, self.embedder,
                                   self.config.prompt_passage_chars)
            messages = answer_messages(standalone, shown, language)
            for piece in self.llm.stream(messages, max_tokens=self.config.max_answer_tokens,
                                         temperature=self.config.temperature,
                                         timeout=self.config.llm_timeout, cancel=cancel):
                if not pieces:
                    timings["first_token"] = time.perf_counter() - started
                pieces.append(piece)
                yield piece
        except LLMError as exc:
            notice = str(exc)
        text = "".join(pieces).strip()
        if cancel is not None and cancel.is_set() and notice is None:
            timings["total"] = time.perf_counter() - started
            yield Answer(text=text, citations=cite(text, passages), abstained=False,
                         llm=self.llm.name, mode="llm", notice="stopped", **base)
            return
        if notice is None and _is_abstention(text):
            timings["total"] = time.perf_counter() - started
            yield Answer(text=NOT_FOUND[language], citations=[], abstained=True,
                         llm=self.llm.name, mode="abstained", **base)
            return
        if notice is None:
            text = attribute_citations(text, passages)
            citations = cite(text, passages)
            content = CITATION_MARKER.sub("", text)
            if sum(ch.isalnum() for ch in content) < 2:
                notice = ("the model gave no answer text" if language == "en"
                          else "模型没有给出回答内容")
            elif detect_language(content) != language and len(content) > 12:
                notice = ("the model answered in the wrong language" if language == "en"
                          else "模型没有用中文回答")
            elif not citations:
                notice = ("the model's answer cited no source" if language == "en"
                          else "模型的回答没有引用资料")
            elif self.config.verify_answers:
                problems = unsupported_claims(text, citations, standalone)
                if problems:
                    notice = (f"not found in the cited sources: {', '.join(problems)}"
                              if language == "en" else f"引用的资料中没有:{'、'.join(problems)}")
            if notice is None:
                timings["total"] = time.perf_counter() - started
                yield Answer(text=text, citations=citations, abstained=False,
                             llm=self.llm.name, mode="llm", **base)
                return
        answer = self._extractive(standalone, passages, language, base, notice)
        timings["total"] = time.perf_counter() - started
        yield answer

    # -- steps --

    def _standalone(self, question: str, history: History, language: str,
                    cancel: threading.Event | None = None) -> str:
        """The follow-up rewritten as a standalone question (LLM, else the last turns)."""
        if not history:
            return question
        previous = " ".join(user for user, _ in history[-2:])
        fallback = f"{previous} {question}"
        if self.llm is None:
            return fallback
        try:
            text = "".join(self.llm.stream(condense_messages(history, question, language),
                                           cancel=cancel,
                                           max_tokens=80, temperature=0.0,
                                           timeout=min(self.config.llm_timeout, 30.0)))
        except LLMError:
            return fallback
        text = text.strip().splitlines()[0].strip() if text.strip() else ""
        text = re.sub(r"^(?:standalone question|rewritten question|问题)\s*[:：]\s*", "", text,
                      flags=re.I)
        # A sane rewrite is in the question's language and keeps a topic word of the history.
        if (not text or len(text) > 4 * len(fallback) or detect_language(text) != language):
            return fallback
        return f"{text} {previous}" if not _shares_topic(text, previous) else text

    def _extractive(self, question: str, passages: list[Passage], language: str,
                    base: dict, notice: str | None) -> Answer:
        """The sentences of the passages closest to the question, each cited."""
        candidates: list[tuple[int, str]] = []
        for number, passage in enumerate(passages, start=1):
            for sentence in split_sentences(passage.text):
                sentence = sentence.strip()
                if len(sentence) >= 8 and sum(ch.isalnum() for ch in sentence) >= 6:
                    candidates.append((number, sentence))
        if not candidates:
            candidates = [(1, passages[0].text.strip()[:300])]
        vectors = self.embedder.embed_passages([s for _, s in candidates])
        query = self.embedder.embed_queries([question])[0]
        scores = vectors @ query
        # Prefer sentences from higher-ranked passages when similarities are close.
        scores = scores - 0.01 * np.array([n - 1 for n, _ in candidates], dtype=np.float32)
        best = sorted(np.argsort(-scores)[:3].tolist())
        lines = [EXTRACTIVE_HEADER[language]]
        for index in best:
            number, sentence = candidates[index]
            lines.append(f"- {sentence} [{number}]")
        text = "\n".join(lines)
        if notice:
            text = FALLBACK_NOTICE[language].format(reason=notice) + "\n" + text
        return Answer(text=text, citations=cite(text, passages), abstained=False,
                      llm="extractive", mode="extractive", notice=notice, **base)


def _shares_topic(rewritten: str, previous: str) -> bool:
    return bool(set(keyword_tokens(rewritten)) & set(keyword_tokens(previous)))
