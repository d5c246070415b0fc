"""Reading questions and choosing evidence (evidence.py), without models or an index."""

from dataclasses import dataclass

from ai_digest_qa.evidence import (
    about_the_subject,
    analyse,
    answer_lacks,
    candidate_sentences,
    choose_evidence,
    counted_words,
    latin_names,
    metric_asked,
    misbound_numbers,
    normalise,
    number_values,
    ordinals,
    sentences,
    states_quantity,
    unknown_names,
    unmet_requirement,
    unsupported,
    unsupported_denial,
)


@dataclass(frozen=True)
class Text:
    text: str
    title: str = "T"
    language: str = "zh"
    section: str | None = None


class Words:
    """A vocabulary over a few texts: document frequency and where terms occur."""

    def __init__(self, *texts: Text) -> None:
        from ai_digest_qa.textutils import keyword_tokens

        self.texts = texts
        self.tokens = [(t.language, set(keyword_tokens(t.text + " " + t.title))) for t in texts]

    @property
    def chunk_count(self) -> int:
        return len(self.texts)

    def document_frequency(self, tokens, language=None):
        return {t: sum(1 for lang, ts in self.tokens if t in ts
                       and (language is None or lang == language)) for t in tokens}

    def texts_mentioning(self, term, language=None):
        return [f"{t.title}\n{t.text}" for t in self.texts
                if language is None or t.language == language]


ICML = Text("ICML 2024 论文亮点\n\nICML 是机器学习国际会议,目前正在奥地利首都维也纳举行。"
            "例如,今年的版本提交了 9,653 篇论文,仅接受 2,609 篇,接受率为 27.03%。",
            title="ICML 2024 论文亮点")
INDEX = Text("The transparency index scored Llama 2 at 54, the highest. GPT-4 scored 48. "
             "Claude 2 supports a context window of 100k tokens.", title="Index", language="en")
PAPER = Text("Time Weaver: A Conditional Time Series Generation Model\nAuthors: Sai Shankar "
             "Narasimhan, Lionel M. Ni, Sandeep Chinchali. Year: 2024. Venue: ICML 2024.\n"
             "We introduce Time Weaver, a diffusion-based model for time series.",
             title="Time Weaver", language="en")


def test_questions_name_their_constraints_and_not_their_grammar():
    profile = analyse("Which city hosted ICML 2024, and how many papers were accepted?")
    assert [c.text for c in profile.constraints] == ["ICML", "2024"]
    assert profile.wants_number
    assert [c.text for c in analyse("What score did Llama 2 get?").constraints] == ["Llama 2"]
    # A capitalised word opening a clause mid-question is grammar, not a name.
    assert latin_names("Where was it held? And Which year?") == []
    assert latin_names("Summarise the AI progress of 2023.") == ["AI"]
    assert "Authors" not in [c.text for c in analyse("Who are the authors?").constraints]
    assert analyse("作者是谁?").asked_fields == {"authors"}


def test_names_match_their_written_forms():
    (constraint,) = analyse("What about CIFAR-10?").constraints
    assert constraint.found_in(normalise("on cifar10 and imagenet"))
    assert not constraint.found_in(normalise("on CIFAR-100"))
    (llama,) = analyse("Is Llama 2 open?").constraints
    assert llama.found_in(normalise("Llama-2 is")) and not llama.found_in(normalise("Llama 20"))
    (number,) = analyse("Were 9653 papers submitted?").constraints
    assert number.found_in(normalise("提交了 9,653 篇")) and not number.found_in("19653")


def test_another_years_edition_has_no_evidence():
    words = Words(ICML, INDEX)
    assert choose_evidence(analyse("Where was ICML 2023 held?", words), [ICML]) == []
    found = choose_evidence(analyse("ICML 2024 在哪个城市举办?", words), [ICML])
    assert "维也纳" in found[0].quote


def test_a_sentence_must_name_the_subject_its_fact_is_about():
    words = Words(INDEX)
    profile = analyse("What score did Claude 2 get?", words)
    quotes = [e.quote for e in choose_evidence(profile, [INDEX], limit=3)]
    assert all("Claude 2" in q or "Claude 2" in INDEX.text.split(".")[0] for q in quotes)
    assert not any(q.startswith("The transparency index scored Llama 2") for q in quotes)


def test_headings_never_answer_and_metadata_only_when_asked():
    parts = sentences(ICML.text)
    assert parts[0].heading and parts[0].text == "ICML 2024 论文亮点"
    assert all(not p.heading for p in parts[1:])
    paper = sentences(PAPER.text)
    authors = next(p for p in paper if p.field == "authors")
    assert "Sandeep Chinchali" in authors.text  # not cut at "M. "
    words = Words(PAPER)
    asked = choose_evidence(analyse("Who are the authors of Time Weaver?", words), [PAPER],
                            limit=3)
    assert any(e.sentence.field == "authors" for e in asked)
    other = choose_evidence(analyse("What does Time Weaver generate?", words), [PAPER],
                            limit=3)
    assert all(e.sentence.field is None for e in other)


def test_a_papers_title_line_with_its_authors_is_a_heading():
    text = ("Time Weaver:条件时间序列生成模型(Narasimhan 等人)\n"
            "研究人员提出了一种基于扩散模型的方法(见 Narasimhan 等人)。\n"
            "Scaling Laws for Neural Language Models (Kaplan et al.)\n"
            "We study scaling. It follows earlier work (Kaplan et al.).\n")
    parts = sentences(text)
    assert [p.heading for p in parts] == [True, False, True, False, False]
    paper = Text(text)
    found = choose_evidence(analyse("Time Weaver用的是哪类生成模型?", Words(paper)), [paper],
                            limit=3)
    assert found and all("等人)" not in e.sentence.text or "。" in e.sentence.text
                         for e in found)


def test_which_ones_and_almost_ask_no_quantity():
    assert not analyse("TimesFM 的架构遵循哪几条设计原则?").wants_number
    assert not analyse("这个模型几乎在所有任务上都领先吗?").wants_number
    assert not analyse("几何深度学习研究什么?").wants_number
    assert analyse("TimesFM 有几条设计原则?").wants_number


def test_a_question_asking_for_an_institution_prefers_a_sentence_naming_one():
    text = Text("4D Gaussian Splatting 实现了实时的动态场景渲染,训练和存储效率很高。"
                "最近,华中科技大学研究团队提出了 4D Gaussian Splatting。", language="zh")
    words = Words(text)
    profile = analyse("Which research groups proposed 4D Gaussian Splatting?", words)
    assert profile.preferred_type == "institution" and profile.answer_type is None
    found = choose_evidence(profile, [text], limit=1)
    assert "华中科技大学" in found[0].quote
    # Preferred, not required: no institution named is no abstention.
    assert unmet_requirement(profile, ["4D Gaussian Splatting renders in real time."],
                             []) is None


def test_a_sentence_announcing_a_list_brings_the_list():
    text = Text("TimesFM 的架构基于以下几项原则:\n1、修补:补丁类似于标记。\n2、仅解码器模型。\n")
    words = Words(text)
    found = choose_evidence(analyse("TimesFM 的架构遵循哪些原则?", words), [text])
    assert "修补" in found[0].quote and "仅解码器" in found[0].quote


def test_numbers_compare_by_value_across_scale_words():
    assert 5.4e8 in number_values("亏损了5.4亿美元") and 5.4e8 in number_values("$540 million")
    assert unsupported("OpenAI lost $540 million.", "OpenAI去年的运营亏损了5.4亿美元。", "") == []
    assert unsupported("OpenAI lost $600 million.", "OpenAI去年的运营亏损了5.4亿美元。", "") \
        == ["600 million"]
    assert unsupported("ICML 在维也纳。", "ICML 维也纳", "") == []
    assert unsupported("ICML 在北京。", "维也纳", "ICML") == ["北京"]
    assert unsupported("It was held in Vienna.", "在维也纳举行", "") == []  # glossary


def test_a_number_tied_to_another_word_is_misbound():
    quotes = ["例如,今年的版本提交了 9,653 篇论文,仅接受 2,609 篇,接受率为 27.03%。"]
    assert misbound_numbers("ICML accepted 9,653 papers.", quotes, "") == ["9653"]
    assert misbound_numbers("ICML accepted 2,609 papers out of 9,653 submissions.", quotes,
                            "") == []
    scores = ["Llama 2得分54,透明度排第一,GPT-4得分48,排第三。"]
    assert misbound_numbers("48 [1]", scores, "排名第一的模型得了多少分?") == ["48"]
    assert misbound_numbers("54 [1]", scores, "排名第一的模型得了多少分?") == []


def test_unknown_latin_names_are_found_in_any_written_form():
    words = Words(ICML, INDEX, Text("FID on CIFAR10 is 3.1.", language="en"))
    assert unknown_names("Who won the 2022 FIFA World Cup?", words) == ["FIFA", "World", "Cup"]
    assert unknown_names("What FID on CIFAR-10?", words) == []
    # Chinese names never abstain on their own: the tagger also marks ordinary words.
    assert unknown_names("在模型优化里加正则项是为了什么?", words) == []


def test_unknown_terms_and_coverage_across_languages():
    words = Words(ICML, INDEX)
    off_topic = analyse("What's a good recipe for sourdough bread?", words)
    assert off_topic.unknown_share > 0.7
    on_topic = analyse("How many papers did ICML 2024 accept?", words)
    assert on_topic.unknown_share < 0.5
    found = choose_evidence(on_topic, [ICML])
    assert found and found[0].coverage > found[0].mass * 0.99  # Chinese text: checkable terms


def test_questions_asking_for_a_date_a_price_or_a_university_need_one_in_the_quotes():
    date = analyse("GPT-4 Turbo是哪一天发布的?")
    assert date.answer_type == "day"
    assert unmet_requirement(date, ["GPT-4 Turbo已支持128k tokens。"], []) == "day"
    assert unmet_requirement(date, ["今年的GPT-4 Turbo。"], []) == "day"  # a year, no day
    year = analyse("Which year did the paper appear?")
    assert unmet_requirement(year, ["It appeared at ICML 2024."], []) is None
    assert unmet_requirement(year, ["今年的版本提交了9,653篇论文。"], []) is None
    assert unmet_requirement(date, ["GPT-4 Turbo于11月6日发布。"], []) is None
    assert unmet_requirement(analyse("On what date was it released?"),
                             ["It was released on October 17."], []) is None
    money = analyse("How much did it cost to train GPT-4?")
    assert money.answer_type == "money"
    assert unmet_requirement(money, ["GPT-4 has 16 experts of 111B parameters."], []) == "money"
    assert unmet_requirement(money, ["据报道,OpenAI去年亏损了5.4亿美元。"], []) is None
    assert unmet_requirement(analyse("训练它花了多少钱?"), ["训练花了1亿元。"], []) is None
    university = analyse("Which university is Albert Gu from?")
    assert unmet_requirement(university, ["Authors: Albert Gu, Tri Dao."], []) == "university"
    assert unmet_requirement(university, ["Albert Gu is at Carnegie Mellon University."],
                             []) is None
    assert analyse("How does Mamba work?").answer_type is None


def test_a_rate_or_share_is_answered_by_a_ratio_not_by_any_number():
    rate = analyse("What was the acceptance rate at CVPR 2023?")
    assert rate.answer_type == "rate"
    assert unmet_requirement(rate, ["今年CVPR 2023共接收了2359篇论文。"], []) == "rate"
    assert unmet_requirement(rate, ["ICML 2024的接受率为 27.03%。"], []) is None
    share = analyse("CVPR 2023的论文录用率是多少?")
    assert share.answer_type == "rate"
    assert unmet_requirement(share, ["今年CVPR 2023共接收了2359篇论文。"], []) == "rate"
    assert unmet_requirement(analyse("这些模型最多用了多少比例的算力?"),
                             ["models trained with no more than 1/1,000th the compute"],
                             []) is None
    assert unmet_requirement(analyse("What percentage of the data was used?"),
                             ["Two in five samples, or forty percent, were used."], []) is None
    # "what * rate" alone is no ratio: a learning rate, a frame rate.
    assert analyse("What learning rate does Adam recommend?").answer_type is None


def test_a_rank_asked_about_must_be_the_rank_the_quote_gives():
    assert ordinals("Which model came second?") == {2}
    assert ordinals("谁排第三?") == {3} and ordinals("排名第一的模型") == frozenset()
    assert ordinals("tokens per second, one second, 3 seconds") == frozenset()
    second = analyse("Which model came second in the transparency ranking?")
    scores = "Llama 2得分54,排第一,GPT-4得分48,排第三。"
    assert unmet_requirement(second, [scores], [scores]) == "rank 2"
    assert unmet_requirement(analyse("Which model ranked third?"), [scores], [scores]) is None


def test_a_comparison_needs_one_passage_naming_everything_compared():
    question = analyse("Is RWKV faster than Hyena at long sequences?")
    assert question.compares
    rwkv, hyena = "RWKV runs in linear time.", "Hyena is 100x faster at 64K."
    assert unmet_requirement(question, [rwkv, hyena], [rwkv, hyena]) == "comparison"
    both = "Hyena is faster than RWKV at 64K."
    assert unmet_requirement(question, [both], [both]) is None
    # One name only: nothing to compare across passages.
    assert unmet_requirement(analyse("Is Hyena faster than attention?"), [hyena], [hyena]) \
        is None


def test_a_count_needs_a_number_of_the_thing_counted():
    assert counted_words("How many learnable parameters does LLaMA-Adapter add?") == [
        "learnable", "parameters"]
    assert counted_words("Vision Mamba一共有多少参数?") == ["参数"]
    assert counted_words("一共接收了多少篇论文?") == ["论文"]
    assert counted_words("遵循哪几条设计原则?") == []  # "which ones", not "how many"
    assert counted_words("How many GPUs were used?") == ["GPUs"]  # an acronym's plural
    assert counted_words("How many ICML papers?") == []  # a name: what follows is unsure
    parameters = analyse("Vision Mamba一共有多少参数?")
    assert unmet_requirement(parameters, ["Vim比DeiT快2.8倍,节省86.8%的显存。"], []) == "count"
    assert unmet_requirement(parameters, ["Vim有2600万参数。"], []) is None
    # The measure word counts the same kind of thing, whatever the noun: 篇 投稿 / 篇论文.
    submissions = analyse("今年一共收到了多少篇投稿?")
    assert unmet_requirement(submissions, ["今年提交了 9,653 篇论文。"], []) is None
    # A count in the other language is checked through the glossary, or not at all.
    papers = analyse("How many papers were accepted?")
    assert unmet_requirement(papers, ["仅接受 2,609 篇论文。"], []) is None


def test_a_measured_attribute_must_be_named_by_the_sentence_stating_the_amount():
    assert counted_words("Mistral 7B的上下文窗口有多长?") == ["上下文窗口"]
    assert counted_words("ICML 2024的接受率是多少?") == ["接受率"]
    assert counted_words("How long is the context window of Mistral 7B?") == [
        "context", "window"]
    assert counted_words("它有多大?") == []  # a pronoun names nothing
    assert "显存" in counted_words("每块显卡有多大显存?")  # the word after 多大, too
    memory = analyse("每块显卡有多大显存?")
    assert unmet_requirement(memory, ["It was fine-tuned on 8 A100 GPUs."], []) == "count"
    window = analyse("Mistral 7B的上下文窗口有多长?")
    assert unmet_requirement(window, ["Mistral 7B outperforms Llama 2 13B on all benchmarks."],
                             []) == "count"
    assert unmet_requirement(window, ["Mistral 7B的上下文窗口为 8k tokens。"], []) is None
    assert unmet_requirement(window, ["Mistral 7B has a context window of 8k tokens."],
                             []) is None  # through the glossary
    rate = analyse("ICML 2024的接受率是多少?")
    assert unmet_requirement(rate, ["今年的版本仅接受 2,609 篇,接受率为 27.03%。"], []) is None


def test_a_metric_asked_for_is_a_quantity():
    psnr = analyse("What PSNR does ABLE-NeRF reach on the Blender dataset?")
    assert psnr.wants_number
    assert unmet_requirement(psnr, ["ABLE-NeRF surpasses Ref-NeRF on the Blender dataset."],
                             []) == "quantity"
    assert not analyse("What does ABLE-NeRF improve on the Blender dataset?").wants_number


def test_a_number_after_a_lower_case_word_is_a_quantity_and_a_names_digits_are_not():
    question = "What BLEU score did it get on WMT 2014?"
    assert states_quantity("Our model achieves 28.4 BLEU on the WMT 2014 task.", question)
    assert not states_quantity("GPT-4, Llama 2, phi-1.5 and the H100 on WMT 2014.", question)
    # A size inside a hyphenated name is the name's: no score is stated here.
    score = "Zephyr-7B在MT-Bench上拿了多少分?"
    assert not states_quantity("Zephyr-7B surpasses Llama2-Chat-70B on MT-Bench.", score)
    assert states_quantity("Mistral 7B has 7B parameters.", "How many parameters?")


def test_each_part_of_a_hyphenated_term_must_be_covered():
    german = Text("Our model achieves 28.4 BLEU on the WMT 2014 English-to-German task.",
                  language="en")
    french = Text("On the WMT 2014 English-to-French task, our model reaches 41.8 BLEU.",
                  language="en")
    words = Words(german, french)
    profile = analyse("What BLEU score on WMT 2014 English-to-German?", words)
    assert {"english", "german"} <= {g.word for g in profile.groups}
    (best, *_) = choose_evidence(profile, [french, german], None, 2)
    assert "28.4" in best.quote


def test_a_denial_needs_a_quote_that_denies():
    affirming = ["Sebastian Raschka曾是威斯康星大学麦迪逊分校统计学助理教授。"]
    assert unsupported_denial("He did not do anything before joining Lightning AI.",
                              affirming)
    assert unsupported_denial("他没有担任过教职。", affirming)
    assert not unsupported_denial("He was an assistant professor at Wisconsin.", affirming)
    assert not unsupported_denial("He was not only a professor but also an author.",
                                  affirming)
    assert not unsupported_denial("It requires no human annotation.",
                                  ["Zephyr-7B requires no human annotation."])
    assert not unsupported_denial("OpenAI did not disclose how GPT-4 was built.",
                                  ["但从GPT-4开始,OpenAI完全不提构建过程。"])


def test_a_name_written_with_a_number_binds_like_a_versioned_name():
    # "ICLR 2024": the year alone (in ICML 2024's title) must not let ICML's figures
    # answer for ICLR.
    words = Words(ICML, INDEX)
    assert choose_evidence(analyse("What was the acceptance rate at ICLR 2024?", words),
                           [ICML]) == []
    assert choose_evidence(analyse("What was the acceptance rate at ICML 2024?", words),
                           [ICML])
    # A name with no number beside it stays a qualifier the sources may leave out.
    assert choose_evidence(analyse("How many papers did the 2024 edition of ICML accept?",
                                   words), [ICML])


def test_what_is_asked_must_be_in_a_quote_about_the_subject():
    able = Text("The ABLE-NeRF authors introduce an attention-based rendering framework.",
                title="NeRF", language="en")
    other = Text("Authors from Huazhong University proposed 4D Gaussian Splatting.",
                 title="4DGS", language="en")
    words = Words(able, other)
    profile = analyse("Which university are the ABLE-NeRF authors from?", words)
    # The other passage's sentence names nothing of the question: it is not chosen.
    found = choose_evidence(profile, [able, other], limit=3)
    assert [e.passage for e in found] == [0]
    assert unmet_requirement(profile, [e.quote for e in found], []) == "university"
    # Among candidates from both, only the quotes naming the subject count.
    both = candidate_sentences(profile, [able, other])
    assert {e.passage for e in both} == {0, 1}  # the university is in the other one
    about = about_the_subject(both)
    assert [e.passage for e in about] == [0]
    assert unmet_requirement(profile, [e.quote for e in about], []) == "university"
    assert unmet_requirement(profile, [e.quote for e in both], []) is None


def test_another_passage_joins_the_quotes_only_when_it_names_more_of_the_subject():
    first = Text("Vision Mamba (Vim) is a new vision backbone. Vim is 2.8 times faster than "
                 "DeiT. Vim saves 86.8% GPU memory.", title="Vim", language="en")
    echo = Text("Vision backbones like Vim are efficient. Vim runs fast on images.",
                title="Digest", language="en")
    words = Words(first, echo)
    profile = analyse("How much faster than DeiT is Vim?", words)
    found = choose_evidence(profile, [first, echo], limit=3)
    assert found and {e.passage for e in found} == {0}  # the echo adds a citation, no fact
    # A passage naming what the best quote leaves out joins it.
    fuller = Text("Vim is 2.8 times faster than DeiT and saves memory.", title="Vim",
                  language="en")
    partial = Text("Vim is a fast backbone.", title="Note", language="en")
    words = Words(partial, fuller)
    profile = analyse("How much faster than DeiT is Vim?", words)
    found = choose_evidence(profile, [partial, fuller], limit=3)
    assert found[0].passage == 1 and "2.8" in found[0].quote


def test_an_answer_must_hold_what_the_question_asks_for():
    how_many = analyse("How many papers did ICML 2024 accept?")
    assert answer_lacks(how_many, "ICML 2024 accepted many papers.") == "quantity"
    assert answer_lacks(how_many, "It accepted 2,609 papers.") is None
    assert answer_lacks(analyse("GPT-4 Turbo是哪一天发布的?"), "GPT-4 Turbo于2023年发布。") == "day"
    assert answer_lacks(analyse("Which city hosts ICML 2024?"), "Which city hosts ICML 2024?") \
        == "restated"
    assert answer_lacks(analyse("Which city hosts ICML 2024?"), "Vienna.") is None


def test_faithful_answers_are_not_taken_for_denials_or_restatements():
    # Quotes that deny in other words, a leading "No,", "No. 1".
    assert not unsupported_denial("DPO does not need a reward model.",
                                  ["DPO optimizes directly, without a separate reward model."])
    assert not unsupported_denial("DPO没有使用奖励模型。", ["It works without a reward model."])
    assert not unsupported_denial("No, GPT-4 is proprietary.", ["GPT-4 is a proprietary model."])
    assert not unsupported_denial("Llama 2 ranked No. 1.", ["Llama 2 ranked first."])
    # A choice, a yes/no question, a cue's characters inside another word.
    assert answer_lacks(analyse("Which is faster, Mamba or the Transformer?"),
                        "Mamba is faster.") is None
    assert answer_lacks(analyse("哪怕数据很少,DPO也有效吗?"), "哪怕数据很少,DPO也有效。") is None
    assert answer_lacks(analyse("ICML 2024 接受了十几篇论文吗?"), "接受了十几篇。") is None


def test_a_names_boundary_and_sizes_inside_names():
    from ai_digest_qa.evidence import _binding
    # "ML" inside "ICML 2024" is not "ML" written with 2024.
    assert [c.text for c in _binding(analyse("Which ML papers won awards at ICML 2024?"))] \
        == ["ICML", "2024"]
    assert not states_quantity("Zephyr-7B beats Llama-2-70B-Chat and zephyr-7b.", "How many?")
    assert states_quantity("It comes in 3-7B sizes.", "How many?")  # a range, not a name


def test_a_chinese_glossary_term_is_covered_by_its_whole_translation_only():
    # jieba cuts 直接偏好优化 into three words; a lone "preference" elsewhere in an English
    # abstract must not cover the term the way "direct preference optimization" does.
    dpo = Text("We propose Direct Preference Optimization (DPO), a stable method.",
               language="en", title="DPO")
    other = Text("Annotators stated a preference between two summaries.", language="en",
                 title="Summaries")
    words = Words(dpo, other)
    profile = analyse("直接偏好优化稳定吗?", words)
    (term,) = [g for g in profile.groups if g.word == "直接偏好优化"]
    assert term.covered_by({"direct", "prefer", "optim"})
    assert term.covered_by({"dpo"})
    assert not term.covered_by({"prefer"})
    assert profile.coverage({"prefer", "summari"}, "en") < profile.coverage(
        {"direct", "prefer", "optim", "stabl"}, "en")


def test_an_amount_bound_to_another_name_does_not_answer():
    # Each clause binds its amount to the names in it: PQ is given for COCO, ADE20K gets
    # mIoU, so no clause states Mask DINO's PQ on ADE20K.
    results = ("Mask DINO sets the best results on instance segmentation (54.5 AP on COCO), "
               "panoptic segmentation (59.4 PQ on COCO), and semantic segmentation "
               "(60.8 mIoU on ADE20K) among models under one billion parameters.")
    asked = analyse("Mask DINO在ADE20K上的全景分割PQ是多少?")
    assert unmet_requirement(asked, [results], [results]) == "binding"
    for question in ("Mask DINO在COCO上的全景分割PQ是多少?",
                     "Mask DINO在ADE20K上的语义分割mIoU是多少?"):
        assert unmet_requirement(analyse(question), [results], [results]) is None
    # One clause naming everything asked answers, whatever else the sentence lists.
    single = "On ADE20K, Mask DINO reaches 59.4 PQ, and 60.8 mIoU on COCO."
    assert unmet_requirement(asked, [single], [single]) is None
    # The subject named once for the whole sentence binds each clause.
    subject = "Mask DINO reports 59.4 PQ on ADE20K and 54.5 AP on COCO."
    assert unmet_requirement(asked, [subject], [subject]) is None
    ap = analyse("Mask DINO在COCO上的实例分割AP是多少?")
    assert unmet_requirement(ap, [subject], [subject]) is None
    # A metric written "mIoU" binds its amount like a name does.
    miou = analyse("Mask DINO在COCO上的语义分割mIoU是多少?")
    assert unmet_requirement(miou, [results], [results]) == "binding"


def test_an_amount_of_another_metric_does_not_answer_even_without_a_rival_name():
    # MultiNLI's clause gives accuracy; F1 belongs to the SQuAD clauses.
    results = ("It obtains new results, pushing the GLUE score to 80.5% (7.7% point absolute "
               "improvement), MultiNLI accuracy to 86.7% (4.6% absolute improvement), SQuAD "
               "v1.1 Test F1 to 93.2 and SQuAD v2.0 Test F1 to 83.1.")
    for question, unmet in (("BERT在MultiNLI上的F1是多少?", "binding"),
                            ("BERT把SQuAD v2.0的Test F1提高到了多少?", None),
                            ("BERT在SQuAD v1.1上的Test F1是多少?", None)):
        assert unmet_requirement(analyse(question), [results], [results]) == unmet, question
    # The names before the first amount are the subject, not asked of every clause.
    adapter = ("Using 52K demonstrations, LLaMA-Adapter introduces 1.2M parameters, and "
               "costs less than one hour for fine-tuning on 8 A100 GPUs.")
    question = analyse("How many hours does fine-tuning LLaMA-Adapter take on 8 A100 GPUs?")
    assert unmet_requirement(question, [adapter], [adapter]) is None


def test_a_metric_asked_for_is_a_number_question():
    for question, metric in (("What top-1 accuracy does Vision Mamba reach on ImageNet?",
                              ["top-1", "accuracy"]),
                             ("What PQ does Mask DINO get on ADE20K?", ["PQ"]),
                             ("DINO在COCO上的AP是多少?", ["AP"])):
        assert metric_asked(question) == metric and analyse(question).wants_number, question
    # "What is the <metric> of": a metric written as a name asks its value.
    for question, metric in (("What is the FID of U-ViT on MS-COCO?", ["FID"]),
                             ("What's the mIoU of Mask DINO on ADE20K?", ["mIoU"]),
                             ("What is the top-1 accuracy of Vim?", ["top-1", "accuracy"])):
        assert metric_asked(question) == metric and analyse(question).wants_number, question
    assert metric_asked("What is the role of DPO in Zephyr-7B?") == []
    assert metric_asked("What was GPT-3 trained on in 2020?") == []  # a subject, no metric
    # One rule says which metric is written as a name, for both: the amount must stand
    # by "PSNR", while a capitalised plain word ("Accuracy") may be paraphrased.
    assert "PSNR" in counted_words("What PSNR does ABLE-NeRF reach?")
    assert "Accuracy" not in counted_words("What Accuracy does Vim reach on ImageNet?")
    assert metric_asked("What is the name of the variant of Adam?") == []
    # No metric named, or no result verb: no number asked.
    for question in ("What does Mamba achieve on language modeling?",
                     "What results does DINO achieve on COCO?",
                     "What GPU does LLaMA-Adapter use?"):
        assert metric_asked(question) == [] and not analyse(question).wants_number, question


def test_the_amount_stands_by_the_metric_it_gives():
    blender = ("In the Blender dataset, ABLE-NeRF achieves SOTA results and surpasses Ref-NeRF "
               "in all 3 image quality metrics PSNR, SSIM, LPIPS.")
    asked = analyse("What SSIM does ABLE-NeRF reach on the Blender dataset?")
    assert unmet_requirement(asked, [blender], [blender]) == "count"  # 3 counts metrics
    stated = "On Blender, ABLE-NeRF reaches an SSIM of 0.961."
    assert unmet_requirement(asked, [stated], [stated]) is None
    # In Chinese, within a few characters: "具有 10 亿个参数".
    params = analyse("UniAudio有多少个参数?")
    near = "该模型经过 165000 小时的音频训练,具有 10 亿个参数。"
    far = "该模型有 11 项任务,每项任务的参数不同。"
    assert unmet_requirement(params, [near], [near]) is None
    assert unmet_requirement(params, [far], [far]) == "count"


def test_a_metric_the_index_never_mentions_is_stated_nowhere():
    hyena = Text("Hyena reaches Transformer quality on WikiText103 with 20% less compute.",
                 title="Hyena", language="en")
    words = Words(hyena)
    asked = analyse("Hyena在WikiText103上的困惑度是多少?", words)
    assert unmet_requirement(asked, [hyena.text], [hyena.text]) == "count"
    known = analyse("Hyena在WikiText103上的计算量减少了多少?", words)
    assert unmet_requirement(known, [hyena.text], [hyena.text]) is None


def test_list_numbers_and_cues_are_no_amounts_and_no_counted_words():
    assert not states_quantity("3、先进的性能和效率:DistiLLM 以最先进的性能竞争。", "多少倍")
    assert not states_quantity("UniAudio 1) first tokenizes, 2) concatenates", "how many")
    assert states_quantity("achieving up to 4.3× speedup", "多少倍")
    # "最多快多少倍" holds the cue 多快, then 多少倍: a ratio, no noun counted.
    assert counted_words("DistiLLM比近期的知识蒸馏方法最多快多少倍?") == []
    speedup = "DistiLLM achieves up to 4.3× speedup compared to recent KD methods."
    asked = analyse("DistiLLM比近期的知识蒸馏方法最多快多少倍?")
    assert unmet_requirement(asked, [speedup], [speedup]) is None


def test_an_answer_taking_another_clauses_amount_is_caught():
    uvit = ("In particular, latent diffusion models with U-ViT achieve record-breaking FID "
            "scores of 2.29 in class-conditional image generation on ImageNet 256x256, and "
            "5.48 in text-to-image generation on MS-COCO.")
    asked = "U-ViT在ImageNet 256x256类条件生成上的FID是多少?"
    assert misbound_numbers("5.48 [1]", [uvit], asked) == ["5.48"]
    assert misbound_numbers("FID 2.29 [1]", [uvit], asked) == []
    assert misbound_numbers("5.48 [1]", [uvit], "What FID does U-ViT reach on MS-COCO?") == []
    # One clause, or a sentence whose subject binds every clause, is not checked.
    assert misbound_numbers("1.2M [1]", ["LLaMA-Adapter introduces 1.2M parameters, "
                                         "and costs one hour on 8 A100 GPUs."],
                            "How many parameters does LLaMA-Adapter add?") == []


def test_a_bare_number_is_checked_against_whole_glossary_translations():
    # 英德 is "English-to-German": "English" alone, in the English-to-French sentence,
    # does not make 41.8 the English-German score.
    quotes = ["Our model achieves 28.4 BLEU on the WMT 2014 English-to-German translation "
              "task.", "On the WMT 2014 English-to-French translation task, our model "
              "establishes a new single-model state-of-the-art BLEU score of 41.8."]
    asked = "Transformer在WMT 2014英德翻译任务上的BLEU是多少?"
    assert misbound_numbers("41.8 [1]", quotes, asked) == ["41.8"]
    assert misbound_numbers("28.4 [1]", quotes, asked) == []


def test_a_margin_is_no_value():
    vit = ("Compared to MobileViT-XXS, EfficientViT-M2 achieves 1.8% superior accuracy, "
           "while running 5.8x faster on the GPU.")
    assert unmet_requirement(analyse("EfficientViT-M2的top-1准确率是多少?"), [vit], [vit]) \
        == "count"
    # Asked by how much, the margin is the answer.
    assert unmet_requirement(analyse("EfficientViT-M2的准确率比MobileViT-XXS高出多少?"),
                             [vit], [vit]) is None
    stated = "EfficientViT-M2 reaches 70.8% top-1 accuracy on ImageNet."
    assert unmet_requirement(analyse("EfficientViT-M2的top-1准确率是多少?"), [stated],
                             [stated]) is None


def test_a_metric_in_plain_words_may_be_paraphrased_a_named_one_not():
    gs = "It allows real-time (>= 30 fps) novel-view synthesis at 1080p resolution."
    asked = analyse("What frame rate does 3D Gaussian Splatting reach at 1080p?")
    assert asked.wants_number and unmet_requirement(asked, [gs], [gs]) is None
    four = "4D-GS achieves real-time rendering, 82 FPS at an 800x800 resolution."
    psnr = analyse("What PSNR does 4D Gaussian Splatting reach?")
    assert unmet_requirement(psnr, [four], [four]) == "count"
    # An amount glued to its metric ("51.3AP") stands by it.
    dino = "DINO achieves 49.4AP in 12 epochs and 51.3AP in 24 epochs on COCO."
    ap = analyse("What COCO AP does DINO get after 24 training epochs?")
    assert unmet_requirement(ap, [dino], [dino]) is None


def test_a_bare_number_in_a_question_is_found_beside_a_unit():
    vim = Text("For example, Vim is 2.8× faster than DeiT and saves 86.8% GPU memory.",
               title="Vision Mamba", language="en")
    asked = analyse("Which vision transformer is Vim reported to be 2.8 times faster than?")
    assert [e.sentence.text for e in candidate_sentences(asked, [vim])] == [vim.text]


DPO_TITLE = "Direct Preference Optimization: Your Language Model is Secretly a Reward Model"
DPO_RECORD = Text(f"{DPO_TITLE}\nAuthors: R. Rafailov, A. Sharma. Year: 2023. Venue: NeurIPS "
                  "2023.\nWe introduce Direct Preference Optimization (DPO), a stable and "
                  "performant algorithm.", DPO_TITLE, "en")
DPO_ARTICLE = Text("用上DPO后,模型输出的质量也优于RLHF/PPO。直接偏好优化(DPO)绕过了建模奖励函数。",
                   "RLHF平替已出现", "zh")


def test_the_asked_field_of_the_record_the_question_names_answers():
    question = "直接偏好优化(DPO)那篇论文是在哪个会议上发表的?"
    profile = analyse(question, Words(DPO_RECORD, DPO_ARTICLE))
    best = choose_evidence(profile, [DPO_ARTICLE, DPO_RECORD], limit=1)[0]
    assert best.sentence.text == "Venue: NeurIPS 2023."


def test_a_field_line_of_a_record_the_question_does_not_name_is_no_better_answer():
    def year_line(title: str) -> float:
        record = Text(f"{title}\nAuthors: X. Liu. Year: 2023. Venue: CVPR 2023.\nWe study "
                      "memory. Cascaded attention is fast. Since then such models first "
                      "appear in every task.", title, "en")
        profile = analyse("In what year did Vision Transformers first appear?", Words(record))
        return next(e.score for e in choose_evidence(profile, [record], limit=3)
                    if e.sentence.field == "year")

    # "Vision Transformers" names the first record; the second is EfficientViT's.
    named = year_line("Vision Transformers: An Image is Worth 16x16 Words")
    assert named > year_line("EfficientViT: Memory Efficient Vision Transformer")
    # Nor does a field line answer for a record naming none of the question's names.
    record = Text(f"{DPO_TITLE}\nAuthors: R. Rafailov. Year: 2023.\nWe introduce DPO.",
                  DPO_TITLE, "en")
    other = analyse("Who wrote the paper that introduced TimesFM?", Words(record))
    assert all(e.sentence.field is None for e in choose_evidence(other, [record], limit=3))


def test_the_record_the_question_names_outranks_a_source_mentioning_it_in_passing():
    # A Chinese article naming RWKV beside another model's attention covers the
    # question's Chinese words; the RWKV paper's abstract answers it.
    article = Text("视觉Transformer原理与语言Transformer类似,是在多头注意力块中使用相同的"
                   "自注意力机制。它一直有一个局限,效率低于CNN。",
                   title="2023年AI回顾:RWKV与视觉Transformer")
    paper = Text("RWKV: Reinventing RNNs for the Transformer Era\nOur approach leverages a "
                 "linear attention mechanism and allows parallel training.",
                 title="RWKV: Reinventing RNNs for the Transformer Era", language="en")
    # Attention mechanisms are common in the index, RWKV is rare: it weighs most.
    common = [Text(f"第{i}种模型也用了注意力机制,一种常见的机制。") for i in range(4)]
    profile = analyse("RWKV利用了哪一种注意力机制?", Words(article, paper, *common))
    ranked = sorted(candidate_sentences(profile, [article, paper]), key=lambda e: -e.score)
    assert "linear attention" in ranked[0].quote
    assert ranked[0].subject_fit > 0
    assert all(e.subject_fit == 0 for e in ranked if e.passage == 0)
    # Without the record named by its title, the article's sentence stays first.
    unnamed = Text(paper.text, title="Some other paper", language="en")
    ranked = sorted(candidate_sentences(profile, [article, unnamed]), key=lambda e: -e.score)
    assert ranked[0].passage == 0


def test_a_unit_abbreviation_counts_what_it_abbreviates():
    quote = "Our method renders 82 FPS at an 800×800 resolution on an RTX 3090 GPU."
    for question in ("它在RTX 3090上能跑到多少帧每秒?",
                     "How many frames per second does it reach on an RTX 3090?"):
        assert unmet_requirement(analyse(question), [quote], []) is None, question
    # The abbreviation answers only for what it counts.
    assert unmet_requirement(analyse("How many GPUs does it use?"), [quote], []) == "count"
    # Inside a name it is no unit.
    assert "帧" not in _units("mfps-net ranks first")


def _units(text: str) -> str:
    from ai_digest_qa.evidence import _units_spelled_out

    return _units_spelled_out(text)


def test_in_the_record_named_a_sentence_need_not_repeat_the_name():
    paper = Text("Mistral 7B\nWe introduce Mistral 7B, a 7-billion-parameter language model. "
                 "Mistral 7B outperforms Llama 2 13B on all benchmarks. Our models are "
                 "released under the Apache 2.0 license.", title="Mistral 7B", language="en")
    # Licences are common in the index, Mistral 7B is rare: its name weighs most.
    common = [Text(f"Model {i} is released under an open source license.", language="en")
              for i in range(6)]
    profile = analyse("Mistral 7B是在什么开源许可证下发布的?", Words(paper, *common))
    best = choose_evidence(profile, [paper], limit=1)[0]
    assert "Apache" in best.quote


def test_a_records_title_line_is_no_answer_however_long():
    title = ("TimeMIL: Advancing Multivariate Time Series Classification via a Time-aware "
             "Multiple Instance Learning")
    paper = Text(f"{title}\nWe reformulate the classification as a weakly supervised problem.",
                 title=title, language="en")
    profile = analyse("What does TimeMIL advance for multivariate time series?", Words(paper))
    assert all(e.sentence.text != title for e in candidate_sentences(profile, [paper]))
    assert candidate_sentences(profile, [paper])


def test_words_that_point_at_the_source_are_no_terms_of_the_question():
    # "那篇 ... 综述说 ... 能起什么作用" frames the question; as terms, words no passage
    # holds, they made it look off-topic.
    framed = analyse("那篇大模型综述说正则化能起什么作用?")
    assert [g.word for g in framed.groups] == [g.word for g in analyse("大模型正则化").groups]
    # Whole phrases only: "说明" keeps its "说".
    assert "说明" in {g.word for g in analyse("这段代码说明了什么?").groups}
    # A question made only of such words keeps them.
    assert analyse("那篇?").groups
