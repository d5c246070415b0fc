"""Every branch of the answer pipeline, with a scripted LLM and a tiny in-memory index."""

import threading

import pytest

from ai_digest_qa.answer import JUDGE_TOKENS, Answerer
from ai_digest_qa.answerability import RelevanceModel
from ai_digest_qa.prompts import STRICT_RETRY
from ai_digest_qa.records import Answer, Retrieval
from fakes import ScriptedLLM, failing, tiny_assistant

ALWAYS = RelevanceModel((0.0,) * 6, 10.0, 0.5, doubt_threshold=0.99)  # relevance passes
NEVER = RelevanceModel((0.0,) * 6, -10.0, 0.5)  # relevance fails


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_assistant(tmp_path_factory.mktemp("tiny"))


def answer(tiny, question, llm, relevance=ALWAYS, history=None, cancel=None, **settings):
    # The model phrases every answer here unless a test asks for same-language quotes:
    # most tests are about verifying what it writes.
    settings = {"same_language_answer": "phrase", **settings}
    config = type(tiny.config)(**{
        **{f: getattr(tiny.config, f) for f in tiny.config.__dataclass_fields__}, **settings})
    answerer = Answerer(tiny.retriever, tiny.embedder, config, llm, relevance=relevance)
    items = list(answerer.stream(question, history, cancel=cancel))
    assert isinstance(items[0], Retrieval) and isinstance(items[-1], Answer)
    return items[-1], [i for i in items if isinstance(i, str)]


def test_an_unknown_name_abstains_before_generation(tiny):
    llm = ScriptedLLM()
    result, _ = answer(tiny, "Who won the 2022 FIFA World Cup?", llm)
    assert result.abstained and result.abstention == "unknown-name" and "FIFA" in result.text
    assert llm.requests == [] and result.citations == []


def test_another_years_edition_abstains_before_generation(tiny):
    llm = ScriptedLLM()
    result, _ = answer(tiny, "Where was ICML 2023 held?", llm)
    assert result.abstained and result.abstention == "not-covered"
    assert "ICML" in result.text and llm.requests == []


def test_a_question_asking_for_what_no_quote_holds_abstains_before_generation(tiny):
    # The index ranks Llama 2 first and GPT-4 third, and dates nothing.
    for question, missing in [("Which model came second on the transparency index?",
                               "such rank"),
                              ("ICML 2024 是哪一天开幕的?", "日期"),
                              ("Is Claude 2 better than DPO on the transparency index?",
                               "comparison")]:
        llm = ScriptedLLM()
        result, _ = answer(tiny, question, llm)
        assert result.abstained and result.abstention == "not-covered", question
        assert missing in result.text and llm.requests == []
    llm = ScriptedLLM("GPT-4 ranked third [1].")
    result, _ = answer(tiny, "Which model ranked third on the transparency index?", llm)
    assert result.mode == "llm" and "GPT-4" in result.text


# A relevance model that asks for half the question's terms in the evidence.
HALF_THE_TERMS = RelevanceModel((0.0, 10.0, 0.0, 0.0, 0.0, 0.0), -5.0, 0.5)
# (Abstaining on it also needs a mostly unknown question: see OFF_TOPIC_UNKNOWN_SHARE.)


def test_a_fact_bound_to_another_subject_is_never_quoted_for_it(tiny):
    # The index gives Llama 2's score and mentions Claude 2, but never Claude 2's score:
    # the score sentence lacks the subject, so the model only sees Claude 2's sentence,
    # and its "not found" is believed where the evidence is weak.
    llm = ScriptedLLM("The sources do not contain the answer.")
    weak = RelevanceModel((0.0,) * 6, 0.0, 0.1, doubt_threshold=0.9)  # p = 0.5
    result, _ = answer(tiny, "What score did Claude 2 get on the transparency index?", llm,
                       relevance=weak)
    prompt = llm.requests[0][1]["content"]
    assert "Claude 2" in prompt and "scored Llama 2 at 54" not in prompt
    assert result.abstained and result.abstention == "model-not-found"
    llm = ScriptedLLM("Llama 2 scored 54 [1].")
    result, _ = answer(tiny, "What score did Llama 2 get on the transparency index?", llm,
                       relevance=HALF_THE_TERMS)
    assert result.mode == "llm" and "54" in result.text


def test_low_relevance_abstains_before_generation_when_the_question_is_mostly_unknown(tiny):
    llm = ScriptedLLM()
    result, _ = answer(tiny, "大模型的训练成本和红烧肉的做法有什么关系?", llm, relevance=NEVER)
    assert result.abstained and result.abstention == "off-topic" and llm.requests == []
    assert result.relevance is not None and result.relevance < 0.5
    assert result.passages  # the nearest passages stay, as related ones
    # Low relevance alone does not turn away a question about what the index knows.
    llm = ScriptedLLM("大模型的训练成本很高 [1]。")
    result, _ = answer(tiny, "大模型的训练成本高吗?", llm, relevance=NEVER)
    assert result.mode == "llm"


def test_a_verified_answer_is_accepted_with_passage_numbers_and_quote_spans(tiny):
    llm = ScriptedLLM("ICML 2024 在维也纳举行 [1]。")
    result, pieces = answer(tiny, "ICML 2024 在哪个城市举办?", llm)
    assert result.mode == "llm" and not result.abstained and "维也纳" in result.text
    assert "".join(pieces).strip() == "ICML 2024 在维也纳举行 [1]。"
    (citation,) = result.citations
    number = int(citation.marker[1:-1])
    assert result.passages[number - 1] == citation.passage  # renumbered to the sources
    assert f"[{number}]" in result.text
    start, end = citation.span
    assert "维也纳" in citation.passage.text[start:end]
    prompt = llm.requests[0][1]["content"]
    assert "维也纳" in prompt and len(prompt) < 600  # quotes, not whole passages


def test_a_wrong_name_is_retried_with_a_stricter_prompt(tiny):
    llm = ScriptedLLM("ICML 2024 在北京举行 [1]。", "ICML 2024 在维也纳举行 [1]。")
    result, pieces = answer(tiny, "ICML 2024 在哪个城市举办?", llm)
    assert result.mode == "llm" and "维也纳" in result.text and "北京" not in result.text
    assert len(llm.requests) == 2 and STRICT_RETRY["zh"] in llm.requests[1][1]["content"]
    assert "\n" in pieces  # the failed draft and the retry are apart


def test_a_twice_unverifiable_answer_falls_back_to_the_quotes(tiny):
    llm = ScriptedLLM("ICML 2024 在北京举行 [1]。", "在上海 [1]。")
    result, _ = answer(tiny, "ICML 2024 在哪个城市举办?", llm)
    assert result.mode == "extractive" and "上海" in (result.notice or "")
    assert "维也纳" in result.text and result.citations
    for line in result.text.splitlines()[2:]:  # never a heading as an answer
        assert "1.3 大模型的挑战" not in line and "论文亮点" not in line


def test_an_english_answer_with_chinese_left_in_it_is_retried_then_falls_back(tiny):
    llm = ScriptedLLM("ICML 2024 is held in 维也纳 [1].", "ICML 2024 is held in Vienna [1].")
    result, _ = answer(tiny, "Which city hosts ICML 2024?", llm)
    assert result.mode == "llm" and result.text.startswith("ICML 2024 is held in Vienna")
    assert len(llm.requests) == 2
    llm = ScriptedLLM("It is in 维也纳 [1].", "In 奥地利 [1].")
    result, _ = answer(tiny, "Which city hosts ICML 2024?", llm)
    assert result.mode == "extractive" and "untranslated" in (result.notice or "")
    assert "维也纳" in result.text


def rejected_twice(tiny, question, reply):
    """The answer when the model gives the same unverifiable reply twice: the quotes."""
    result, _ = answer(tiny, question, ScriptedLLM(reply, reply))
    assert result.mode == "extractive" and result.notice, reply
    return result


def test_a_number_given_for_something_else_is_rejected(tiny):
    result = rejected_twice(tiny, "How many papers did ICML 2024 accept?",
                            "ICML 2024 accepted 9,653 papers [1].")
    assert "9653" in result.notice
    assert "2,609" in result.text


def test_the_models_not_found_abstains_when_the_evidence_is_weak(tiny):
    llm = ScriptedLLM("The sources do not contain the answer.")
    weak = RelevanceModel((0.0,) * 6, 0.0, 0.1, doubt_threshold=0.9)  # p = 0.5
    result, _ = answer(tiny, "How many papers did ICML 2024 accept?", llm, relevance=weak)
    assert result.abstained and result.abstention == "model-not-found"


def test_the_models_not_found_shows_the_quotes_when_the_evidence_is_strong(tiny):
    llm = ScriptedLLM("资料中没有找到答案。")
    strong = RelevanceModel((0.0,) * 6, 0.0, 0.1, doubt_threshold=0.4)  # p = 0.5
    result, _ = answer(tiny, "ICML 2024 接受了多少篇论文?", llm, relevance=strong)
    assert result.mode == "extractive" and "2,609" in result.text
    assert result.notice


def test_an_answer_that_is_only_a_source_title_is_rejected(tiny):
    question = "Which city hosts ICML 2024?"
    title = tiny.retrieve(question, 1)[0].title
    result = rejected_twice(tiny, question, f"[1] {title}")
    assert "title" in result.notice and "维也纳" in result.text


def test_the_models_not_found_is_believed_for_a_question_mostly_off_the_index(tiny):
    # Strong relevance, but no name the index knows and mostly words it never has: the
    # model's "not found" and the vocabulary agree.
    llm = ScriptedLLM("资料中没有找到答案。")
    question = "用大模型的思路帮我规划一条三天的成都旅游路线吧"
    result, _ = answer(tiny, question, llm)
    assert len(llm.requests) == 1  # it got as far as the model
    assert result.abstained and result.abstention == "model-not-found"


def test_an_llm_failure_falls_back_to_the_quotes_without_retrying(tiny):
    llm = ScriptedLLM(failing("the model crashed"))
    result, _ = answer(tiny, "ICML 2024 在哪个城市举办?", llm)
    assert result.mode == "extractive" and "crashed" in (result.notice or "")
    assert "维也纳" in result.text and len(llm.requests) == 1


def test_a_wrong_language_or_empty_reply_falls_back(tiny):
    for reply in ("ICML 2024 was held in Vienna, the capital of Austria [1].", "[1]"):
        llm = ScriptedLLM(reply, reply)
        result, _ = answer(tiny, "ICML 2024 在哪个城市举办?", llm)
        assert result.mode == "extractive" and result.notice, reply


def test_an_uncited_answer_is_attributed_to_its_quote(tiny):
    llm = ScriptedLLM("ICML 2024 在维也纳举行。")
    result, _ = answer(tiny, "ICML 2024 在哪个城市举办?", llm)
    assert result.mode == "llm" and result.citations


def test_a_translated_number_is_verified_by_value(tiny):
    llm = ScriptedLLM("Llama 2 scored 54 [1].")
    result, _ = answer(tiny, "What score did Llama 2 get on the transparency index?", llm)
    assert result.mode == "llm" and "54" in result.text


def test_stopping_keeps_the_partial_answer(tiny):
    cancel = threading.Event()
    cancel.set()
    llm = ScriptedLLM("ICML 2024 在维也纳举行 [1]。")
    result, _ = answer(tiny, "ICML 2024 在哪个城市举办?", llm, cancel=cancel)
    assert result.notice == "stopped" and not result.abstained


def quoted(tiny, question, llm, **settings):
    return answer(tiny, question, llm, same_language_answer="quote", **settings)


def test_a_same_language_question_is_answered_by_its_quotes_once_the_model_judges(tiny):
    # The model's first tokens are read for its "not found" only; its phrasing, right or
    # wrong, is not the answer: the quotes are, as the sources word them.
    llm = ScriptedLLM("ICML 2024 在北京")
    result, pieces = quoted(tiny, "ICML 2024 在哪个城市举办?", llm)
    assert result.mode == "quoted" and result.llm == "scripted" and not result.notice
    assert "维也纳" in result.text and "北京" not in result.text
    assert pieces == [result.text] and llm.max_tokens == [JUDGE_TOKENS]
    (citation,) = result.citations
    start, end = citation.span
    assert "维也纳" in citation.passage.text[start:end]
    assert "first_token" in result.timings


def test_auto_quotes_for_a_local_model_and_lets_a_hosted_one_phrase(tiny):
    question = "ICML 2024 在哪个城市举办?"
    local = ScriptedLLM("维也纳")
    local.name = "local:qwen"
    result, _ = answer(tiny, question, local, same_language_answer="auto")
    assert result.mode == "quoted" and local.max_tokens == [JUDGE_TOKENS]
    hosted = ScriptedLLM("ICML 2024 在维也纳举行 [1]。")
    hosted.name = "openai:gpt@example"
    result, _ = answer(tiny, question, hosted, same_language_answer="auto")
    assert result.mode == "llm" and result.text.startswith("ICML 2024 在维也纳举行")


def test_a_cross_language_question_is_still_phrased_by_the_model(tiny):
    llm = ScriptedLLM("ICML 2024 is held in Vienna [1].")
    result, _ = quoted(tiny, "Which city hosts ICML 2024?", llm)
    assert result.mode == "llm" and "Vienna" in result.text
    assert llm.max_tokens == [tiny.config.max_answer_tokens]


def test_the_judges_not_found_abstains_on_weak_evidence_and_quotes_on_strong(tiny):
    weak = RelevanceModel((0.0,) * 6, 0.0, 0.1, doubt_threshold=0.9)  # p = 0.5
    strong = RelevanceModel((0.0,) * 6, 0.0, 0.1, doubt_threshold=0.4)
    question = "ICML 2024 接受了多少篇论文?"
    result, _ = quoted(tiny, question, ScriptedLLM("资料中没有找到答案。"), relevance=weak)
    assert result.abstained and result.abstention == "model-not-found"
    result, _ = quoted(tiny, question, ScriptedLLM("资料中没有找到答案。"), relevance=strong)
    assert result.mode == "extractive" and result.notice and "2,609" in result.text


def test_a_judge_that_fails_or_is_stopped_does_not_lose_the_quotes(tiny):
    result, _ = quoted(tiny, "ICML 2024 在哪个城市举办?", ScriptedLLM(failing("crashed")))
    assert result.mode == "extractive" and "crashed" in (result.notice or "")
    assert "维也纳" in result.text
    cancel = threading.Event()
    cancel.set()
    result, _ = quoted(tiny, "ICML 2024 在哪个城市举办?", ScriptedLLM("维也纳"),
                       cancel=cancel)
    assert result.notice == "stopped" and not result.abstained


def test_without_an_llm_the_quotes_are_the_answer(tiny):
    result, pieces = answer(tiny, "ICML 2024 在哪个城市举办?", None)
    assert result.mode == "extractive" and "维也纳" in result.text
    assert pieces == [result.text] and result.citations


def test_a_follow_up_is_condensed_with_the_history(tiny):
    llm = ScriptedLLM("ICML 2024 接受了多少篇论文?", "仅接受 2,609 篇 [1]。")
    history = [("ICML 2024 在哪里举办?", "维也纳 [1]。")]
    result, _ = answer(tiny, "接受了多少篇?", llm, history=history)
    assert result.standalone_question.startswith("ICML 2024")
    assert result.mode == "llm" and "2,609" in result.text


def test_a_rewrite_that_drops_the_follow_ups_own_name_is_not_used(tiny):
    # The condenser answered the earlier question again; the follow-up's "Claude 2" and
    # the history are both kept instead.
    llm = ScriptedLLM("What score did Llama 2 get on the transparency index?",
                      "Claude 2 supports a context window of 100k tokens [1].")
    history = [("What score did Llama 2 get on the transparency index?", "54 [1].")]
    result, _ = answer(tiny, "And what about Claude 2?", llm, history=history)
    assert "Claude 2" in result.standalone_question
    assert "Llama 2" in result.standalone_question  # the subject, from the history


def test_a_rewrite_that_loses_the_subject_gets_it_back(tiny):
    llm = ScriptedLLM("它一共接受了多少篇?", "仅接受 2,609 篇 [1]。")
    history = [("ICML 2024 在哪里举办?", "维也纳 [1]。")]
    result, _ = answer(tiny, "接受了多少篇?", llm, history=history)
    assert result.standalone_question == "它一共接受了多少篇? ICML 2024 在哪里举办?"


def test_an_answer_denying_what_the_quote_states_is_rejected(tiny):
    result = rejected_twice(tiny, "Which city hosts ICML 2024?",
                            "ICML 2024 was not held in Vienna [1].")
    assert "denies" in result.notice
    assert "维也纳" in result.text
    # "不需要" paraphrases "绕过了": a bare 不 is no denial cue (it is in 不同, 不断).
    llm = ScriptedLLM("DPO不需要奖励模型 [1]。")
    result, _ = answer(tiny, "DPO需要奖励模型吗?", llm)
    assert result.mode == "llm" and result.notice is None


def test_an_answer_without_what_was_asked_or_restating_the_question_is_rejected(tiny):
    # "How many" answered with no number; then the question given back as the answer.
    result = rejected_twice(tiny, "How many papers did ICML 2024 accept?",
                            "ICML 2024 accepted papers [1].")
    assert "quantity" in result.notice and "2,609" in result.text
    result = rejected_twice(tiny, "Which city hosts ICML 2024?",
                            "Which city hosts ICML 2024? [1]")
    assert "restates" in result.notice
    llm = ScriptedLLM("ICML 2024 accepted 2,609 papers [1].")
    result, _ = answer(tiny, "How many papers did ICML 2024 accept?", llm)
    assert result.mode == "llm" and result.notice is None
    # A bare number for a question asking for no amount (the quote holds the number).
    result = rejected_twice(tiny, "Which city hosts ICML 2024?", "2024 [1]")
    assert "only a number" in result.notice and "维也纳" in result.text
    # The same number is an answer where an amount is asked for.
    result, _ = answer(tiny, "How many papers did ICML 2024 accept?", ScriptedLLM("2,609 [1]"))
    assert result.mode == "llm"


def test_a_chinese_answer_with_a_term_translated_in_half_falls_back(tiny):
    # "Llama-最高" tears a term in two; the English quote reads better.
    result = rejected_twice(tiny, "透明度指数给Llama 2打了多少分?",
                            "Llama 2得到了54分,是Llama-最高 [1]。")
    assert "译了一半" in result.notice and "54" in result.text
    llm = ScriptedLLM("Llama 2得到了54分,是最高分 [1]。")
    result, _ = answer(tiny, "透明度指数给Llama 2打了多少分?", llm)
    assert result.mode == "llm" and result.notice is None


def test_the_passages_strategy_reads_whole_passages(tiny):
    llm = ScriptedLLM("ICML 2024 在维也纳举行 [1]。")
    result, _ = answer(tiny, "ICML 2024 在哪个城市举办?", llm, answer_strategy="passages")
    assert result.mode == "llm" and result.citations
    assert "1.3 大模型的挑战" in llm.requests[0][1]["content"]  # the whole passage


def test_the_passages_strategy_falls_back_on_an_unsupported_claim(tiny):
    llm = ScriptedLLM("ICML 2024 在北京举行 [1]。")
    result, _ = answer(tiny, "ICML 2024 在哪个城市举办?", llm, answer_strategy="passages")
    assert result.mode == "extractive" and "北京" in (result.notice or "")
