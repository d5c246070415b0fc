import re

from ai_digest_qa.cleaning import clean_text, plain_tex
from ai_digest_qa.corpus import load_file
from conftest import CORPUS

ARTICLES = sorted((CORPUS / "articles").glob("*.txt"))


def _read(name: str) -> str:
    return next(p for p in ARTICLES if p.name.startswith(name)).read_text(encoding="utf-8")


def test_ads_footer_and_captions_are_removed():
    icml = clean_text(_read("001")).text
    assert "论文指导" not in icml and "SCI" not in icml
    assert "写论文必备书籍" not in icml  # an ad list item without a marker of its own
    assert "开放原子开发者工作坊" not in icml and "更多推荐" not in icml
    review = clean_text(_read("000")).text
    assert "机器翻译,仅供参考" not in review
    assert "365 天前" not in review and "\n8591\n" not in review
    assert "图片来源" not in review


def test_real_content_is_kept():
    icml = clean_text(_read("001")).text
    for sentence in ("提交了 9,653 篇论文,仅接受 2,609 篇,接受率为 27.03%",
                     "该模型经过 165000 小时的音频训练,具有 10 亿个参数",
                     "3、最后,它使用 LLM。"):
        assert sentence in icml
    review = clean_text(_read("000")).text
    assert review.startswith("一文盘点2023人工智能进展")
    assert "Llama 2得分54" in review and "原文来源:量子位" in review
    assert "[3]https://twitter.com/dotey/status/1721204481369498004" in review


def test_every_removal_is_recorded_and_small():
    for path in ARTICLES:
        raw = path.read_text(encoding="utf-8")
        result = clean_text(raw)
        kinds = {kind for kind, _ in result.removed}
        assert kinds <= {"header-meta", "mt-caption", "ad", "footer",
                         "duplicate-reference", "katex-double"}
        cjk_before = len(re.findall(r"[\u4e00-\u9fff]", raw))
        cjk_after = len(re.findall(r"[\u4e00-\u9fff]", result.text))
        cjk_removed = sum(len(re.findall(r"[\u4e00-\u9fff]", text)) for _, text in result.removed)
        assert cjk_before - cjk_after == cjk_removed  # nothing vanished unrecorded
        assert cjk_after > 0.9 * cjk_before


def test_duplicate_references_are_dropped_unique_ones_kept():
    text = clean_text(_read("002")).text
    refs = re.findall(r"^\[(\d+)\]", text, re.M)
    assert refs[:14] == [str(n) for n in range(1, 15)]
    assert text.count("Towards Evaluating the Robustness of Neural Networks") == 1
    assert text.count("Attack on Federated Learning") == 1
    assert "[59]" not in text  # the truncated tail entry
    assert "Kingma, D. P., & Ba, J. (2014). Adam" in text


def test_katex_doubles_are_merged():
    text = clean_text(_read("002")).text
    assert "\\theta" not in text and "\\frac" not in text
    assert "y=θ0+θ1x1+θ2x2++θnxn+ϵ\n" in text
    assert "P(y=1x;θ)=11+e(θ0+θ1x1+θ2x2++θnxn)\n" in text
    assert "其中,y 是输出变量,x1,x2,,xn 是输入变量" in text
    assert "计算输出y和真实标签之间的损失值" in text


def test_katex_rule_leaves_ordinary_text_alone():
    text = "变量 xx 和 ll 在这里是普通文本。The word committee has double letters.\n"
    assert clean_text(text).text == text  # no TeX anywhere: plain doubles are not touched


def test_cleaning_is_idempotent():
    for path in ARTICLES:
        once = clean_text(path.read_text(encoding="utf-8")).text
        assert clean_text(once).text == once


def test_inline_tex_of_abstracts_reads_as_text():
    assert plain_tex(r"up to 4.3$\times$ speedup") == "up to 4.3× speedup"
    assert plain_tex(r"images of 1248$\times$1248") == "images of 1248×1248"
    assert plain_tex(r"test-dev (\textbf{$\textbf{63.3}$AP})") == "test-dev (63.3AP)"
    assert plain_tex(r"achieves $49.4$AP in $12$ epochs") == "achieves 49.4AP in 12 epochs"
    assert plain_tex(r"rate $95\%$, and \texttt{val2017}") == "rate 95%, and val2017"
    assert plain_tex("the ``Textbooks Are All You Need'' approach") == \
        'the "Textbooks Are All You Need" approach'
    assert plain_tex(r"a $\alpha$-weighted loss") == "a α-weighted loss"


def test_prices_and_bare_percent_are_left_alone():
    text = "It costs $5 per GPU-hour, against $40 for the rest; 86.8% GPU memory saved."
    assert plain_tex(text) == text


def test_paper_records_are_loaded_without_tex(tmp_path):
    record = tmp_path / "papers.jsonl"
    record.write_text('{"key": "k", "title": "T", "abstract": "Vim is 2.8$\\\\times$ faster."}\n',
                      encoding="utf-8")
    [document] = load_file(record, "papers")
    assert "Vim is 2.8× faster." in document.text
