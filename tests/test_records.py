"""The records' own logic: pages of a document, of a passage and of a citation's span."""

from dataclasses import replace

from ai_digest_qa.records import Citation, Document, Passage, Section


def _document(text: str, source: str = "report.pdf", **fields: object) -> Document:
    return Document(doc_id="d", text=text, title="T", source=source, url=None,
                    language="en", kind="document", **fields)  # type: ignore[arg-type]


def test_page_of_maps_every_offset_to_its_page_and_skips_blank_pages():
    pages = ["first page text", "", "third", "fourth page"]
    text = "\n\n".join(p for p in pages if p)
    starts, offset = [], 0
    for page in pages:
        starts.append(offset)
        offset += len(page) + 2 if page else 0
    document = _document(text, metadata={"page_starts": starts})
    for number, page in enumerate(pages, start=1):
        if page:
            at = text.index(page)
            assert {document.page_of(o) for o in range(at, at + len(page))} == {number}
    third = text.index("third")
    assert document.pages_of(third - 4, third + 3) == (1, 3)  # "xt\n\nthi"
    # The blank line between two pages does not count: "\n\nthi" is on page 3 alone.
    assert document.pages_of(third - 2, third + 3) == (3, 3)
    assert document.pages_of(0, len(text)) == (1, 4)


def test_a_pdf_indexed_before_pages_were_recorded_uses_its_page_sections():
    text = "one\n\nthree\n\nfour"
    legacy = _document(text, sections=(Section(0, "p. 1"), Section(5, "p. 3"),
                                       Section(12, "p. 4")))
    assert legacy.page_starts == (0, 5, 5, 12)
    assert [legacy.page_of(o) for o in (0, 5, 12)] == [1, 3, 4]
    assert _document(text, sections=(Section(0, "Intro"),)).page_starts == ()
    assert _document(text, source="notes.txt", sections=(Section(0, "p. 1"),)).page_starts == ()


def _passage(**fields: object) -> Passage:
    values: dict[str, object] = dict(text="x" * 40, score=1.0, title="T", source="s.pdf",
                                     url=None, doc_id="d", chunk_id="c", start=100, end=140,
                                     language="en")
    values.update(fields)
    return Passage(**values)  # type: ignore[arg-type]


def test_a_citation_is_on_the_page_where_its_span_starts():
    passage = _passage(page=7, pages=(7, 8), page_breaks=(120,))
    assert passage.page_at(100) == 7 and passage.page_at(119) == 7
    assert passage.page_at(120) == 8 and passage.page_at(139) == 8
    assert Citation("[1]", passage, (2, 10)).page == 7
    assert Citation("[1]", passage, (20, 30)).page == 8  # 100 + 20 is page 8's first char
    assert Citation("[1]", passage).page == 7  # no span: the passage's first page
    moved = replace(Citation("[1]", passage, (2, 10)), span=(25, 30))
    assert moved.page == 8  # derived again, never stale
    plain = _passage()
    assert plain.page_at(110) is None and Citation("[1]", plain, (0, 5)).page is None
