"""Grading answers and grouping the figures (evaluation.py), with scripted answers."""

import math

import pytest

from ai_digest_qa.evaluation import EvalQuestion, evaluate_answers, load_questions
from ai_digest_qa.records import Answer, Citation, Passage


def passage(text: str) -> Passage:
    return Passage(text=text, score=1.0, title="T", source="t.txt", url=None, doc_id="d",
                   chunk_id="c", start=0, end=len(text), language="en")


class ScriptedAnswers:
    """Answers from a table: question -> (text, abstained, cited passage text or None)."""

    def __init__(self, replies: dict[str, tuple[str, bool, str | None]]) -> None:
        self.replies = replies
        self.histories: list[object] = []

    def ask(self, question, *, llm=None, history=None):
        self.histories.append(history)
        text, abstained, cited = self.replies[question]
        citations = [Citation("[1]", passage(cited))] if cited else []
        return Answer(question, text, citations, abstained, "en", "scripted",
                      "abstained" if abstained else "llm")


def question(qid, text, answerable=True, keywords=(), evidence=None, split="report",
             kind="en->en", subkind=None, history=()):
    return EvalQuestion(qid, text, "en", kind if answerable else "unanswerable", evidence,
                        tuple(keywords), answerable, split=split, subkind=subkind,
                        history=history)


def test_answers_are_graded_by_keyword_number_value_and_abstention():
    questions = [
        question("a", "How many hours of audio?", keywords=["165000"], evidence="165000 hours"),
        question("b", "Which layout?", keywords=["sandwich"], evidence="sandwich layout"),
        question("c", "Which city?", keywords=["Vienna"], evidence="in Vienna"),
        question("d", "Who won the World Cup?", answerable=False, subkind="off-topic"),
        question("e", "Where was ICML 2023?", answerable=False, subkind="near-miss"),
        question("f", "And the year?", keywords=["2024"], kind="follow-up",
                 history=(("Which city hosted ICML?", "Vienna"),)),
    ]
    answers = ScriptedAnswers({
        "How many hours of audio?": ("It used 165K hours [1].", False, "165000 hours of audio"),
        "Which layout?": ("A linear layout [1].", False, "a linear block"),
        "Which city?": ("The sources do not contain the answer.", True, None),
        "Who won the World Cup?": ("The sources do not contain the answer.", True, None),
        "Where was ICML 2023?": ("In Vienna [1].", False, "ICML 2024 is in Vienna"),
        "And the year?": ("2024 [1].", False, "no year here"),
    })
    report = evaluate_answers(answers, questions, "local")
    verdicts = {row.id: row.verdict for row in report.details}
    assert verdicts == {"a": "correct", "b": "wrong", "c": "abstained", "d": "abstained",
                        "e": "answered", "f": "correct"}
    groups = report.groups
    assert groups["report:all"]["answer_accuracy"] == pytest.approx(2 / 4)
    assert groups["report:all"]["false_abstention"] == pytest.approx(1 / 4)
    assert groups["report:unanswerable"]["abstention_accuracy"] == pytest.approx(1 / 2)
    assert groups["report:unanswerable/off-topic"]["abstention_accuracy"] == 1.0
    assert groups["report:unanswerable/near-miss"]["abstention_accuracy"] == 0.0
    # Citations holding the evidence: a's does, b's and f's do not (f has no evidence).
    assert groups["report:all"]["citation_precision"] == pytest.approx(1 / 3)
    assert math.isnan(groups["report:unanswerable"]["answer_accuracy"])
    assert answers.histories[-1] == [("Which city hosted ICML?", "Vienna")]


def test_a_number_keyword_does_not_match_another_number():
    questions = [question("a", "What score?", keywords=["54"], evidence="54")]
    report = evaluate_answers(ScriptedAnswers({"What score?": ("It scored 540 [1].", False,
                                                              "54")}), questions)
    assert report.details[0].verdict == "wrong"


def test_a_broken_question_record_names_its_line(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text('{"id": "a", "question": "Q?", "language": "en", "type": "en->en"}\n'
                    '{"id": "b"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="set.jsonl:2"):
        load_questions(path)


class ScriptedRetrieval:
    """Passages from a table: question -> texts, best first."""

    def __init__(self, passages: dict[str, list[str]]) -> None:
        self.passages = passages

    def retrieve(self, question, top_k=5):
        return [Passage(text=t, score=1.0, title="T", source=f"{n}.txt", url=None,
                        doc_id=f"corpus/doc{n}.txt", chunk_id=f"c{n}", start=0, end=len(t),
                        language="en")
                for n, t in enumerate(self.passages[question][:top_k])]


def test_retrieval_rows_are_records_written_as_before():
    from dataclasses import asdict

    from ai_digest_qa.evaluation import evaluate_retrieval
    from ai_digest_qa.records import RetrievalRow

    questions = [question("a", "Which city?", evidence="in  Vienna"),
                 question("b", "Which year?", evidence="2024"),
                 question("x", "Who won?", answerable=False)]
    report = evaluate_retrieval(ScriptedRetrieval({
        "Which city?": ["ICML is held in Vienna.", "other"],
        "Which year?": ["nothing", "no year"]}), questions, k=2)
    assert [type(r) for r in report.details] == [RetrievalRow, RetrievalRow]
    first, second = report.details
    assert (first.id, first.rank, first.top) == ("a", 1, ["doc0.txt", "doc1.txt"])
    assert second.rank is None and second.seconds >= 0
    # --json writes each row with the keys (and order) of the dicts it replaced.
    assert list(asdict(report)["details"][0]) == ["id", "type", "question", "rank", "top",
                                                  "seconds"]
    assert asdict(report)["details"][1]["rank"] is None
    assert report.groups["all"] == {"n": 2, "hit@1": 0.5, "hit@2": 0.5, "mrr": 0.5}
