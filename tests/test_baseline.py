"""The plain llama-index baseline on the real corpus, with the real embedder and LLM."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core import Settings

from ai_digest_qa import Answer, evaluation
from ai_digest_qa.baseline import LlamaIndexBaseline
from ai_digest_qa.llm import OpenAICompatibleLLM
from conftest import free_port

DEV_QA = Path(__file__).resolve().parents[1] / "eval" / "dev_qa.jsonl"



def test_retrieves_corpus_passages_in_chinese_and_english(baseline, corpus_assistant):
    documents = corpus_assistant.store.documents
    for question, evidence, doc_suffix in (
        ("在斯坦福发布的大模型透明度指数里,排名第一的模型得了多少分?", "Llama 2得分54", None),
        ("What is direct preference optimization?", None, "#dpo"),
    ):
        passages = baseline.retrieve(question, top_k=3)
        assert len(passages) == 3
        for passage in passages:
            assert passage.score > 0
            assert passage.kind == "document"
            document = documents[passage.doc_id]
            assert passage.title == document.title
            # The node's offsets point into our cleaned document text.
            assert document.text[passage.start:passage.end] == passage.text
        if evidence:
            assert any(evidence in p.text for p in passages)
        if doc_suffix:
            assert passages[0].doc_id.endswith(doc_suffix)
    # llama-index's default splitter (1024 tokens) makes other, larger nodes than our chunks.
    assert 0 < baseline.node_count != len(corpus_assistant.store.chunks)
    assert baseline.build_seconds is not None and baseline.build_seconds > 0
    # The models were passed explicitly: the global Settings were never resolved (no
    # OpenAI fallback) nor set for other code.
    assert Settings._llm is None and Settings._embed_model is None


def test_evaluate_retrieval_takes_the_baseline(baseline):
    questions = evaluation.load_questions(DEV_QA)[:6]
    report = evaluation.evaluate_retrieval(baseline, questions, k=5)
    overall = report.groups["all"]
    assert overall["n"] == sum(1 for q in questions if q.answerable and q.evidence)
    for metrics in report.groups.values():
        for name in ("hit@1", "hit@5", "mrr"):
            assert 0.0 <= metrics[name] <= 1.0
    assert all(len(d.top) == 5 for d in report.details)


def test_extractive_backend_is_refused(corpus_assistant):
    with pytest.raises(ValueError, match="needs an LLM"):
        LlamaIndexBaseline(corpus_assistant).ask("What is DPO?", llm="extractive")
    with pytest.raises(TypeError):
        LlamaIndexBaseline(object())  # type: ignore[arg-type]


def test_llm_failure_becomes_a_notice(baseline):
    unreachable = OpenAICompatibleLLM(f"http://127.0.0.1:{free_port()}/v1", "none")
    answer = baseline.ask("What is DPO?", llm=unreachable)
    assert answer.mode == "baseline" and answer.text == "" and not answer.abstained
    assert answer.notice and "Cannot reach" in answer.notice


@pytest.mark.slow
def test_ask_with_the_local_llm(baseline):
    answer = baseline.ask("Which optimizer does the Adam paper propose?", llm="local")
    assert isinstance(answer, Answer)
    assert answer.mode == "baseline" and answer.notice is None
    assert answer.text.strip() and answer.llm.startswith("local:")
    assert answer.language == "en"
    # Plain RAG cites every retrieved node: llama-index's default top 2.
    assert [c.marker for c in answer.citations] == ["[1]", "[2]"]
    assert [c.passage for c in answer.citations] == answer.passages
    assert any(p.doc_id.endswith("#adam") for p in answer.passages)
    assert 0 < answer.timings["total"] < 120
