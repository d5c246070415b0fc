"""The assistant as llama-index components: nodes, the retriever and the query engine.

Fast tests use a small fake assistant returning real records; the end-to-end ones (slow)
run our retriever and query engine inside real llama-index pipelines over the real
corpus index, with llama-index's offline MockLLM where a pipeline needs an LLM.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import Response
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import QueryFusionRetriever
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

import ai_digest_qa
from ai_digest_qa import llamaindex
from ai_digest_qa.evaluation import matches_keyword
from ai_digest_qa.llamaindex import as_query_engine, as_retriever
from ai_digest_qa.records import Answer, Citation, Passage

ROOT = Path(__file__).resolve().parents[1]

DOC_TEXT = ("Attention Is All You Need\n\nThe Transformer reaches 28.4 BLEU on WMT 2014 "
            "English-to-German. It uses only attention.")


def _passage(text: str, chunk_id: str, score: float, **fields: object) -> Passage:
    start = DOC_TEXT.index(text)
    values: dict[str, object] = dict(
        text=text, score=score, title="Attention Is All You Need", source="transformer.md",
        url="https://arxiv.org/abs/1706.03762", doc_id="doc-1", chunk_id=chunk_id,
        start=start, end=start + len(text), language="en", section="Results",
        kind="paper", dense_score=0.8, keyword_score=None)
    values.update(fields)
    return Passage(**values)


BLEU = _passage("The Transformer reaches 28.4 BLEU on WMT 2014 English-to-German.", "c-bleu",
                0.9, keyword_score=7.5)
ATTENTION = _passage("It uses only attention.", "c-attn", 0.4, section=None, url=None,
                     dense_score=None, keyword_score=2.0)


class FakeAssistant:
    """``retrieve`` and ``ask`` returning set records; remembers how it was called."""

    def __init__(self, passages: list[Passage], answer: Answer | None = None) -> None:
        self.passages = passages
        self.answer = answer
        self.calls: list[tuple[str, object, object]] = []

    def retrieve(self, question: str, top_k: int | None = None) -> list[Passage]:
        self.calls.append(("retrieve", question, top_k))
        return self.passages[:top_k]

    def ask(self, question: str, *, top_k: int | None = None, llm: object = None) -> Answer:
        self.calls.append(("ask", question, (top_k, llm)))
        assert self.answer is not None
        return self.answer


def _answer(text: str, citations: list[Citation], passages: list[Passage],
            **fields: object) -> Answer:
    values: dict[str, object] = dict(question="What BLEU does the Transformer get?",
                                     text=text, citations=citations, abstained=False,
                                     language="en", llm="scripted", mode="llm",
                                     passages=passages)
    values.update(fields)
    return Answer(**values)


# -- nodes and the retriever --


def test_retriever_nodes_carry_the_passages_metadata_offsets_ids_and_scores():
    fake = FakeAssistant([BLEU, ATTENTION])
    retriever = as_retriever(top_k=2, assistant=fake)
    assert isinstance(retriever, BaseRetriever)

    nodes = retriever.retrieve("What BLEU does the Transformer get?")

    assert fake.calls == [("retrieve", "What BLEU does the Transformer get?", 2)]
    assert [n.node.node_id for n in nodes] == ["c-bleu", "c-attn"]
    assert [n.score for n in nodes] == [0.9, 0.4]
    for node, passage in zip(nodes, [BLEU, ATTENTION]):
        assert isinstance(node.node, TextNode)
        assert node.node.text == passage.text
        assert (node.node.start_char_idx, node.node.end_char_idx) == (passage.start,
                                                                      passage.end)
        assert DOC_TEXT[node.node.start_char_idx:node.node.end_char_idx] == node.node.text
        assert node.node.ref_doc_id == "doc-1"
    assert nodes[0].node.metadata == {
        "doc_id": "doc-1", "chunk_id": "c-bleu", "title": "Attention Is All You Need",
        "source": "transformer.md", "url": "https://arxiv.org/abs/1706.03762",
        "language": "en", "section": "Results", "kind": "paper",
        "start": BLEU.start, "end": BLEU.end, "dense_score": 0.8, "keyword_score": 7.5}
    assert nodes[1].node.metadata["url"] is None
    assert nodes[1].node.metadata["dense_score"] is None
    assert nodes[1].node.metadata["keyword_score"] == 2.0


def test_top_k_is_passed_on_and_a_query_bundle_or_async_call_gives_the_same_nodes():
    fake = FakeAssistant([BLEU, ATTENTION])
    retriever = as_retriever(top_k=1, assistant=fake)

    by_bundle = retriever.retrieve(QueryBundle("BLEU?"))
    by_async = asyncio.run(retriever.aretrieve("BLEU?"))

    assert [n.node.node_id for n in by_bundle] == [n.node.node_id for n in by_async] == [
        "c-bleu"]
    assert fake.calls == [("retrieve", "BLEU?", 1)] * 2


def test_llm_text_shows_title_and_section_only_and_embed_text_is_the_chunk_alone():
    node = llamaindex.passage_node(BLEU).node

    llm_text = node.get_content(metadata_mode=MetadataMode.LLM)
    assert "title: Attention Is All You Need" in llm_text
    assert "section: Results" in llm_text
    assert BLEU.text in llm_text
    for hidden in ("chunk_id", "doc_id", "url", "dense_score", "start", "arxiv.org"):
        assert hidden not in llm_text
    assert node.get_content(metadata_mode=MetadataMode.EMBED) == BLEU.text


# -- the query engine --


def test_query_engine_returns_our_answer_with_cited_nodes_in_citation_order():
    text = "It uses only attention [2] and reaches 28.4 BLEU [1]."
    answer = _answer(text, [Citation("[2]", ATTENTION, (0, 8)), Citation("[1]", BLEU, None)],
                     [BLEU, ATTENTION], notice="verified")
    fake = FakeAssistant([], answer)
    engine = as_query_engine(top_k=4, llm="extractive", assistant=fake)

    response = engine.query("What BLEU does the Transformer get?")

    assert fake.calls == [("ask", "What BLEU does the Transformer get?", (4, "extractive"))]
    assert isinstance(response, Response)
    assert response.response == text and str(response) == text
    assert [n.node.node_id for n in response.source_nodes] == ["c-attn", "c-bleu"]
    assert [n.score for n in response.source_nodes] == [0.4, 0.9]
    assert response.source_nodes[1].node.metadata["start"] == BLEU.start
    assert response.metadata == {
        "mode": "llm", "abstained": False, "abstention": None, "notice": "verified",
        "language": "en",
        "citations": [{"marker": "[2]", "chunk_id": "c-attn", "span": (0, 8)},
                      {"marker": "[1]", "chunk_id": "c-bleu", "span": None}]}


def test_a_passage_cited_twice_is_one_source_node():
    answer = _answer("28.4 BLEU [1], attention only [2].",
                     [Citation("[1]", BLEU), Citation("[2]", BLEU)], [BLEU])
    response = as_query_engine(assistant=FakeAssistant([], answer)).query("BLEU?")

    assert [n.node.node_id for n in response.source_nodes] == ["c-bleu"]
    assert [c["marker"] for c in response.metadata["citations"]] == ["[1]", "[2]"]


def test_an_answer_without_citations_gives_its_passages_as_sources():
    answer = _answer("28.4 BLEU.", [], [BLEU, ATTENTION], mode="extractive")
    engine = as_query_engine(assistant=FakeAssistant([], answer))

    response = engine.query(QueryBundle("What BLEU does the Transformer get?"))

    assert [n.node.node_id for n in response.source_nodes] == ["c-bleu", "c-attn"]
    assert response.metadata["citations"] == []
    assert response.metadata["mode"] == "extractive"


def test_an_abstention_says_so_and_shows_the_nearest_passages():
    answer = _answer("The sources do not say which GPU was used.", [], [ATTENTION],
                     abstained=True, mode="abstained", abstention="not-covered",
                     relevance=0.1)
    engine = as_query_engine(assistant=FakeAssistant([], answer))

    response = asyncio.run(engine.aquery("Which GPU trained the Transformer?"))

    assert response.response == "The sources do not say which GPU was used."
    assert response.metadata["abstained"] is True
    assert response.metadata["abstention"] == "not-covered"
    assert response.metadata["mode"] == "abstained"
    assert [n.node.node_id for n in response.source_nodes] == ["c-attn"]


def test_an_abstention_with_nothing_retrieved_has_no_sources():
    answer = _answer("Nothing in the sources.", [], [], abstained=True, mode="abstained",
                     abstention="no-passages")
    response = as_query_engine(assistant=FakeAssistant([], answer)).query("?x")

    assert response.source_nodes == []
    assert response.metadata["abstention"] == "no-passages"


def test_no_assistant_means_the_default_one(monkeypatch: pytest.MonkeyPatch):
    fake = FakeAssistant([BLEU], _answer("28.4 BLEU [1].", [Citation("[1]", BLEU)], [BLEU]))
    monkeypatch.setattr(llamaindex, "default_assistant", lambda: fake)

    nodes = ai_digest_qa.as_retriever(top_k=3).retrieve("BLEU?")
    response = ai_digest_qa.as_query_engine().query("BLEU?")

    assert [n.node.node_id for n in nodes] == ["c-bleu"]
    assert [n.node.node_id for n in response.source_nodes] == ["c-bleu"]
    assert fake.calls == [("retrieve", "BLEU?", 3), ("ask", "BLEU?", (None, None))]


def test_importing_the_package_does_not_import_llama_index():
    code = ("import sys, ai_digest_qa; "
            "print(sorted(m for m in sys.modules if m.startswith('llama_index')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"
    assert "as_retriever" in ai_digest_qa.__all__ and "as_query_engine" in ai_digest_qa.__all__


# -- end to end, in real llama-index pipelines over the real corpus index --


def _dev_question(question_id: str) -> dict[str, object]:
    for line in (ROOT / "eval" / "dev_qa.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["id"] == question_id:
            return record
    raise KeyError(question_id)


def _assert_nodes_point_into_their_documents(assistant, nodes: list[NodeWithScore]) -> None:
    for node in nodes:
        meta = node.node.metadata
        start, end = node.node.start_char_idx, node.node.end_char_idx
        assert (start, end) == (meta["start"], meta["end"])
        assert assistant.document(meta["doc_id"]).text[start:end] == node.node.text
        assert node.node.node_id == meta["chunk_id"]


def test_inside_a_retriever_query_engine(corpus_assistant):
    record = _dev_question("en-en-18")  # the Transformer's BLEU on WMT 2014 En-De
    question = str(record["question"])
    engine = RetrieverQueryEngine.from_args(as_retriever(top_k=3, assistant=corpus_assistant),
                                            llm=MockLLM())

    response = engine.query(question)

    expected = corpus_assistant.retrieve(question, 3)
    assert [n.node.node_id for n in response.source_nodes] == [p.chunk_id for p in expected]
    assert [n.score for n in response.source_nodes] == [p.score for p in expected]
    _assert_nodes_point_into_their_documents(corpus_assistant, response.source_nodes)
    # A cited source holds the answer (the English abstract's "165K hours" backs the
    # Chinese question as well as the article's "165000 小时").
    assert any(matches_keyword(k, n.node.text) for n in response.source_nodes
               for k in record["answer_keywords"])
    # MockLLM answers with its prompt: llama-index put our passages in it, with their
    # titles but not our ids, offsets or scores.
    assert record["evidence"] in str(response)
    assert f"title: {expected[0].title}" in str(response)
    assert "chunk_id" not in str(response) and "dense_score" not in str(response)


class WordOverlapRetriever(BaseRetriever):
    """Another retriever: the given nodes sharing a word with the query, by overlap."""

    def __init__(self, nodes: list[TextNode]) -> None:
        super().__init__()
        self.nodes = nodes

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        words = set(re.findall(r"\w+", query_bundle.query_str.lower()))
        scored = [NodeWithScore(node=n, score=float(len(words & set(
            re.findall(r"\w+", n.text.lower()))))) for n in self.nodes]
        return sorted((n for n in scored if n.score), key=lambda n: -(n.score or 0.0))


def test_inside_a_query_fusion_retriever(corpus_assistant):
    question = "What BLEU score did the Transformer get on WMT 2014 English-to-German?"
    notes = WordOverlapRetriever([
        TextNode(id_="note-bleu", text="Reviewer note: the Transformer BLEU on WMT 2014 "
                                       "was checked against the paper."),
        TextNode(id_="note-recipe", text="Knead dough ten minutes."),
    ])
    ours = as_retriever(top_k=3, assistant=corpus_assistant)
    fusion = QueryFusionRetriever([ours, notes], similarity_top_k=5, num_queries=1,
                                  mode="reciprocal_rerank", use_async=False, llm=MockLLM())

    nodes = fusion.retrieve(question)

    ids = [n.node.node_id for n in nodes]
    direct = [p.chunk_id for p in corpus_assistant.retrieve(question, 3)]
    assert "note-bleu" in ids and "note-recipe" not in ids
    assert set(ids) - {"note-bleu"} == set(direct)
    # Ranks fuse: each list's first node shares the top fused score.
    assert ids[:2] in ([direct[0], "note-bleu"], ["note-bleu", direct[0]])
    _assert_nodes_point_into_their_documents(
        corpus_assistant, [n for n in nodes if n.node.node_id != "note-bleu"])


@pytest.mark.parametrize("question_id", ["zh-zh-14", "en-en-18"])
def test_query_engine_answers_from_the_corpus(corpus_assistant, question_id):
    record = _dev_question(question_id)
    engine = as_query_engine(llm="extractive", assistant=corpus_assistant)

    response = engine.query(str(record["question"]))

    assert response.metadata["abstained"] is False
    assert response.metadata["mode"] == "extractive"
    # As the eval matches them: a number by value ("165K hours" holds 165000).
    assert any(matches_keyword(k, str(response)) for k in record["answer_keywords"])
    assert response.source_nodes
    # A cited source holds the answer (the English abstract's "165K hours" backs the
    # Chinese question as well as the article's "165000 小时").
    assert any(matches_keyword(k, n.node.text) for n in response.source_nodes
               for k in record["answer_keywords"])
    markers = [c["marker"] for c in response.metadata["citations"]]
    assert markers and all(m in str(response) for m in markers)
    cited = [c["chunk_id"] for c in response.metadata["citations"]]
    assert [n.node.node_id for n in response.source_nodes] == list(dict.fromkeys(cited))
    _assert_nodes_point_into_their_documents(corpus_assistant, response.source_nodes)
