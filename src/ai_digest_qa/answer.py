"""Grounded answers: retrieve, decide whether the sources answer, generate, verify, cite.

The steps for one question (:meth:`Answerer.stream`):

1. **retrieve**: a follow-up is condensed with the conversation into a standalone
   question, and passages are retrieved (hybrid search);
2. **decide** (answerability.py, evidence.py): abstain when a name is unknown to the
   index, when no sentence mentions the question's constraints together (another year,
   another model), or when relevance falls below the calibrated threshold; otherwise
   choose the sentences that answer;
3. **generate**: the LLM translates those quotes into the question's language, citing
   [n], from a short prompt (``answer_strategy = "evidence"``); quotes already in the
   question's language are the answer as they stand once the model's first tokens do
   not say "not found" (``same_language_answer``); with ``"passages"`` the model reads
   the whole passages instead (the earlier default);
4. **verify**: every marker must point to a quote, and every number and name of the
   answer must be in the quotes it cites (numbers by value: "5.4亿" is "540 million"). A
   failed check is retried once with a stricter prompt, then falls back to the quotes
   themselves (the extractive answer); the model's own "not found" abstains unless the
   evidence is strong;
5. **finish**: markers are renumbered to the passages' order and timings recorded.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .answerability import RelevanceModel, Signals, default_model
from .bridge import TermBridge, default_cache_dir
from .chunking import split_sentences
from .config import Config
from .embeddings import Embedder
from .evidence import (
    Evidence,
    QuestionProfile,
    about_the_subject,
    analyse,
    answer_lacks,
    choose_evidence,
    misbound_numbers,
    names_of,
    normalise,
    unknown_names,
    unmet_requirement,
    unsupported,
    unsupported_denial,
)
from .index import IndexStore
from .llm import ChatLLM, LLMError, is_local
from .prompts import (
    EXTRACTIVE_HEADER,
    FALLBACK_NOTICE,
    HISTORY_TURNS,
    MISSING_TERMS,
    NOT_COVERED,
    NOT_FOUND,
    NOT_STATED,
    NOT_STATED_ABOUT,
    NOT_STATED_ANY,
    OFF_TOPIC,
    QUOTED_HEADER,
    answer_messages,
    condense_messages,
    quote_messages,
    says_not_found,
)
from .records import (
    AbstentionKind,
    Answer,
    AnswerMode,
    Citation,
    History,
    Passage,
    Retrieval,
)
from .retrieval import HybridRetriever
from .textutils import CJK_CHAR, CJK_RANGES, detect_language, keyword_tokens

CITATION_MARKER = re.compile(r"\[(\d{1,2})\]")  # [1] .. [99] in answer text
# Low relevance abstains only for questions at least this much (by term weight) about
# things the index never contains: fitted on a few dozen questions, the relevance model
# alone also turned away answerable questions of the report half it had not seen.
OFF_TOPIC_UNKNOWN_SHARE = 0.5
# Tokens the model writes when it only judges whether same-language quotes answer: its
# "not found" reply (资料中没有找到答案。 / The sources do not contain the answer.) fits.
JUDGE_TOKENS = 12


def missing_terms(question: str, store: IndexStore) -> list[str]:
    """Latin-script names in ``question`` that no indexed passage contains."""
    return unknown_names(question, store)


def _is_abstention(text: str) -> bool:
    return says_not_found(text)


def cite(text: str, passages: Sequence[Passage]) -> list[Citation]:
    """Citations for the ``[n]`` markers in ``text`` that point to a passage, in order,
    each with the span of its passage that supports the sentences citing it."""
    claims = _claims_by_marker(text, len(passages))
    return [Citation(marker, passages[int(marker[1:-1]) - 1],
                     supporting_span(" ".join(said), passages[int(marker[1:-1]) - 1].text))
            for marker, said in claims.items()]


def _claims_by_marker(text: str, count: int) -> dict[str, list[str]]:
    """For each valid marker (1..count), the answer sentences carrying it."""
    claims: dict[str, list[str]] = {}
    claim = ""
    for sentence in split_sentences(text):
        body = CITATION_MARKER.sub(" ", sentence)
        if any(ch.isalnum() for ch in body):
            claim = body  # a marker after the full stop ("... 2024. [1]") cites the sentence
        for match in CITATION_MARKER.finditer(sentence):
            if 1 <= int(match.group(1)) <= count:
                claims.setdefault(match.group(0), []).append(claim)
    return claims


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
    """The passages as the LLM sees them (strategy "passages"): each longer than
    ``budget`` characters cut down to its sentences closest to ``question`` (in their
    original order, gaps marked "…"). ``budget`` <= 0 keeps whole passages."""
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
        chosen = _within_budget(by_passage[i], pieces[i], budget)
        focused[i] = replace(passages[i], text=_join_with_gaps(pieces[i], chosen))
    return focused


def _within_budget(scored: list[tuple[float, int]], pieces: list[str], budget: int
                   ) -> list[int]:
    chosen: list[int] = []
    used = 0
    for _, j in sorted(scored, reverse=True):
        length = len(pieces[j].strip())
        if chosen and used + length > budget:
            continue
        chosen.append(j)
        used += length
    return chosen


def _join_with_gaps(pieces: list[str], chosen: list[int]) -> str:
    parts, previous = [], -1
    for j in sorted(chosen):
        if previous >= 0 and j != previous + 1:
            parts.append("…")
        parts.append(pieces[j].strip())
        previous = j
    return " ".join(parts)


def attribute_citations(text: str, passages: Sequence[Passage]) -> str:
    """Append a marker to each uncited sentence: the passage sharing most of its terms.

    Small local models often answer correctly but forget the markers; the sentence is
    then attributed to the passage it overlaps most, and verification checks it there.
    """
    return _attribute(text, [p.text + " " + p.title for p in passages])


# A Chinese word hyphenated to an English one: half of a term translated.
_HALF_TRANSLATED = re.compile(rf"[{CJK_RANGES}]-[A-Za-z]|[A-Za-z]-[{CJK_RANGES}]")


def _attribute(text: str, sources: Sequence[str]) -> str:
    source_terms = [set(keyword_tokens(s)) for s in sources]
    out = []
    for sentence in split_sentences(text):
        body = sentence.rstrip()
        if body and not CITATION_MARKER.search(body) and sum(ch.isalnum() for ch in body) >= 2:
            terms = set(keyword_tokens(body))
            overlaps = [len(terms & candidate) for candidate in source_terms]
            best = max(range(len(sources)), key=lambda i: overlaps[i]) if sources else -1
            if best >= 0 and overlaps[best] > 0:
                sentence = f"{body} [{best + 1}]" + sentence[len(body):]
        out.append(sentence)
    return "".join(out)


def unsupported_claims(text: str, citations: Sequence[Citation], question: str) -> list[str]:
    """Numbers, Latin-script names and Chinese proper names (jieba) in ``text`` found in
    neither the cited passages nor the question: the signs of a hallucinated answer."""
    body = CITATION_MARKER.sub(" ", text)
    support = " ".join(c.passage.text + " " + c.passage.title for c in citations)
    return unsupported(body, support, question)


@dataclass
class _Turn:
    """One answer as it moves through the steps."""

    question: str
    history: History
    language: str
    started: float
    standalone: str = ""
    passages: list[Passage] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    profile: QuestionProfile | None = None
    evidence: list[Evidence] = field(default_factory=list)
    relevance: float | None = None

    def quotes(self) -> list[tuple[str, str]]:
        """The chosen evidence as (title, quote) pairs, in the order the model sees."""
        return [(self.passages[e.passage].title, e.quote) for e in self.evidence]

    def answer(self, text: str, mode: AnswerMode, llm: str, citations: list[Citation] | None
               = None, notice: str | None = None, abstention: AbstentionKind | None = None
               ) -> Answer:
        return Answer(question=self.question, text=text, citations=citations or [],
                      abstained=mode == "abstained", language=self.language, llm=llm,
                      mode=mode, timings=self.timings, passages=self.passages,
                      standalone_question=self.standalone, notice=notice,
                      abstention=abstention, relevance=self.relevance)


def _recent(history: History | None) -> History:
    """The turns a follow-up is read against: the last few, however long the chat (an
    API client sends its whole conversation)."""
    return tuple(history or ())[-HISTORY_TURNS:]


def _only_a_title(content: str, titles: set[str], quotes: list[str]) -> bool:
    """Whether the answer is (most of) a source's title and nothing else: a label the
    prompt showed, not an answer ("Zephyr: Direct Distillation of LM Alignment"). A
    name the quotes state too ("Mistral" for "Mistral 7B") may well be the answer."""
    def letters(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())

    answer = letters(content)
    if len(answer) < 4 or any(answer in letters(quote) for quote in quotes):
        return False
    return any(answer in letters(title) and 2 * len(answer) >= len(letters(title))
               for title in titles)


class Answerer:
    """Turns a question (and conversation history) into a cited :class:`Answer`."""

    def __init__(self, retriever: HybridRetriever, embedder: Embedder, config: Config,
                 llm: ChatLLM | None, llm_unavailable: str | None = None,
                 relevance: RelevanceModel | None = None,
                 bridge: TermBridge | None = None) -> None:
        """``llm`` None answers extractively; ``llm_unavailable`` says why when that was
        not the user's choice (shown as the fallback notice). ``bridge`` is shared by
        the answers of one assistant (its word cache lasts); without one, and with
        ``term_bridge`` on, the answerer makes its own."""
        if config.answer_top_k < 1:
            raise ValueError("answer_top_k must be >= 1")
        self.retriever = retriever
        self.store = retriever.store
        self.embedder = embedder
        self.config = config
        self.llm = llm
        self.llm_unavailable = llm_unavailable
        self.relevance = relevance or default_model()
        if not config.term_bridge:
            bridge = None
        elif bridge is None:
            bridge = TermBridge(embedder, default_cache_dir(config))
        self.bridge = bridge

    def stream(self, question: str, history: History | None = None, top_k: int | None = None,
               cancel: threading.Event | None = None) -> Iterator[str | Retrieval | Answer]:
        """Yield the :class:`Retrieval`, text pieces as they are generated, then the final
        :class:`Answer`.

        The pieces are provisional: when verification replaces the LLM's text by the
        extractive fallback, the final ``Answer.text`` is what counts.
        """
        turn = _Turn(question, _recent(history), detect_language(question),
                     time.perf_counter())
        yield self._retrieve(turn, top_k, cancel)
        answer = self._decide(turn)
        if answer is None and self.llm is not None:
            answer = yield from self._generate(turn, self.llm, cancel)
        else:
            if answer is None:
                answer = self._extractive(turn, self.llm_unavailable)
            yield answer.text
        turn.timings["total"] = time.perf_counter() - turn.started
        yield answer

    def signals(self, question: str, history: History | None = None) -> Signals | None:
        """The relevance signals of ``question``, or None when an earlier check decides
        (see :meth:`_abstention`); generates nothing."""
        turn = _Turn(question, _recent(history), detect_language(question),
                     time.perf_counter())
        self._retrieve(turn, None, None)
        answer = self._abstention(turn, relevance_check=False)
        if answer is not None or not turn.evidence or turn.profile is None:
            return None
        best = turn.evidence[0]
        return Signals.of(turn.profile, best, turn.passages[best.passage].language)

    def quote_prompt(self, question: str) -> list[dict[str, str]] | None:
        """The messages the evidence strategy sends for ``question`` (None when it
        abstains first); for benchmarks and debugging."""
        turn = _Turn(question, (), detect_language(question), time.perf_counter())
        self._retrieve(turn, None, None)
        if self._abstention(turn) is not None or not turn.evidence:
            return None
        return quote_messages(turn.standalone, turn.quotes(), turn.language)

    # -- 1. retrieve --

    def _retrieve(self, turn: _Turn, top_k: int | None,
                  cancel: threading.Event | None) -> Retrieval:
        turn.standalone = self._standalone(turn.question, turn.history, turn.language, cancel)
        turn.timings["condense"] = time.perf_counter() - turn.started
        turn.passages = self.retriever.run(turn.standalone, top_k or self.config.answer_top_k)
        turn.timings["retrieval"] = time.perf_counter() - turn.started - turn.timings["condense"]
        return Retrieval(turn.question, turn.standalone, turn.passages, turn.timings["retrieval"])

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
                                           cancel=cancel, max_tokens=80, temperature=0.0,
                                           timeout=min(self.config.llm_timeout, 30.0)))
        except LLMError:
            return fallback
        text = text.strip().splitlines()[0].strip() if text.strip() else ""
        text = re.sub(r"^(?:standalone question|rewritten question|问题)\s*[:：]\s*", "", text,
                      flags=re.I)
        # A sane rewrite is in the question's language, keeps what the follow-up asks
        # about, and adds no name or number the conversation never had ("the 1,000
        # papers"). One that loses the history's subject gets it back.
        said = question + " " + " ".join(f"{u} {a}" for u, a in history)
        if (not text or len(text) > 4 * len(fallback) or detect_language(text) != language
                or unsupported(text, said, "") or not _keeps_follow_up(text, question)):
            return fallback
        return text if _keeps_subject(text, previous) else f"{text} {previous}"

    # -- 2. decide --

    def _decide(self, turn: _Turn) -> Answer | None:
        """An abstention when the sources do not answer; None to go on. Chooses the
        evidence (strategy "evidence") on the way."""
        started = time.perf_counter()
        try:
            return self._abstention(turn)
        finally:
            turn.timings["decide"] = time.perf_counter() - started

    def _abstention(self, turn: _Turn, relevance_check: bool = True) -> Answer | None:
        language = turn.language
        if not turn.passages:
            return turn.answer(NOT_FOUND[language], "abstained", "none",
                               abstention="no-passages")
        unknown = missing_terms(turn.standalone, self.store)
        if unknown:
            terms = "、".join(unknown) if language == "zh" else ", ".join(
                f"'{t}'" for t in unknown)
            return turn.answer(MISSING_TERMS[language].format(terms=terms), "abstained",
                               "none", abstention="unknown-name")
        if self.config.answer_strategy == "passages":
            return None
        profile = analyse(turn.standalone, self.store)
        if self.bridge is not None:
            profile = self.bridge.run(profile, turn.passages)
        turn.profile = profile
        turn.evidence = choose_evidence(profile, turn.passages, self.embedder,
                                        self.config.evidence_sentences)
        if not turn.evidence:
            names = [c.text for c in profile.constraints]
            text = (NOT_COVERED[language].format(terms=_listing(names, language)) if names
                    else OFF_TOPIC[language])
            return turn.answer(text, "abstained", "none", abstention="not-covered")
        about = about_the_subject(turn.evidence)
        unmet = unmet_requirement(profile, [e.quote for e in about],
                                  [turn.passages[e.passage].text for e in about])
        if unmet is not None:
            # Asked for a quantity, a date, a rank, ... the quotes do not hold.
            return turn.answer(self._not_stated(profile, unmet, language), "abstained",
                               "none", abstention="not-covered")
        best = turn.evidence[0]
        signals = Signals.of(profile, best, turn.passages[best.passage].language)
        turn.relevance = self.relevance.probability(signals)
        if (relevance_check and self.config.relevance_check
                and turn.relevance < self.relevance.threshold
                and profile.unknown_share >= OFF_TOPIC_UNKNOWN_SHARE):
            return turn.answer(OFF_TOPIC[language], "abstained", "none",
                               abstention="off-topic")
        return None

    @staticmethod
    def _not_stated(profile: QuestionProfile, unmet: str, language: str) -> str:
        names = [c.text for c in profile.constraints]
        what = NOT_STATED[language][unmet.split()[0]]  # "rank 2": the rank
        if not names:
            return NOT_STATED_ANY[language].format(what=what)
        return NOT_STATED_ABOUT[language].format(what=what, terms=_listing(names, language))

    # -- 3. generate, 4. verify --

    def _generate(self, turn: _Turn, llm: ChatLLM, cancel: threading.Event | None
                  ) -> Generator[str, None, Answer]:
        if self.config.answer_strategy == "passages":
            return (yield from self._generate_from_passages(turn, llm, cancel))
        if self._quotes_answer(turn, llm):
            return (yield from self._quoted(turn, llm, cancel))
        quotes = turn.quotes()
        notice = None
        for attempt in range(1 + self.config.answer_retries):
            if attempt:
                yield "\n"  # the draft that failed verification stays above the retry
            messages = quote_messages(turn.standalone, quotes, turn.language, attempt > 0)
            text, notice = yield from self._run(llm, messages, turn, cancel)
            if cancel is not None and cancel.is_set() and notice is None:
                return turn.answer(text, "llm", llm.name, self._quote_citations(text, turn),
                                   notice="stopped")
            if notice is not None:
                break  # the model failed (timeout, error): a retry would fail alike
            if says_not_found(text):
                return self._model_found_nothing(turn)
            text, notice = self._verify_quotes(text, turn)
            if notice is None:
                final = self._renumber(text, turn)
                return turn.answer(final, "llm", llm.name, self._quote_citations(text, turn))
        return self._extractive(turn, notice)

    def _quotes_answer(self, turn: _Turn, llm: ChatLLM) -> bool:
        """Whether the quotes are the answer as they stand: every one is in the question's
        language (a rewrite would only restate them), and the setting asks for it."""
        setting = self.config.same_language_answer
        wanted = setting == "quote" or (setting == "auto" and is_local(llm))
        return wanted and all(
            turn.passages[e.passage].language == turn.language for e in turn.evidence)

    def _quoted(self, turn: _Turn, llm: ChatLLM, cancel: threading.Event | None
                ) -> Generator[str, None, Answer]:
        """The quotes as the answer, unless the model's first tokens on the usual prompt
        say that they do not answer (its "not found" is weighed as after a full reply)."""
        try:
            judged = "".join(llm.stream(
                quote_messages(turn.standalone, turn.quotes(), turn.language),
                max_tokens=JUDGE_TOKENS, temperature=self.config.temperature,
                timeout=self.config.llm_timeout, cancel=cancel))
        except LLMError as exc:
            answer = self._extractive(turn, str(exc))
        else:
            if cancel is not None and cancel.is_set():
                answer = turn.answer("", "llm", llm.name, notice="stopped")
            elif says_not_found(judged):
                answer = self._model_found_nothing(turn)
            else:
                answer = self._quotes_as_answer(turn, llm.name)
        turn.timings["first_token"] = time.perf_counter() - turn.started
        yield answer.text
        return answer

    def _run(self, llm: ChatLLM, messages: list[dict[str, str]], turn: _Turn,
             cancel: threading.Event | None) -> Generator[str, None, tuple[str, str | None]]:
        """Stream one generation; (its text, the failure's message or None)."""
        pieces: list[str] = []
        try:
            for piece in llm.stream(messages, max_tokens=self.config.max_answer_tokens,
                                    temperature=self.config.temperature,
                                    timeout=self.config.llm_timeout, cancel=cancel):
                if "first_token" not in turn.timings:
                    turn.timings["first_token"] = time.perf_counter() - turn.started
                pieces.append(piece)
                yield piece
        except LLMError as exc:
            return "".join(pieces).strip(), str(exc)
        return "".join(pieces).strip(), None

    def _evidence_answers(self, turn: _Turn) -> bool:
        """Whether the evidence says the quotes answer, whatever the model says: relevance
        at or above the doubt threshold, and the question not mostly words the index
        never contains: "明天北京会下雨吗?" meets a quote about weather data, not an
        answer."""
        profile = turn.profile
        off_topic = profile is not None and profile.unknown_share >= OFF_TOPIC_UNKNOWN_SHARE \
            and not names_of(profile)  # any name left is known: unknown ones abstained
        return not off_topic and turn.relevance is not None \
            and turn.relevance >= self.relevance.doubt_threshold

    def _model_found_nothing(self, turn: _Turn) -> Answer:
        """The model says the quotes do not answer. It is believed only when the evidence
        is weak too (small models also say so of quotes that do answer); else the quotes
        are shown, with that notice."""
        if self._evidence_answers(turn):
            notice = ("the model found no answer in the quotes" if turn.language == "en"
                      else "模型认为引文没有回答问题")
            return self._extractive(turn, notice)
        return turn.answer(NOT_FOUND[turn.language], "abstained",
                           self.llm.name if self.llm else "none", abstention="model-not-found")

    def _verify_quotes(self, text: str, turn: _Turn) -> tuple[str, str | None]:
        """The answer with markers attributed, and why it fails (None: it passes)."""
        en = turn.language == "en"
        quotes = [e.quote for e in turn.evidence]
        titles = {turn.passages[e.passage].title for e in turn.evidence}
        for title in titles:
            text = text.replace(f"({title})", "").strip()  # the prompt's labels, echoed
        text = _attribute(text, quotes)
        content = CITATION_MARKER.sub("", text)
        if sum(ch.isalnum() for ch in content) < 2:
            return text, "the model gave no answer text" if en else "模型没有给出回答内容"
        if _only_a_title(content, titles, quotes):
            return text, ("the model gave back a source's title" if en
                          else "模型只给出了资料的标题")
        if detect_language(content) != turn.language and len(content) > 12:
            return text, ("the model answered in the wrong language" if en
                          else "模型没有用中文回答")
        if en and CJK_CHAR.search(content):
            # Half-translated ("took its首席AI education官"): the quote itself reads better.
            return text, "the model left Chinese words untranslated"
        if not en and _HALF_TRANSLATED.search(content):
            # "结构-aware", "非-maximum": a term torn in two; the quote reads better.
            return text, "模型把一个英文术语译了一半"
        cited = _claims_by_marker(text, len(quotes))
        if not cited:
            return text, "the model's answer cited no source" if en else "模型的回答没有引用资料"
        if self.config.verify_answers:
            # Every quote is bound to the question's subject, so a claim from any of them
            # is grounded, whichever marker the model put after it.
            support = " ".join(f"{turn.passages[e.passage].title} {e.quote}"
                               for e in turn.evidence)
            problems = unsupported(content, support, turn.standalone)
            if problems:
                return text, (f"not found in the cited sources: {', '.join(problems)}" if en
                              else f"引用的资料中没有:{'、'.join(problems)}")
            misbound = misbound_numbers(content, quotes, turn.standalone)
            if misbound:
                return text, (f"the sources give {', '.join(misbound)} for something else"
                              if en else f"资料中的{'、'.join(misbound)}说的是别的")
            # A follow-up asks for what its own words ask for: a standalone question
            # with the earlier one appended also carries that one's "which year".
            asked = analyse(turn.question) if turn.history else turn.profile
            lacking = answer_lacks(asked, content) if asked else None
            if lacking == "restated":
                return text, ("the answer only restates the question" if en
                              else "回答只是复述了问题")
            if lacking == "bare number":
                return text, ("the answer is only a number, and the question asks for none"
                              if en else "回答只有一个数字,而问题问的不是数量")
            if lacking is not None:
                what = NOT_STATED[turn.language][lacking]
                return text, f"the answer gives no {what}" if en else f"回答没有给出{what}"
            if unsupported_denial(content, quotes):
                return text, ("the answer denies what the sources state" if en
                              else "回答否定了资料的说法")
        return text, None

    def _renumber(self, text: str, turn: _Turn) -> str:
        """Quote numbers -> passage numbers, the numbering of the sources shown."""
        def passage_marker(match: re.Match[str]) -> str:
            number = int(match.group(1))
            if 1 <= number <= len(turn.evidence):
                return f"[{turn.evidence[number - 1].passage + 1}]"
            return ""
        return CITATION_MARKER.sub(passage_marker, text)

    def _quote_citations(self, text: str, turn: _Turn) -> list[Citation]:
        """Citations of an answer whose markers number the quotes (not yet renumbered)."""
        citations: dict[str, Citation] = {}
        for marker in _claims_by_marker(text, len(turn.evidence)):
            evidence = turn.evidence[int(marker[1:-1]) - 1]
            shown = f"[{evidence.passage + 1}]"
            citations.setdefault(shown, Citation(shown, turn.passages[evidence.passage],
                                                 evidence.span))
        return list(citations.values())

    def _generate_from_passages(self, turn: _Turn, llm: ChatLLM,
                                cancel: threading.Event | None
                                ) -> Generator[str, None, Answer]:
        """The earlier default: the model reads the whole top passages."""
        shown = focus_passages(turn.standalone, turn.passages, self.embedder,
                               self.config.prompt_passage_chars)
        messages = answer_messages(turn.standalone, shown, turn.language)
        text, notice = yield from self._run(llm, messages, turn, cancel)
        if cancel is not None and cancel.is_set() and notice is None:
            return turn.answer(text, "llm", llm.name, cite(text, turn.passages),
                               notice="stopped")
        if notice is None and says_not_found(text):
            return turn.answer(NOT_FOUND[turn.language], "abstained", llm.name)
        if notice is None:
            text = attribute_citations(text, turn.passages)
            citations = cite(text, turn.passages)
            notice = self._passage_answer_problem(text, citations, turn)
            if notice is None:
                return turn.answer(text, "llm", llm.name, citations)
        return self._extractive(turn, notice)

    def _passage_answer_problem(self, text: str, citations: list[Citation], turn: _Turn
                                ) -> str | None:
        en = turn.language == "en"
        content = CITATION_MARKER.sub("", text)
        if sum(ch.isalnum() for ch in content) < 2:
            return "the model gave no answer text" if en else "模型没有给出回答内容"
        if detect_language(content) != turn.language and len(content) > 12:
            return "the model answered in the wrong language" if en else "模型没有用中文回答"
        if not citations:
            return "the model's answer cited no source" if en else "模型的回答没有引用资料"
        if self.config.verify_answers:
            problems = unsupported_claims(text, citations, turn.standalone)
            if problems:
                return (f"not found in the cited sources: {', '.join(problems)}" if en
                        else f"引用的资料中没有:{'、'.join(problems)}")
        return None

    # -- the extractive answer --

    def _quotes_as_answer(self, turn: _Turn, llm: str) -> Answer:
        lines, citations = _quoted_lines(turn)
        text = "\n".join([QUOTED_HEADER[turn.language], *lines])
        return turn.answer(text, "quoted", llm, citations)

    def _extractive(self, turn: _Turn, notice: str | None) -> Answer:
        """The chosen quotes, each cited (or, with strategy "passages", the sentences of
        the passages closest to the question)."""
        if turn.evidence:
            lines, citations = _quoted_lines(turn)
        else:
            lines = self._closest_sentences(turn)
            citations = []
        text = "\n".join([EXTRACTIVE_HEADER[turn.language], *lines])
        if notice:
            text = FALLBACK_NOTICE[turn.language].format(reason=notice) + "\n" + text
        if not citations:
            citations = cite(text, turn.passages)
        return turn.answer(text, "extractive", "extractive", citations, notice=notice)

    def _closest_sentences(self, turn: _Turn) -> list[str]:
        candidates: list[tuple[int, str]] = []
        for number, passage in enumerate(turn.passages, start=1):
            for sentence in split_sentences(passage.text):
                sentence = sentence.strip()
                if len(sentence) >= 8 and sum(ch.isalnum() for ch in sentence) >= 6:
                    candidates.append((number, sentence))
        if not candidates:
            candidates = [(1, turn.passages[0].text.strip()[:300])]
        vectors = self.embedder.embed_passages([s for _, s in candidates])
        scores = vectors @ self.embedder.embed_queries([turn.standalone])[0]
        # Prefer sentences from higher-ranked passages when similarities are close.
        scores = scores - 0.01 * np.array([n - 1 for n, _ in candidates], dtype=np.float32)
        best = sorted(np.argsort(-scores)[:3].tolist())
        return [f"- {candidates[i][1]} [{candidates[i][0]}]" for i in best]


def _quoted_lines(turn: _Turn) -> tuple[list[str], list[Citation]]:
    """One cited line per chosen quote, and the citations (one per passage)."""
    lines = [f"- {e.quote} [{e.passage + 1}]" for e in turn.evidence]
    by_marker: dict[str, Citation] = {}
    for e in turn.evidence:
        marker = f"[{e.passage + 1}]"
        by_marker.setdefault(marker, Citation(marker, turn.passages[e.passage], e.span))
    return lines, list(by_marker.values())


def _listing(terms: Sequence[str], language: str) -> str:
    return "、".join(terms) if language == "zh" else ", ".join(f"'{t}'" for t in terms)


def _keeps_follow_up(rewritten: str, question: str) -> bool:
    """Whether the rewrite keeps every name and number of the follow-up and most of its
    Chinese words: "And which one for Google?" is not "Which model was assessed for
    OpenAI?", nor "那升级之前的GPT-4呢?" "GPT-4 Turbo的上下文窗口有多长?". (English words
    other than names are left out: pronouns and "that startup" are rightly replaced.)"""
    profile = analyse(question)
    found = normalise(rewritten)
    if not all(c.found_in(found) for c in profile.constraints):
        return False
    chinese = [g for g in profile.groups if len(g.word) >= 2 and CJK_CHAR.search(g.word)]
    kept = set(keyword_tokens(rewritten))
    return 2 * sum(1 for g in chinese if set(g.tokens) & kept) >= len(chinese)


def _keeps_subject(rewritten: str, previous: str) -> bool:
    """Whether the rewrite keeps the earlier questions' subject: one of their names when
    they have any ("英法翻译上呢?" keeps none of "Transformer ... WMT 2014"), else one of
    their words."""
    names = analyse(previous).constraints
    if names:
        found = normalise(rewritten)
        return any(c.found_in(found) for c in names)
    return bool(set(keyword_tokens(rewritten)) & set(keyword_tokens(previous)))

