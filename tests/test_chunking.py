from ai_digest_qa.chunking import Chunker, count_units, split_sentences
from ai_digest_qa.corpus import load_file
from ai_digest_qa.records import Document, Section
from conftest import CORPUS


def _doc(text: str, sections: tuple[Section, ...] = ()) -> Document:
    return Document("d", text, "T", "d.txt", None, "zh", "document", sections)


def test_sentences_split_at_chinese_and_english_punctuation():
    text = "第一句。第二句！第三句？第四句；“引号里。”最后… Then English. Version 3.5 stays! OK"
    pieces = split_sentences(text)
    assert "".join(pieces) == text
    assert pieces[:4] == ["第一句。", "第二句！", "第三句？", "第四句；"]
    assert "“引号里。”" in pieces
    assert any(p.endswith("Version 3.5 stays!") for p in pieces)


def test_units_count_cjk_characters_and_words():
    assert count_units("大模型") == 3
    assert count_units("large language model") == 3
    assert count_units("用DPO训练,") == 5


def test_chinese_chunks_respect_size_offsets_and_overlap():
    text = "".join(f"这是第{i}个句子,它讲的是大模型的训练与优化。" for i in range(60))
    chunks = Chunker(chunk_size=60, chunk_overlap=25).run(_doc(text))
    assert len(chunks) > 5
    for chunk in chunks:
        assert text[chunk.start:chunk.end] == chunk.text
        assert count_units(chunk.text) <= 60
        assert chunk.text.endswith(("。", ","))  # sentence or clause boundaries
    assert chunks[1].start < chunks[0].end  # overlap: the last sentence is repeated


def test_long_sentence_splits_at_chinese_commas():
    clause = "模型越来越大、数据越来越多,计算成本越来越高；"
    text = clause * 12 + "。"
    chunks = Chunker(chunk_size=40, chunk_overlap=0).run(_doc(text))
    assert len(chunks) > 3
    assert all(c.text[-1] in "、,；。" for c in chunks[:-1])


def test_english_and_mixed_documents():
    text = ("Mixture of experts routes each token to a few experts. " * 20
            + "混合专家(MoE)只激活部分专家。" * 10)
    chunks = Chunker(chunk_size=50, chunk_overlap=8).run(_doc(text))
    assert all(text[c.start:c.end] == c.text for c in chunks)
    assert any("混合专家" in c.text for c in chunks)
    assert any(c.text.startswith("Mixture") for c in chunks)


def test_chunks_carry_sections_and_do_not_cross_them():
    body_a = "甲" * 30 + "。"
    body_b = "乙" * 30 + "。"
    text = f"第一节\n\n{body_a}\n\n第二节\n\n{body_b}\n"
    sections = (Section(0, "第一节"), Section(text.index("第二节"), "第二节"))
    chunks = Chunker(chunk_size=40, chunk_overlap=0).run(_doc(text, sections))
    assert [c.section for c in chunks] == ["第一节", "第二节"]
    assert "乙" not in chunks[0].text and "甲" not in chunks[1].text


def test_seed_articles_chunk_with_exact_offsets_and_headings():
    chunker = Chunker(300, 40)
    for path in sorted((CORPUS / "articles").glob("*.txt")):
        [document] = load_file(path, path.name)
        chunks = chunker.run(document)
        assert chunks
        for chunk in chunks:
            assert document.text[chunk.start:chunk.end] == chunk.text
            assert count_units(chunk.text) <= 300
        assert sum(1 for c in chunks if c.section) >= len(chunks) - 1
    [overview] = load_file(CORPUS / "articles" / "002_662b9dff026fb76d.txt", "002")
    sections = {c.section for c in chunker.run(overview)}
    assert "1.1 大模型的定义与特点" in sections and "3.1 线性回归" in sections


def test_chunk_ids_are_stable():
    document = _doc("稳定的标识符。" * 50)
    first = [c.chunk_id for c in Chunker(40, 5).run(document)]
    assert first == [c.chunk_id for c in Chunker(40, 5).run(document)]
    assert len(set(first)) == len(first)
