"""The web UI: a Gradio chat that streams cited answers and shows the passages behind them.

``python app.py`` or ``ai-digest-qa serve``. The page is served at once; the index is
built (or loaded) and the model warmed up in the background while the page shows the
progress. A question then goes through :meth:`Assistant.ask_stream`: the sources panel
fills as soon as retrieval is done, the answer streams in, and each ``[n]`` in it links
to its passage with the supporting sentence highlighted.

Gradio's chat component is used as is; what it lacks is wrapped here: a per-session stop
that ends llama.cpp generation at the next token and keeps the partial answer (Gradio's
``cancels`` would drop it), citation links that scroll to a card instead of opening a new
tab, and interface text that follows the browser's language (Gradio's ``I18n``).
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import gradio as gr
import numpy as np

from . import backends
from .answer import CITATION_MARKER
from .assistant import Assistant, QuestionError, validate_question
from .concurrency import AnswerSlots
from .config import Config
from .index import IndexStore
from .records import Answer, ChatTurn, Citation, CitationRecord, PassageRecord, Retrieval
from .textutils import detect_language, page_label
from .ui_documents import PANEL_LABELS, DocumentsPanel

log = logging.getLogger("ai_digest_qa.ui")

# --- interface text -------------------------------------------------------------------

# Static labels go through Gradio's I18n (translated in the browser from its locale);
# messages made on the server use the question's language, else the Accept-Language.
LABELS = {
    "en": {
        "heading": "## AI Digest QA\nAsk in Chinese or English about the AI digest articles "
                   "and the papers they cite. Every answer cites its sources.",
        "placeholder": "Ask a question, e.g. Which city hosted ICML 2024?",
        "send": "Send", "stop": "Stop", "new_chat": "New conversation",
        "mode": "Answer with", "top_k": "Passages per answer",
        "examples": "Example questions", "documents": "Indexed documents",
        "settings": "Settings", "chat": "Conversation",
        "chat_placeholder": "**Ask anything about the AI digests and their papers.**\n\n"
                            "Answers stream in; click a citation such as [1] to see the "
                            "passage it rests on.",
    },
    "zh": {
        "heading": "## AI 文摘问答\n用中文或英文提问,回答来自 AI 文摘文章及其引用的论文,"
                   "每个回答都标注出处。",
        "placeholder": "输入问题,例如:ICML 2024 在哪个城市举办?",
        "send": "发送", "stop": "停止", "new_chat": "新对话",
        "mode": "回答方式", "top_k": "每个回答使用的段落数",
        "examples": "示例问题", "documents": "已索引的文档",
        "settings": "设置", "chat": "对话",
        "chat_placeholder": "**关于 AI 文摘及其论文,尽管提问。**\n\n回答会逐字显示;"
                            "点击 [1] 这样的引用标记,即可查看它所依据的段落。",
    },
}
for _language, _labels in PANEL_LABELS.items():
    LABELS[_language].update(_labels)
I18N = gr.I18n(en=LABELS["en"], zh=LABELS["zh"], **{"zh-CN": LABELS["zh"],
                                                       "zh-TW": LABELS["zh"]})

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "indexing": "⏳ Building the index: {done}/{total} passages embedded…",
        "indexing_start": "⏳ Reading the corpus…",
        "loading_model": "⏳ Index ready ({docs} documents, {chunks} passages); "
                         "loading the language model…",
        "ready": "✅ Ready · {docs} documents · {chunks} passages",
        "index_failed": "⚠️ The index could not be built: {error}",
        "waiting_index": "⏳ Waiting for the index to be built ({progress})…",
        "searching": "🔎 Searching the sources…",
        "queued": "⏳ Other answers are being written; yours is in line…",
        "writing": "✍️ Found {n} passages; writing the answer…",
        "stopped": "⏹ Stopped.",
        "empty": "Please type a question first (Chinese or English).",
        "invalid": "⚠️ {error}",
        "failed": "⚠️ Something went wrong while answering ({error}). The server log has "
                  "the details; try again, or switch the answer mode to Extractive.",
        "no_sources": "Sources appear here as soon as a question has been searched.",
        "sources": "Sources",
        "turn": "Question {n}",
        "cited": "cited", "not_cited": "retrieved, not cited",
        "related": "related, not an answer",
        "chars": "characters {start}–{end}",
        "thanks_up": "Thanks! Saved as helpful.", "thanks_down": "Thanks! Saved as unhelpful.",
        "no_feedback": "Only answers can be rated.",
        "meta": "{llm} · {seconds:.1f} s",
    },
    "zh": {
        "indexing": "⏳ 正在建立索引:已嵌入 {done}/{total} 个段落…",
        "indexing_start": "⏳ 正在读取语料…",
        "loading_model": "⏳ 索引已就绪({docs} 篇文档,{chunks} 个段落),正在加载语言模型…",
        "ready": "✅ 已就绪 · {docs} 篇文档 · {chunks} 个段落",
        "index_failed": "⚠️ 无法建立索引:{error}",
        "waiting_index": "⏳ 正在等待索引建立({progress})…",
        "searching": "🔎 正在检索资料…",
        "queued": "⏳ 正在生成其他回答,您的问题正在排队…",
        "writing": "✍️ 找到 {n} 个段落,正在生成回答…",
        "stopped": "⏹ 已停止。",
        "empty": "请先输入问题(中文或英文)。",
        "invalid": "⚠️ {error}",
        "failed": "⚠️ 回答时出错({error})。详细信息见服务器日志;请重试,或把回答方式切换为"
                  "“摘录”。",
        "no_sources": "提问并检索后,出处会显示在这里。",
        "sources": "出处",
        "turn": "第 {n} 个问题",
        "cited": "已引用", "not_cited": "检索到,未引用",
        "related": "相关,但不是答案",
        "chars": "第 {start}–{end} 个字符",
        "thanks_up": "谢谢!已记为有帮助。", "thanks_down": "谢谢!已记为没有帮助。",
        "no_feedback": "只能评价回答。",
        "meta": "{llm} · {seconds:.1f} 秒",
    },
}
MODES = [(backend.label, backend.name) for backend in backends.of_kind("llm")]

EXAMPLES = [
    "斯坦福的大模型透明度指数里,排名第一的模型得了多少分?",
    "Fuyu-8B 处理图片时为什么不需要额外的图像编码器?",
    "什么是直接偏好优化(DPO)?",
    "Which city hosted ICML 2024?",
    "What alignment method was used to train Zephyr-7B?",
    "How long was Claude 2's context window?",
]


def request_language(request: gr.Request | None) -> str:
    """The browser's preferred language of ours ("zh" or "en")."""
    accept = ""
    if request is not None and request.headers is not None:
        accept = request.headers.get("accept-language", "") or ""
    first = accept.split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


# --- rendering ------------------------------------------------------------------------

def link_citations(text: str, turn: int, passages: int) -> str:
    """Markdown with each valid ``[n]`` turned into a link to source card ``n`` of ``turn``."""
    def link(match: re.Match[str]) -> str:
        number = int(match.group(1))
        if not 1 <= number <= passages:
            return match.group(0)
        return f'<a class="cite" href="#src-{turn}-{number}">[{number}]</a>'
    return CITATION_MARKER.sub(link, text)


def render_answer(turn: int, record: ChatTurn) -> str:
    """The assistant message of one turn: answer text with linked citations and a footer."""
    if record.get("error"):
        return record["answer"]
    text = link_citations(record["answer"], turn, len(record["passages"]))
    if record.get("stopped"):
        text += "\n\n" + MESSAGES[record["language"]]["stopped"]
    note = record.get("note")
    if note:  # e.g. uploads were still being indexed
        text += f"\n\n*{html.escape(note)}*"
    if record.get("final"):
        meta = MESSAGES[record["language"]]["meta"].format(
            llm=record.get("llm", ""), seconds=record.get("seconds", 0.0))
        text += f'\n\n<span class="answer-meta">{html.escape(meta)}</span>'
    return text


def chat_messages(turns: list[ChatTurn]) -> list[dict[str, str]]:
    """The Chatbot value for ``turns``: a user and an assistant message per turn."""
    messages = []
    for number, record in enumerate(turns, start=1):
        messages.append({"role": "user", "content": record["question"] or "…"})
        messages.append({"role": "assistant", "content": render_answer(number, record)})
    return messages


def _highlighted(text: str, span: list[int] | tuple[int, int] | None) -> str:
    if not span:
        return html.escape(text)
    start, end = span
    return (html.escape(text[:start]) + "<mark>" + html.escape(text[start:end]) + "</mark>"
            + html.escape(text[end:]))


def render_source_card(turn: int, number: int, passage: PassageRecord,
                       citation: CitationRecord | None, language: str,
                       abstained: bool = False) -> str:
    """One passage's card; an abstention's passages are labelled related, not answers."""
    words = MESSAGES[language]
    url = str(passage.get("url") or "")
    if urlsplit(url).scheme in ("http", "https"):  # never a javascript: or data: link
        location = (f'<a href="{html.escape(url)}" target="_blank" '
                    f'rel="noopener noreferrer">{html.escape(url)}</a>')
    else:
        location = f'<code>{html.escape(url or str(passage["source"]))}</code>'
    language_badge = html.escape(str(passage.get("language", "")))
    # .get: records kept by an older page (and tests' partial ones) may lack a key.
    section_name = passage.get("section")
    section = f" · {html.escape(section_name)}" if section_name else ""
    # The page the cited quote starts on, else the passage's page range ("p. 7–8").
    pages = passage.get("pages")
    page = (page_label(citation["page"]) if citation and citation.get("page")
            else page_label(*pages) if pages else "")
    page = f' · <span class="src-page">{html.escape(page)}</span>' if page else ""
    status = words["cited"] if citation else words["related" if abstained else "not_cited"]
    classes = "src-card cited" if citation else "src-card"
    span = citation["span"] if citation else None
    return (
        f'<div class="{classes}" id="src-{turn}-{number}">'
        f'<div class="src-head"><span class="src-num">[{number}]</span> '
        f'<span class="src-title">{html.escape(str(passage["title"]))}</span></div>'
        f'<div class="src-loc"><span class="src-badge">{language_badge}</span>'
        f'<span class="src-badge src-status">{status}</span> {location}{section}{page} · '
        f'{words["chars"].format(start=passage["start"], end=passage["end"])}</div>'
        f'<div class="src-text">{_highlighted(passage["text"], span)}'
        f"</div></div>"
    )


def render_sources(turns: list[ChatTurn], ui_language: str) -> str:
    """All turns' sources, newest first and open; older turns folded."""
    shown = [(n, t) for n, t in enumerate(turns, start=1) if t.get("passages")]
    if not shown:
        return (f'<div id="sources-panel"><h3>{MESSAGES[ui_language]["sources"]}</h3>'
                f'<p class="src-empty">{MESSAGES[ui_language]["no_sources"]}</p></div>')
    parts = [f'<div id="sources-panel"><h3>{MESSAGES[ui_language]["sources"]}</h3>']
    for position, (number, record) in enumerate(reversed(shown)):
        language = record["language"]
        cited = {c["number"]: c for c in record.get("citations", [])}
        cards = "".join(render_source_card(number, i, p, cited.get(i), language,
                                           bool(record.get("abstained")))
                        for i, p in enumerate(record["passages"], start=1))
        title = (f'{MESSAGES[language]["turn"].format(n=number)}: '
                 f'{html.escape(record["question"][:80])}')
        parts.append(f'<details class="src-turn" {"open" if position == 0 else ""}>'
                     f"<summary>{title}</summary>{cards}</details>")
    parts.append("</div>")
    return "".join(parts)


def _invalid_turn(question: object, error: QuestionError, ui_language: str) -> ChatTurn:
    text = (MESSAGES[ui_language]["empty"] if not str(question or "").strip()
            else MESSAGES[ui_language]["invalid"].format(error=error))
    return {"question": str(question or "")[:200], "answer": text, "language": ui_language,
            "passages": [], "error": True}


def _citation_record(citation: Citation) -> CitationRecord:
    return {"number": int(citation.marker[1:-1]), "chunk_id": citation.passage.chunk_id,
            "span": list(citation.span) if citation.span else None, "page": citation.page}


# --- background start-up ----------------------------------------------------------------


class Warmup:
    """Builds or loads the index, then loads the configured LLM, in a background thread,
    so the page is usable (and shows progress) from the first second."""

    def __init__(self, assistant: Assistant, load_llm: bool = True) -> None:
        self.assistant = assistant
        self.load_llm = load_llm
        self.index_ready = threading.Event()
        self.phase = "indexing"  # indexing -> loading_model -> ready, or failed
        self.done = 0
        self.total = 0
        self.error: str | None = None
        self.store: IndexStore | None = None  # set once the index is ready
        self._thread = threading.Thread(target=self._run, name="ui-warmup", daemon=True)

    def start(self) -> Warmup:
        self._thread.start()
        return self

    def _progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def _run(self) -> None:
        try:
            self.assistant.ensure_index(progress=self._progress)
            self.assistant.retriever  # noqa: B018 - load the retriever before the first user
            bridge = self.assistant.bridge
            if bridge is not None:  # its reference embeddings: seconds on a new machine
                bridge.references()
            self.store = self.assistant.store
            # A large store builds its approximate index on the first search: do it now.
            self.store.dense_search(np.zeros(self.store.manifest.dimension, np.float32), 1)
        except Exception as exc:  # noqa: BLE001 - shown on the page, logged in full
            log.exception("building the index failed")
            self.error = str(exc) or type(exc).__name__
            self.phase = "failed"
            self.index_ready.set()
            return
        self.index_ready.set()
        self.phase = "loading_model"
        if self.load_llm:
            try:
                self.assistant.llm()
            except Exception as exc:  # noqa: BLE001 - answers fall back and say why
                log.warning("the configured LLM is not available: %s", exc)
        self.phase = "ready"
        docs, chunks = self.counts()
        log.info("UI ready: %d documents, %d passages indexed", docs, chunks)

    def not_ready(self) -> str | None:
        """Why questions cannot be answered yet (for the API's 503), or None."""
        if self.phase == "failed":
            return f"The index could not be built: {self.error}"
        if not self.index_ready.is_set():
            return (f"The index is being built ({self.done}/{self.total or '?'} passages "
                    "embedded); retry in a moment.")
        return None

    def counts(self) -> tuple[int, int]:
        # The assistant's current store (uploads change it), once the warm-up has one.
        store = self.assistant.store if self.store is not None else None
        return (len(store.documents), len(store.chunks)) if store else (0, 0)

    def status(self, language: str) -> str:
        words = MESSAGES[language]
        if self.phase == "failed":
            return words["index_failed"].format(error=self.error)
        if self.phase == "indexing":
            if not self.total:
                return words["indexing_start"]
            return words["indexing"].format(done=self.done, total=self.total)
        docs, chunks = self.counts()
        key = "loading_model" if self.phase == "loading_model" else "ready"
        return words[key].format(docs=docs, chunks=chunks)


# --- feedback ---------------------------------------------------------------------------


class FeedbackLog:
    """Thumbs up/down, appended as JSON lines to a local file (one writer at a time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)


# --- the app ----------------------------------------------------------------------------


CSS = """
#topbar { align-items: center; }
#status { text-align: right; opacity: 0.85; }
#chat .answer-meta { font-size: 0.8em; opacity: 0.6; }
#chat a.cite { text-decoration: none; font-weight: 600; padding: 0 1px;
  border-radius: 4px; background: var(--color-accent-soft); }
#sources-panel { max-height: 640px; overflow-y: auto; padding-right: 4px; }
#sources-panel h3 { margin: 0 0 8px 0; }
.src-turn > summary { cursor: pointer; font-weight: 600; margin: 6px 0; }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: 8px 10px; margin: 8px 0; opacity: 0.75; transition: box-shadow 0.3s; }
.src-card.cited { opacity: 1; border-color: var(--color-accent); }
.src-card.active { box-shadow: 0 0 0 3px var(--color-accent); opacity: 1; }
.src-head { display: flex; gap: 6px; align-items: baseline; flex-wrap: wrap; }
.src-num { font-weight: 700; color: var(--color-accent); }
.src-title { font-weight: 600; flex: 1 1 auto; }
.src-badge { font-size: 0.9em; border-radius: 4px; padding: 0 5px; margin-right: 4px;
  background: var(--background-fill-secondary); }
.src-card.cited .src-status { background: var(--color-accent-soft); }
.src-loc { font-size: 0.8em; opacity: 0.75; margin: 2px 0 6px 0; word-break: break-all; }
.src-text { font-size: 0.9em; white-space: pre-wrap; line-height: 1.5; }
.src-text mark { background: #fde68a; color: #111; border-radius: 3px; padding: 0 1px; }
.src-empty { opacity: 0.7; }
"""

# Citation links scroll to their card (opening an older turn's folded sources) instead
# of following the link; capture phase, so the chat's own link handling never sees it.
HEAD = """
<script>
document.addEventListener("click", function (event) {
  const link = event.target.closest ? event.target.closest("a.cite") : null;
  if (!link) { return; }
  event.preventDefault();
  event.stopPropagation();
  const card = document.getElementById(link.getAttribute("href").slice(1));
  if (!card) { return; }
  const folded = card.closest("details");
  if (folded) { folded.open = true; }
  document.querySelectorAll(".src-card.active").forEach(function (el) {
    el.classList.remove("active");
  });
  card.classList.add("active");
  card.scrollIntoView({behavior: "smooth", block: "center"});
}, true);
</script>
"""

THEME = gr.themes.Soft(
    primary_hue="indigo",
    # System fonts: the default theme loads Google Fonts, which an offline browser cannot.
    font=["system-ui", "-apple-system", "Segoe UI", "Noto Sans CJK SC", "PingFang SC",
          "Microsoft YaHei", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
)


def page_options(config: Config) -> dict[str, Any]:
    """How the page is served, the same through Gradio's launcher and mounted on the
    API's app: its look, its login (``ui_auth`` is "user:password"), no tracebacks."""
    user, _, password = config.ui_auth.partition(":")
    return dict(auth=(user, password) if config.ui_auth else None, show_error=False,
                ssr_mode=False, theme=THEME, css=CSS, head=HEAD, i18n=I18N,
                footer_links=["api", "settings"])


def serving_app(assistant: Assistant, slots: AnswerSlots | None = None) -> ChatApp:
    """The page for ``assistant``, warming up in the background, its queue set."""
    config = assistant.config
    generates = backends.has("llm", config.llm_backend, backends.GENERATES)
    warmup = Warmup(assistant, load_llm=generates).start()
    chat = ChatApp(assistant, warmup, slots)
    chat.blocks.queue(max_size=config.ui_queue_size,
                      default_concurrency_limit=config.ui_concurrency)
    return chat


class _Chat(NamedTuple):
    """The chat column's components."""

    chatbot: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    stop: gr.Button
    mode: gr.Radio
    top_k: gr.Slider
    new_chat: gr.Button


class _Page(NamedTuple):
    """The components the page's events read and write."""

    turns: gr.State
    status: gr.Markdown
    chat: _Chat
    sources: gr.HTML
    panel: dict[str, Any]  # DocumentsPanel.build's components, by name
    timer: gr.Timer  # start-up status and document list
    upload_timer: gr.Timer  # upload progress, active while uploads are indexed


class ChatApp:
    """The Gradio Blocks of the assistant and the handlers behind them."""

    def __init__(self, assistant: Assistant, warmup: Warmup | None = None,
                 slots: AnswerSlots | None = None) -> None:
        """``slots`` are the answer slots shared with the API (server.py); without them
        the page has its own."""
        self.assistant = assistant
        self.config = assistant.config
        self.root = self.config.corpus_dir.parent
        self.warmup = warmup or Warmup(assistant, load_llm=False).start()
        assert self.config.feedback_file is not None  # Config.__post_init__ sets it
        self.feedback = FeedbackLog(self.config.feedback_file)
        self.slots = slots or AnswerSlots(self.config.ui_concurrency, self.config.ui_queue_size)
        self._cancels: dict[str, threading.Event] = {}
        # Bumped by "New conversation": a running answer of an older conversation then
        # stops drawing, instead of writing the cleared chat back.
        self._epochs: dict[str, int] = {}
        self._cancels_lock = threading.Lock()
        self.documents = DocumentsPanel(
            assistant, lambda: assistant.store if self.warmup.store is not None else None)
        self.blocks = self._build()

    # -- handlers --

    def answer(self, question: str, mode: str, top_k: float, turns: list[ChatTurn],
               request: gr.Request) -> Iterator[tuple[Any, Any, Any, Any]]:
        """Stream one answer: (chat messages, question box, sources HTML, turns)."""
        ui_language = request_language(request)
        turns = list(turns or [])
        session = request.session_hash or ""
        with self._cancels_lock:  # before the first yield: a click may come right after it
            epoch = self._epochs.get(session, 0)
            cancel = self._cancels[session] = threading.Event()
        try:
            cleaned = validate_question(question, self.config.max_question_chars)
        except QuestionError as exc:
            turns.append(_invalid_turn(question, exc, ui_language))
            self._forget(session, cancel)
            yield chat_messages(turns), gr.skip(), gr.skip(), turns
            return
        language = detect_language(cleaned)
        history = [(t["question"], t["answer"]) for t in turns if not t.get("error")]
        record: ChatTurn = {"question": cleaned, "answer": MESSAGES[language]["searching"],
                            "language": language, "passages": [], "mode": mode}
        turns.append(record)
        yield chat_messages(turns), "", render_sources(turns, ui_language), turns

        def current() -> bool:
            return self._epochs.get(session, 0) == epoch

        try:
            passages_per_answer = min(max(int(top_k or 0), 1), 10)  # callers send anything
            yield from self._stream(record, turns, ui_language, cancel, current, dict(
                history=history, top_k=passages_per_answer, llm=mode))
        except Exception as exc:  # noqa: BLE001 - a readable message, never a traceback
            log.exception("answering %r failed", cleaned)
            record.update({"error": True, "answer": MESSAGES[language]["failed"].format(
                error=f"{type(exc).__name__}: {exc}")})
        finally:
            self._forget(session, cancel)
        if current():
            yield chat_messages(turns), gr.skip(), render_sources(turns, ui_language), turns

    def _forget(self, session: str, cancel: threading.Event) -> None:
        with self._cancels_lock:
            if self._cancels.get(session) is cancel:
                del self._cancels[session]

    def _wait_for_index(self, record: ChatTurn, turns: list[ChatTurn],
                        cancel: threading.Event) -> Iterator[tuple[Any, Any, Any, Any]]:
        words = MESSAGES[record["language"]]
        while not self.warmup.index_ready.wait(0.5) and not cancel.is_set():
            record["answer"] = words["waiting_index"].format(
                progress=f"{self.warmup.done}/{self.warmup.total or '?'}")
            yield chat_messages(turns), gr.skip(), gr.skip(), gr.skip()
        if self.warmup.phase == "failed":  # say so; do not retry the build per question
            raise RuntimeError(self.warmup.error or "the index could not be built")
        if self.slots.active >= self.slots.limit:  # another answer (page or API) is running
            record["answer"] = words["queued"]
            yield chat_messages(turns), gr.skip(), gr.skip(), gr.skip()

    def _stream(self, record: ChatTurn, turns: list[ChatTurn], ui_language: str,
                cancel: threading.Event, current: Callable[[], bool], options: dict[str, Any]
                ) -> Iterator[tuple[Any, Any, Any, Any]]:
        """The answer into ``record`` as it comes: sources first, then the text."""
        yield from self._wait_for_index(record, turns, cancel)
        words = MESSAGES[record["language"]]
        pieces: list[str] = []
        last_yield = 0.0
        with self.slots.hold(cancel) as held:  # the answer slots the API shares
            if not held:  # stopped while waiting
                record.update({"answer": words["stopped"], "final": True})
                return
            items = self.assistant.ask_stream(record["question"], cancel=cancel,
                                              include_retrieval=True, **options)
            # closing(): leaving early (stop, new conversation, a closed page) ends the
            # LLM's generation at once, not when the generator is garbage-collected.
            with closing(items):
                for item in items:
                    if not current():
                        cancel.set()
                        return
                    if isinstance(item, Retrieval):
                        record["passages"] = [p.to_record(self.root)
                                              for p in item.passages]
                        record["answer"] = words["writing"].format(n=len(item.passages))
                        yield (chat_messages(turns), gr.skip(),
                               render_sources(turns, ui_language), gr.skip())
                    elif isinstance(item, Answer):
                        self._finish(record, item)
                    else:
                        pieces.append(item)
                        record["answer"] = "".join(pieces)
                        now = time.monotonic()
                        if now - last_yield > 0.08:  # ~12 updates/s are smooth and cheap
                            last_yield = now
                            yield chat_messages(turns), gr.skip(), gr.skip(), gr.skip()

    def _finish(self, record: ChatTurn, answer: Answer) -> None:
        record.update({
            "answer": answer.text, "final": True, "llm": answer.llm,
            "answer_mode": answer.mode, "seconds": answer.timings.get("total", 0.0),
            "abstained": answer.abstained, "stopped": answer.notice == "stopped",
            "notice": answer.notice,
            "passages": [p.to_record(self.root) for p in answer.passages],
            "citations": [_citation_record(c) for c in answer.citations],
            "note": self.documents.answer_note(record["language"])})

    def stop(self, request: gr.Request) -> None:
        with self._cancels_lock:
            cancel = self._cancels.get(request.session_hash or "")
        if cancel is not None:
            cancel.set()

    def new_conversation(self, request: gr.Request) -> tuple[Any, Any, Any, Any]:
        with self._cancels_lock:
            session = request.session_hash or ""
            self._epochs[session] = self._epochs.get(session, 0) + 1
        self.stop(request)
        return [], "", render_sources([], request_language(request)), []

    def rate(self, turns: list[ChatTurn], like: gr.LikeData,
             request: gr.Request) -> None:
        ui_language = request_language(request)
        index = like.index if isinstance(like.index, int) else like.index[0]
        turn = index // 2
        if index % 2 == 0 or not 0 <= turn < len(turns) or turns[turn].get("error"):
            gr.Info(MESSAGES[ui_language]["no_feedback"])
            return
        record = turns[turn]
        liked = like.liked if isinstance(like.liked, bool) else like.liked == "Like"
        self.feedback.record({
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rating": "up" if liked else "down",
            "question": record["question"], "answer": record["answer"],
            "language": record["language"], "mode": record.get("mode"),
            "llm": record.get("llm"),
            "citations": [c["chunk_id"] for c in record.get("citations", [])],
            "passages": [p["chunk_id"] for p in record.get("passages", [])],
        })
        gr.Info(MESSAGES[record["language"]]["thanks_up" if liked else "thanks_down"])

    def status(self, request: gr.Request) -> tuple[Any, ...]:
        """Start-up progress, the document list and remove choices, and the poll timer
        (off once ready)."""
        language = request_language(request)
        text = self.warmup.status(language)
        settled = self.warmup.phase in ("ready", "failed")
        return (text, self.documents.rows(language), self.documents.removable(),
                gr.Timer(active=not settled))

    def upload(self, files: list[Any] | None, request: gr.Request) -> tuple[Any, ...]:
        """Check and queue uploaded files: (progress, upload box, poll timer)."""
        return self.documents.upload(files, request_language(request))

    def upload_progress(self, request: gr.Request) -> tuple[Any, ...]:
        """Per-file progress, the document list and counts, the remove choices, the
        timer (off when the uploads are indexed)."""
        language = request_language(request)
        running = self.documents.uploads.job.running
        return (self.documents.progress(language), self.documents.rows(language),
                self.documents.removable(), self.warmup.status(language),
                gr.Timer(active=running))

    def remove(self, doc_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        language = request_language(request)
        message = self.documents.remove(doc_id, language)
        return (message, self.documents.rows(language), self.documents.removable(),
                self.warmup.status(language))

    # -- layout --

    def _build(self) -> gr.Blocks:
        """The page: its components (:meth:`_layout`), then the events that connect them
        to the handlers, in the order Gradio numbers them."""
        with gr.Blocks(title="AI Digest QA · AI 文摘问答") as blocks:
            page = self._layout()
            self._wire_chat(page)
            self._wire_status(blocks, page)
            self._wire_documents(page)
        return blocks

    def _layout(self) -> _Page:
        """Top bar; the chat column (chat, question, settings) beside the sources and
        the documents panel; the two poll timers."""
        turns = gr.State([])
        with gr.Row(elem_id="topbar"):
            gr.Markdown(I18N("heading"))
            status = gr.Markdown(self.warmup.status("en"), elem_id="status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chat = self._chat_column()
            with gr.Column(scale=2):
                sources = gr.HTML(render_sources([], "en"), elem_id="sources")
                with gr.Accordion(I18N("documents"), open=False):
                    panel = self.documents.build(I18N)
        timer = gr.Timer(1.0)
        upload_timer = gr.Timer(1.0, active=False)
        return _Page(turns, status, chat, sources, panel, timer, upload_timer)

    def _chat_column(self) -> _Chat:
        config = self.config
        chatbot = gr.Chatbot(
            elem_id="chat", label=I18N("chat"), height=520, buttons=["copy"],
            latex_delimiters=[], feedback_options=("Like", "Dislike"),
            group_consecutive_messages=False,
            # Gradio translates I18nData here too; its hint says only str.
            placeholder=I18N("chat_placeholder"))  # type: ignore[arg-type]
        with gr.Row():
            question = gr.Textbox(
                elem_id="question", placeholder=I18N("placeholder"),
                show_label=False, lines=1, max_lines=6, scale=6, autofocus=True)
            send = gr.Button(I18N("send"), variant="primary", scale=1,
                             elem_id="send", min_width=80)
            stop = gr.Button(I18N("stop"), variant="stop", scale=1, elem_id="stop",
                             min_width=80)
        gr.Examples(EXAMPLES, inputs=[question], label=I18N("examples"))
        with gr.Accordion(I18N("settings"), open=False):
            with gr.Row():
                mode = gr.Radio(MODES, value=config.llm_backend, label=I18N("mode"),
                                elem_id="mode", scale=3)
                top_k = gr.Slider(1, 10, value=config.answer_top_k, step=1,
                                  label=I18N("top_k"), elem_id="top_k", scale=2)
        new_chat = gr.Button(I18N("new_chat"), size="sm", elem_id="new_chat")
        return _Chat(chatbot, question, send, stop, mode, top_k, new_chat)

    def _wire_chat(self, page: _Page) -> None:
        """Asking (Enter or Send), stopping, a new conversation, and ratings."""
        chat = page.chat
        answer: dict[str, Any] = dict(
            fn=self.answer, inputs=[chat.question, chat.mode, chat.top_k, page.turns],
            outputs=[chat.chatbot, chat.question, page.sources, page.turns],
            # No limit here: the answer slots (shared with the API and MCP) are the
            # limit, and all wait there in arrival order. A limit here would keep a
            # page user in Gradio's queue while later API requests take tickets.
            concurrency_limit=None,
            show_progress="hidden")
        # Undocumented: gradio_client still calls /ask, but MCP lists only the tools
        # made for it (server.py), not this chat handler with its page state.
        chat.question.submit(**answer, api_name="ask", api_visibility="undocumented")
        chat.send.click(**answer, api_visibility="private")
        chat.stop.click(self.stop, None, None, queue=False, api_visibility="private")
        chat.new_chat.click(self.new_conversation, None,
                            [chat.chatbot, chat.question, page.sources, page.turns],
                            queue=False, api_visibility="private")
        chat.chatbot.like(self.rate, [page.turns], None, queue=False,
                          api_visibility="private")

    def _wire_status(self, blocks: gr.Blocks, page: _Page) -> None:
        """Start-up progress and the document list: on load, then every second until
        ready."""
        panel = page.panel
        listing = [page.status, panel["table"], panel["choice"], page.timer]
        page.timer.tick(self.status, None, listing, api_visibility="private",
                        show_progress="hidden")
        blocks.load(self.status, None, listing, api_visibility="private")

    def _wire_documents(self, page: _Page) -> None:
        """Uploading (with its progress timer) and removing documents."""
        panel, upload_timer = page.panel, page.upload_timer
        panel["files"].upload(self.upload, [panel["files"]],
                              [panel["status"], panel["files"], upload_timer],
                              api_visibility="private", show_progress="hidden")
        upload_timer.tick(self.upload_progress, None,
                          [panel["status"], panel["table"], panel["choice"], page.status,
                           upload_timer],
                          api_visibility="private", show_progress="hidden")
        panel["remove"].click(self.remove, [panel["choice"]],
                              [panel["status"], panel["table"], panel["choice"],
                               page.status],
                              api_visibility="private")
