"""Retrieval evaluation over a question set such as ``eval/dev_qa.jsonl``.

A question is answered by a passage when the passage contains the question's
``evidence`` string (compared without white space and case). Unanswerable
questions (``"answerable": false``) are not part of retrieval metrics.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .answer import CITATION_MARKER
from .evidence import is_number, number_values
from .records import Answer, AnswerRow, Passage, RetrievalRow


class Retrieves(Protocol):
    """Anything evaluated for retrieval: the assistant, or the llama-index baseline."""

    def retrieve(self, question: str, top_k: int = ...) -> list[Passage]: ...


class Answers(Protocol):
    """Anything evaluated for answers: the assistant, or the llama-index baseline."""

    def ask(self, question: str, *, llm: str | None = ...,
            history: Sequence[tuple[str, str]] | None = ...) -> Answer: ...


@dataclass(frozen=True)
class EvalQuestion:
    """One dev-set question. ``type`` is its kind (zh->zh, en->zh, en->en, zh->en,
    follow-up, unanswerable); ``subkind`` refines unanswerable ones (near-miss,
    off-topic, unknown-name); ``split`` is "tune" (calibration) or "report"."""

    id: str
    question: str
    language: str
    type: str
    evidence: str | None
    answer_keywords: tuple[str, ...] = ()
    answerable: bool = True
    doc: str | None = None
    split: str = "report"
    subkind: str | None = None
    history: tuple[tuple[str, str], ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        """The groups it is reported in: its type, and its subkind when it has one."""
        return (self.type, f"{self.type}/{self.subkind}") if self.subkind else (self.type,)


def load_questions(path: str | Path) -> list[EvalQuestion]:
    questions = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            questions.append(EvalQuestion(
                id=row["id"], question=row["question"], language=row["language"],
                type=row["type"], evidence=row.get("evidence"),
                answer_keywords=tuple(row.get("answer_keywords") or ()),
                answerable=bool(row.get("answerable", True)), doc=row.get("doc"),
                split=row.get("split", "report"), subkind=row.get("subkind"),
                history=tuple((str(u), str(a)) for u, a in row.get("history") or ()),
            ))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: invalid question record ({exc}).") from None
    return questions


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def evidence_rank(passages: list[Passage], evidence: str) -> int | None:
    """1-based rank of the first passage containing ``evidence``, or None."""
    needle = _squash(evidence)
    for rank, passage in enumerate(passages, start=1):
        if needle in _squash(passage.text):
            return rank
    return None


@dataclass
class RetrievalReport:
    k: int
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    details: list[RetrievalRow] = field(default_factory=list)
    seconds_per_question: float = 0.0

    def table(self) -> str:
        lines = [f"{'group':<10} {'n':>4} {'hit@1':>7} {'hit@' + str(self.k):>7} {'MRR':>7}"]
        for name, m in self.groups.items():
            lines.append(f"{name:<10} {int(m['n']):>4} {m['hit@1']:>7.3f} "
                         f"{m[f'hit@{self.k}']:>7.3f} {m['mrr']:>7.3f}")
        lines.append(f"{self.seconds_per_question * 1000:.0f} ms per question")
        return "\n".join(lines)


def evaluate_retrieval(assistant: Retrieves, questions: list[EvalQuestion],
                       k: int = 5) -> RetrievalReport:
    """hit@1, hit@k and MRR overall, per question type and per question language."""
    report = RetrievalReport(k=k)
    buckets: dict[str, list[int | None]] = defaultdict(list)
    answerable = [q for q in questions if q.answerable and q.evidence]
    if answerable:  # warm-up: loading the index and models is no per-question cost
        assistant.retrieve(answerable[0].question, top_k=k)
    started = time.perf_counter()
    for question in answerable:
        asked = time.perf_counter()
        # A follow-up is searched with the turn before it, as the assistant does when it
        # cannot condense the conversation.
        text = " ".join([*(u for u, _ in question.history[-1:]), question.question])
        passages = assistant.retrieve(text, top_k=k)
        seconds = time.perf_counter() - asked
        rank = evidence_rank(passages, question.evidence or "")
        for group in ("all", question.type, f"lang:{question.language}"):
            buckets[group].append(rank)
        report.details.append(RetrievalRow(
            id=question.id, type=question.type, question=question.question, rank=rank,
            top=[p.doc_id.rsplit("/", 1)[-1] for p in passages], seconds=seconds))
    report.seconds_per_question = (time.perf_counter() - started) / max(len(answerable), 1)
    for group, ranks in buckets.items():
        n = len(ranks)
        report.groups[group] = {
            "n": n,
            "hit@1": sum(1 for r in ranks if r == 1) / n,
            f"hit@{k}": sum(1 for r in ranks if r is not None) / n,
            "mrr": sum(1.0 / r for r in ranks if r) / n,
        }
    return report


_METRICS = (("answer_accuracy", "accuracy"), ("abstention_accuracy", "abstain-ok"),
            ("false_abstention", "false-abst"), ("citation_precision", "cite-prec"),
            ("seconds", "sec/q"))


@dataclass
class AnswerReport:
    """Answer accuracy, abstention accuracy and citation precision for one LLM mode, per
    split and kind (``"report:en->zh"``, ``"tune:all"``)."""

    llm: str
    label: str = "ours"
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    details: list[AnswerRow] = field(default_factory=list)

    def table(self) -> str:
        lines = [f"answers ({self.label}) with llm={self.llm}",
                 f"{'group':<30} {'n':>4} " + " ".join(f"{label:>10}" for _, label in _METRICS)]
        for name, m in self.groups.items():
            lines.append(f"{name:<30} {int(m['n']):>4} "
                         + " ".join(f"{m[key]:>10.3f}" for key, _ in _METRICS))
        return "\n".join(lines)


def evaluate_answers(assistant: Answers, questions: list[EvalQuestion],
                     llm: str = "local", label: str = "ours") -> AnswerReport:
    """Per split and kind: answer accuracy (an expected keyword in a non-abstaining
    answer), abstention accuracy on unanswerable questions, false abstentions on
    answerable ones, and citation precision (cited passages that contain the evidence).
    Follow-ups are asked with their history."""
    report = AnswerReport(llm=llm, label=label)
    for question in questions:
        report.details.append(_answer_row(assistant, question, llm))
    report.groups = _answer_groups(report.details)
    return report


def _answer_row(assistant: Answers, question: EvalQuestion, llm: str) -> AnswerRow:
    started = time.perf_counter()
    answer = assistant.ask(question.question, llm=llm, history=list(question.history) or None)
    seconds = time.perf_counter() - started
    if question.answerable:
        correct = not answer.abstained and any(
            matches_keyword(k, answer.text) for k in question.answer_keywords)
        verdict = "correct" if correct else ("abstained" if answer.abstained else "wrong")
    else:
        correct = answer.abstained
        verdict = "abstained" if correct else "answered"
    precise = [question.evidence is not None
               and _squash(question.evidence) in _squash(c.passage.text)
               for c in answer.citations] if question.answerable else []
    return AnswerRow(
        id=question.id, type=question.type, split=question.split, kinds=question.kinds,
        language=question.language, answerable=question.answerable, correct=correct,
        verdict=verdict, abstained=answer.abstained, mode=answer.mode, seconds=seconds,
        first_token=answer.timings.get("first_token"), citations=len(answer.citations),
        precise_citations=sum(precise), answer=answer.text,
        abstention=getattr(answer, "abstention", None),
        relevance=getattr(answer, "relevance", None), notice=answer.notice)


def matches_keyword(keyword: str, answer: str) -> bool:
    """Whether ``answer`` holds ``keyword``: a number by value, anything else as text
    (spacing and case aside)."""
    if is_number(keyword):
        return _same_number(keyword, answer)
    return _squash(keyword) in _squash(answer)


def _same_number(keyword: str, answer: str) -> bool:
    """A number keyword is matched by value, as the verifier checks numbers: "165000"
    is in "165K" and "16.5万", and "54" is not in "540"."""
    wanted = max(number_values(keyword))  # "540 million" is 5.4e8, not also 540
    given = number_values(CITATION_MARKER.sub(" ", answer))  # not the markers' numbers
    return any(math.isclose(wanted, value, rel_tol=1e-9) for value in given)


def _answer_groups(rows: list[AnswerRow]) -> dict[str, dict[str, float]]:
    buckets: dict[str, list[AnswerRow]] = defaultdict(list)
    for row in rows:
        for group in ("all", *row.kinds):
            buckets[f"{row.split}:{group}"].append(row)
    groups = {}
    for name in sorted(buckets, key=lambda g: (g.split(":")[0] != "report", g)):
        items = buckets[name]
        answerable = [r for r in items if r.answerable]
        unanswerable = [r for r in items if not r.answerable]
        cited = sum(r.citations for r in answerable)
        groups[name] = {
            "n": len(items),
            "answer_accuracy": _ratio(sum(r.correct for r in answerable), len(answerable)),
            "abstention_accuracy": _ratio(sum(r.correct for r in unanswerable),
                                          len(unanswerable)),
            "false_abstention": _ratio(sum(r.abstained for r in answerable), len(answerable)),
            "citation_precision": _ratio(sum(r.precise_citations for r in answerable), cited),
            "seconds": sum(r.seconds for r in items) / len(items),
        }
    return groups


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def retrieval_side_by_side(ours: RetrievalReport, baseline: RetrievalReport) -> str:
    """Our retrieval metrics next to the baseline's, per group."""
    k = ours.k
    head = f"{'group':<10} {'n':>4} " + " ".join(
        f"{m + ' ours':>11} {m + ' base':>11}" for m in ("hit@1", f"hit@{k}", "MRR"))
    lines = [head]
    for name, m in ours.groups.items():
        b = baseline.groups.get(name, {})
        cells = []
        for key in ("hit@1", f"hit@{k}", "mrr"):
            cells.append(f"{m[key]:>11.3f} {b.get(key, float('nan')):>11.3f}")
        lines.append(f"{name:<10} {int(m['n']):>4} " + " ".join(cells))
    lines.append(f"ms per question: ours {ours.seconds_per_question * 1000:.0f}, "
                 f"baseline {baseline.seconds_per_question * 1000:.0f}")
    return "\n".join(lines)


def answers_side_by_side(ours: AnswerReport, other: AnswerReport) -> str:
    """Our answer metrics next to another run's (the previous default, or the llama-index
    baseline), per split and kind."""
    head = f"{'group':<30} {'n':>4} " + " ".join(
        f"{label + ' ' + ours.label[:6]:>17} {label + ' ' + other.label[:6]:>17}"
        for _, label in _METRICS)
    lines = [f"answers: {ours.label} (llm={ours.llm}) against {other.label} "
             f"(llm={other.llm})", head]
    for name, m in ours.groups.items():
        b = other.groups.get(name, {})
        cells = [f"{m[key]:>17.3f} {b.get(key, float('nan')):>17.3f}" for key, _ in _METRICS]
        lines.append(f"{name:<30} {int(m['n']):>4} " + " ".join(cells))
    return "\n".join(lines)
