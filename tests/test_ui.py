"""The web UI: rendering, the handlers in-process, and the real app through gradio_client."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import gradio as gr
import pytest

from ai_digest_qa import Assistant
from ai_digest_qa.ui import (
    ChatApp,
    Warmup,
    link_citations,
    render_sources,
)


def _request(language: str = "en", session: str = "s1") -> gr.Request:
    return gr.Request(session_hash=session, headers={"accept-language": language})


@pytest.fixture(scope="module")
def chat_app(corpus_assistant: Assistant, tmp_path_factory: pytest.TempPathFactory) -> ChatApp:
    from dataclasses import replace

    feedback = tmp_path_factory.mktemp("feedback") / "feedback.jsonl"
    assistant = Assistant(replace(corpus_assistant.config, feedback_file=feedback))
    warmup = Warmup(assistant, load_llm=False).start()
    assert warmup.index_ready.wait(120) and warmup.phase != "failed", warmup.error
    return ChatApp(assistant, warmup)


def _run(app: ChatApp, question: str, mode: str = "extractive",
         request: gr.Request | None = None) -> list[tuple]:
    return list(app.answer(question, mode, 4, [], request or _request()))


def test_citation_links_only_for_passages_that_exist() -> None:
    text = link_citations("Vienna [1], see also [3] and [12].", turn=2, passages=3)
    assert '<a class="cite" href="#src-2-1">[1]</a>' in text
    assert 'href="#src-2-3"' in text
    assert "[12]." in text and "src-2-12" not in text


def test_sources_escape_passage_html_and_highlight_the_cited_span() -> None:
    passage = {"text": "Intro. <script>alert(1)</script> ICML is held in Vienna.",
               "title": "T <b>", "source": "corpus/x.txt", "url": None, "start": 0,
               "end": 57, "language": "en", "section": None, "chunk_id": "c"}
    start = passage["text"].index("ICML")
    turns = [{"question": "Where?", "answer": "Vienna [1]", "language": "en",
              "passages": [passage],
              "citations": [{"number": 1, "chunk_id": "c", "span": [start, start + 24]}]}]
    html = render_sources(turns, "en")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "T &lt;b&gt;" in html
    assert "<mark>ICML is held in Vienna.</mark>" in html
    assert 'id="src-1-1"' in html and "cited" in html


def test_sources_never_render_markup_or_script_links_from_documents() -> None:
    passage = {"text": "t", "title": "T", "source": "corpus/x.jsonl", "start": 0, "end": 1,
               "language": "<img src=x onerror=alert(1)>", "section": None, "chunk_id": "c",
               "url": "javascript:alert(document.cookie)"}
    html = render_sources([{"question": "q", "answer": "a", "language": "en",
                            "passages": [passage]}], "en")
    assert "<img" not in html and "&lt;img" in html
    assert 'href="javascript' not in html and "<code>javascript:alert" in html
    passage["url"] = 123  # a malformed metadata value is shown, not a crash
    assert "<code>123</code>" in render_sources(
        [{"question": "q", "answer": "a", "language": "en", "passages": [passage]}], "en")


def test_an_abstentions_passages_are_labelled_related_not_answers() -> None:
    passage = {"text": "ICML is held in Vienna.", "title": "T", "source": "corpus/x.txt",
               "url": None, "start": 0, "end": 23, "language": "en", "section": None,
               "chunk_id": "c"}
    turn = {"question": "Where was ICML 2023?", "answer": "The sources do not contain it.",
            "language": "en", "passages": [passage], "citations": []}
    assert "retrieved, not cited" in render_sources([turn], "en")
    html = render_sources([{**turn, "abstained": True}], "en")
    assert "related, not an answer" in html and "retrieved, not cited" not in html
    assert "相关,但不是答案" in render_sources([{**turn, "abstained": True, "language": "zh"}],
                                          "zh")


def test_source_cards_show_the_page_of_the_cited_span_or_the_passages_pages() -> None:
    from ai_digest_qa.records import Citation, Passage
    from ai_digest_qa.ui import _citation_record

    text = "End of page seven. Start of page eight <b>bold</b>."
    breaks = (500 + text.index("Start"),)
    pdf = Passage(text=text, score=1.0, title="Report", source="/data/report.pdf", url=None,
                  doc_id="r", chunk_id="c1", start=500, end=500 + len(text), language="en",
                  page=7, pages=(7, 8), page_breaks=breaks)
    plain = Passage(text="No pages.", score=1.0, title="Note", source="/data/n.md", url=None,
                    doc_id="n", chunk_id="c2", start=0, end=9, language="en")
    on_eight = text.index("Start")
    citations = [Citation("[1]", pdf, (on_eight, len(text)))]
    turn = {"question": "q", "answer": "a [1]", "language": "en",
            "passages": [p.to_record(Path("/")) for p in (pdf, plain)],
            "citations": [_citation_record(c) for c in citations]}
    json.dumps(turn)  # the page state stays JSON
    html = render_sources([turn], "en")
    pdf_card, plain_card = html.split('id="src-1-2"')
    assert '<span class="src-page">p. 8</span>' in pdf_card  # where the quote starts
    assert "p. 7" not in pdf_card and "&lt;b&gt;bold" in pdf_card
    assert "src-page" not in plain_card
    # Not cited (or cited without a span): the passage's own range.
    uncited = render_sources([{**turn, "citations": []}], "zh")
    assert '<span class="src-page">p. 7–8</span>' in uncited
    no_span = {**turn, "citations": [_citation_record(Citation("[1]", pdf))]}
    assert '<span class="src-page">p. 7</span>' in render_sources([no_span], "en")


def test_empty_and_overlong_questions_get_a_readable_message(chat_app: ChatApp) -> None:
    outputs = _run(chat_app, "   ", request=_request("zh-CN"))
    messages = outputs[-1][0]
    assert messages[-1]["content"] == "请先输入问题(中文或英文)。"
    long = "为什么" * 2000
    messages = _run(chat_app, long)[-1][0]
    assert "6000 characters long; the limit is 4000" in messages[-1]["content"]
    assert "Traceback" not in messages[-1]["content"]


def test_sources_are_shown_before_the_answer(chat_app: ChatApp) -> None:
    outputs = _run(chat_app, "ICML 2024 在哪个城市举办?")
    # 1: the question with "searching"; 2: sources filled, answer not yet there; last: final.
    first_sources = next(i for i, out in enumerate(outputs)
                         if isinstance(out[2], str) and "src-card" in out[2])
    assert first_sources < len(outputs) - 1
    assert "answer-meta" not in outputs[first_sources][0][-1]["content"]
    final_messages, _, final_sources, turns = outputs[-1]
    answer = final_messages[-1]["content"]
    assert "维也纳" in answer and 'class="cite"' in answer and "answer-meta" in answer
    assert "<mark>" in final_sources and "维也纳" in final_sources
    assert turns[-1]["citations"] and turns[-1]["answer_mode"] == "extractive"


def test_a_follow_up_uses_the_conversation(chat_app: ChatApp) -> None:
    first = _run(chat_app, "Which city hosted ICML 2024?")[-1][3]
    outputs = list(chat_app.answer("What was its acceptance rate?", "extractive", 4, first,
                                   _request()))
    messages, _, sources, turns = outputs[-1]
    assert len(turns) == 2 and len(messages) == 4
    assert "27.03" in turns[1]["answer"] or "27.03" in sources
    assert 'id="src-2-1"' in sources and 'id="src-1-1"' in sources  # both turns kept


def test_new_conversation_during_an_answer_is_not_overwritten(chat_app: ChatApp) -> None:
    request = _request(session="renewer")
    stream = chat_app.answer("What is direct preference optimization?", "extractive", 4, [],
                             request)
    next(stream)  # the question is on screen, the answer on its way
    assert chat_app.new_conversation(request)[0] == []
    rest = list(stream)
    assert not any(isinstance(out[3], list) for out in rest)  # the old turns never return


def test_feedback_is_appended_to_the_local_file(chat_app: ChatApp) -> None:
    turns = _run(chat_app, "What is direct preference optimization?")[-1][3]
    chat_app.rate(turns, gr.LikeData(None, {"index": 1, "value": "x", "liked": False}),
                  _request())
    lines = Path(chat_app.config.feedback_file).read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[-1])
    assert entry["rating"] == "down"
    assert entry["question"] == "What is direct preference optimization?"
    assert entry["citations"] and entry["mode"] == "extractive"


def test_stop_ends_generation(chat_app: ChatApp, model_path: Path) -> None:
    request = _request(session="stopper")
    stream = chat_app.answer("Summarise the AI progress of 2023 in detail.", "local", 4, [],
                             request)
    started = time.monotonic()
    for messages, _box, _sources, _turns in stream:
        text = messages[-1]["content"]
        if len(text) > 20 and not text.startswith(("🔎", "✍️")):  # tokens are arriving
            chat_app.stop(_request(session="someone-else"))  # another user's stop: ignored
            chat_app.stop(request)
            break
    rest = list(stream)
    assert time.monotonic() - started < 60
    final_turn = rest[-1][3][-1]
    assert final_turn["stopped"] is True and final_turn["final"] is True
    assert "⏹" in rest[-1][0][-1]["content"]


def _text(content: object) -> str:
    """A chat message's text: Gradio 6 clients receive a list of typed parts."""
    if isinstance(content, list):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part)
                       for part in content)
    return str(content)


@pytest.mark.slow
def test_app_answers_chinese_and_english_through_gradio_client(app_server) -> None:
    from gradio_client import Client

    for question, language, expected in (
            # Each about a source in the other language, so the model translates and
            # the answer streams (same-language answers are the quotes, in one piece).
            ("Mistral 7B在全部评测基准上都超过了Llama 2的哪个尺寸版本?", "zh-CN",
             ("13B", "130亿")),
            ("What was the acceptance rate at ICML 2024?", "en-US", ("27.03",))):
        client = Client(app_server.url, verbose=False, headers={"Accept-Language": language},
                        download_files=False)
        job = client.submit(question, "local", 4, api_name="/ask")
        updates = list(job)
        chats = [u[0] for u in updates if isinstance(u[0], list) and len(u[0]) == 2]
        answers = [_text(c[1]["content"]) for c in chats]
        # streamed: several distinct partial answers before the final one
        assert len(set(answers)) >= 3, answers
        final_chat, _, sources = job.outputs()[-1][:3]
        answer = _text(final_chat[1]["content"])
        assert _text(final_chat[0]["content"]) == question
        assert any(term.lower() in answer.lower() for term in expected), answer
        cited = sorted(set(re.findall(r'href="#src-1-(\d+)"', answer)))
        assert cited, answer
        for number in cited:  # every citation link has its card in the sources panel
            assert f'id="src-1-{number}"' in sources
        assert "<mark>" in sources
        if language == "zh-CN":
            assert "出处" in sources
    assert app_server.log_path.read_text().count("loading local model") == 1


@pytest.mark.slow
def test_concurrent_users_are_queued_and_each_gets_their_own_answer(app_server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    questions = [
        ("How many papers did CVPR 2023 accept?", "extractive", "2359"),
        ("Llama 2在透明度指数中得了多少分?", "extractive", "54"),
        ("Which city hosted ICML 2024?", "local", "维也纳|Vienna"),
        ("What GLUE score did BERT achieve?", "extractive", "80.5"),
        ("UniAudio是用多少小时的音频训练出来的?", "extractive", "165"),
        ("What new loss does DistiLLM introduce?", "local", "skew"),
        ("How many indicators does the transparency index use?", "extractive", "100"),
        ("What BLEU score did the original Transformer get on English-to-German?",
         "extractive", "28.4"),
    ]

    def ask(item: tuple[str, str, str]) -> tuple[str, list, str]:
        question, mode, _ = item
        client = Client(app_server.url, verbose=False, download_files=False)
        chat, _, sources = client.predict(question, mode, 4, api_name="/ask")[:3]
        return question, chat, sources

    with ThreadPoolExecutor(len(questions)) as pool:
        results = list(pool.map(ask, questions))
    for (question, chat, sources), (_, _, expected) in zip(results, questions):
        assert len(chat) == 2 and _text(chat[0]["content"]) == question  # no one else's turn
        answer = _text(chat[1]["content"])
        assert re.search(expected, answer + sources, re.I), (question, answer)
        assert 'class="cite"' in answer, answer
    assert app_server.log_path.read_text().count("loading local model") == 1


@pytest.mark.slow
def test_the_server_hands_out_no_files_outside_its_own_assets(app_server, corpus_assistant):
    """Sources are rendered from indexed passages only; no route reads arbitrary paths,
    not even the corpus or the index (whose manifest lists the user's file paths)."""
    import httpx

    manifest = next(corpus_assistant.config.index_dir.glob("gen-*/manifest.json"))
    corpus_file = next(corpus_assistant.config.corpus_dir.rglob("*.txt"))
    targets = ["/etc/passwd", str(manifest), str(corpus_file), "../../../../etc/passwd",
               "%2e%2e/%2e%2e/%2e%2e/etc/passwd"]
    with httpx.Client(base_url=app_server.url, timeout=30) as client:
        assert client.get("/").status_code == 200
        for target in targets:
            for route in ("/gradio_api/file=", "/file=", "/gradio_api/file/", "/static/"):
                response = client.get(route + target)
                assert response.status_code in (403, 404, 405), (route, target)
                assert "root:x:0:0" not in response.text and '"embedder"' not in response.text


def test_the_page_connects_each_component_to_its_handler(tmp_path: Path) -> None:
    """The layout and its events (ChatApp._build's steps), with the fake embedder: every
    handler is wired once, in order, to the components it reads and writes."""
    from fakes import tiny_assistant

    assistant = tiny_assistant(tmp_path)
    warmup = Warmup(assistant, load_llm=False).start()
    assert warmup.index_ready.wait(60)
    app = ChatApp(assistant, warmup)
    fns = list(app.blocks.fns.values())
    assert [f.fn.__name__ for f in fns] == [
        "load_example", "answer", "answer", "stop", "new_conversation", "rate", "status",
        "status", "upload", "upload_progress", "remove"]
    by_id = {block._id: getattr(block, "elem_id", None) for block in app.blocks.blocks.values()}

    def ids(blocks: list) -> list:
        return [by_id[b._id] for b in blocks]

    ask, send = fns[1], fns[2]
    assert ask.api_name == "ask" and ids(ask.inputs)[:3] == ["question", "mode", "top_k"]
    assert ids(ask.outputs)[:3] == ["chat", "question", "sources"]
    assert ids(send.inputs) == ids(ask.inputs) and ids(send.outputs) == ids(ask.outputs)
    assert ask.concurrency_limit is None
    assert ids(fns[4].outputs)[:3] == ["chat", "question", "sources"]  # new conversation
    assert ids(fns[6].outputs)[:1] == ["status"]  # start-up status, each tick and on load
    assert ids(fns[6].outputs) == ids(fns[7].outputs)
    assert ids(fns[10].outputs)[-1] == "status"  # removing a document updates the counts
    assert {"topbar", "chat", "question", "send", "stop", "mode", "top_k", "new_chat",
            "sources", "documents"} <= set(by_id.values())
