"""Retrieval quality on the public bilingual dev set, with the default embedder."""

import pytest

from ai_digest_qa.evaluation import evaluate_retrieval, load_questions
from conftest import ROOT

DEV_SET = ROOT / "eval" / "dev_qa.jsonl"


def test_dev_set_shape():
    questions = load_questions(DEV_SET)
    types = [q.type for q in questions]
    assert len([q for q in questions if q.answerable]) >= 40
    assert types.count("zh->zh") >= 10 and types.count("en->zh") >= 10
    assert types.count("en->en") >= 10 and types.count("unanswerable") >= 10
    assert all(q.evidence for q in questions if q.answerable)


@pytest.mark.slow
def test_retrieval_hit_at_5(corpus_assistant):
    report = evaluate_retrieval(corpus_assistant, load_questions(DEV_SET), k=5)
    print("\n" + report.table())
    for detail in report.details:
        if detail.rank is None:
            print("miss:", detail.id, detail.question)
    assert report.groups["all"]["hit@5"] >= 0.9
    assert report.groups["en->zh"]["hit@5"] >= 0.85
