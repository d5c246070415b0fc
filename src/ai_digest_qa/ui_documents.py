"""The page's "Documents" panel: every indexed document, uploads with per-file progress,
and removal of uploaded documents (the seed corpus is not removable from the page).

The checks, the saving and the background indexing are :class:`uploads.Uploads`; this
module only turns them into Gradio components and text in the user's language.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import gradio as gr

from .assistant import Assistant
from .config import is_loopback
from .records import Document, display_path
from .uploads import UPLOAD_SUFFIXES, FileOutcome, Uploads

log = logging.getLogger("ai_digest_qa.ui")

PANEL_LABELS = {
    "en": {"upload": "Add documents (PDF, Word, Markdown, text, HTML, JSONL)",
           "remove_choice": "Uploaded document to remove", "remove": "Remove"},
    "zh": {"upload": "添加文档(PDF、Word、Markdown、文本、HTML、JSONL)",
           "remove_choice": "要删除的上传文档", "remove": "删除"},
}
PANEL_MESSAGES = {
    "en": {
        "progress": "⏳ Indexing uploads: {done}/{total} files, {embedded}/{to_embed} "
                    "passages of {name} embedded…",
        "queued_only": "⏳ Indexing uploads: {done}/{total} files…",
        "indexed": "✅ {name}: indexed, {passages} passages",
        "rejected": "⚠️ {name}: not added, {reason}",
        "skipped": "⚠️ {name}: not indexed, {reason}",
        "removed": "🗑 Removed {name}: its passages are no longer searched or cited.",
        "remove_failed": "⚠️ Not removed: {reason}",
        "nothing": "Choose an uploaded document first.",
        "disabled": "Uploads are off: this page is reachable beyond this computer without "
                    "a login. Start it with --auth user:password to allow uploads.",
        "note": "Documents are still being indexed; this answer uses the index as it "
                "stands.",
    },
    "zh": {
        "progress": "⏳ 正在索引上传的文件:{done}/{total} 个文件,{name} 已嵌入 "
                    "{embedded}/{to_embed} 个段落…",
        "queued_only": "⏳ 正在索引上传的文件:{done}/{total} 个文件…",
        "indexed": "✅ {name}:已索引,{passages} 个段落",
        "rejected": "⚠️ {name}:未添加,{reason}",
        "skipped": "⚠️ {name}:未能索引,{reason}",
        "removed": "🗑 已删除 {name}:它的段落不再被检索或引用。",
        "remove_failed": "⚠️ 未删除:{reason}",
        "nothing": "请先选择一个上传的文档。",
        "disabled": "上传已关闭:本页面可从其他计算机访问,但没有设置登录。"
                    "请用 --auth 用户名:密码 启动以允许上传。",
        "note": "文档仍在索引中;本回答使用的是当前的索引。",
    },
}
# The document table's headers.
COLUMNS = {
    "en": ["Title", "File", "Kind", "Language", "Pages", "Passages", "Added"],
    "zh": ["标题", "文件", "类型", "语言", "页数", "段落数", "添加时间"],
}


def uploads_allowed(host: str, auth: str, share: bool = False) -> bool:
    """Uploads on loopback, or beyond it (or on a share link) with a login: anyone who
    reaches an open page could otherwise fill the disk and the index."""
    return bool(auth) or (is_loopback(host) and not share)


class DocumentsPanel:
    """The documents table, the upload box and the remove control of one page."""

    def __init__(self, assistant: Assistant, store_ready: Any) -> None:
        """``store_ready()`` is the index once the start-up has loaded it, else None."""
        self.assistant = assistant
        config = assistant.config
        self.root = config.corpus_dir.parent
        self.store_ready = store_ready
        self.uploads = Uploads(assistant)
        self.enabled = uploads_allowed(config.ui_host, config.ui_auth, config.ui_share)
        self._removed: dict[str, str] = {}  # session -> the last removal's message

    # -- what the page shows --

    def rows(self, language: str) -> Any:
        store = self.store_ready()
        if store is None:
            return gr.skip()
        documents = sorted(store.documents.values(), key=lambda d: d.doc_id)
        counts = Counter(record.chunk.doc_id for record in store.chunks.values())
        rows = [self._row(d, counts.get(d.doc_id, 0)) for d in documents]
        return gr.Dataframe(value=rows, headers=COLUMNS[language])

    def _row(self, document: Document, passages: int) -> list[Any]:
        path = Path(document.source)
        try:
            added = dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        except OSError:
            added = ""
        pages = len(document.page_starts) if document.page_starts else ""
        return [document.title, document.url or display_path(document.source, self.root),
                document.kind, document.language, pages, passages, added]

    def removable(self) -> Any:
        """The remove control's choices: uploaded documents only."""
        store = self.store_ready()
        if store is None:
            return gr.skip()
        uploaded = [d for d in store.documents.values() if self.uploads.is_upload(d)]
        choices = [(f"{d.title} ({Path(d.source).name})", d.doc_id)
                   for d in sorted(uploaded, key=lambda d: d.title)]
        return gr.update(choices=choices)  # the choices only: a selection stays

    def progress(self, language: str) -> str:
        words = PANEL_MESSAGES[language]
        if not self.enabled:
            return words["disabled"]
        job = self.uploads.job
        lines = [self._outcome(words, f) for f in job.files if f.status not in
                 ("queued", "indexing")]
        if job.running:
            current = next((f for f in job.files if f.status == "indexing"), None)
            values = dict(done=job.finished, total=len(job.files))
            head = (words["progress"].format(name=current.name, embedded=job.embedded,
                                             to_embed=job.to_embed or "?", **values)
                    if current else words["queued_only"].format(**values))
            lines.insert(0, head)
        return "\n\n".join(lines)

    @staticmethod
    def _outcome(words: dict[str, str], outcome: FileOutcome) -> str:
        key = outcome.status if outcome.status in ("indexed", "rejected") else "skipped"
        return words[key].format(name=outcome.name, reason=outcome.reason,
                                 passages=outcome.passages)

    def answer_note(self, language: str) -> str | None:
        """A line for answers given while uploads are being indexed."""
        return PANEL_MESSAGES[language]["note"] if self.uploads.job.running else None

    # -- handlers --

    def upload(self, files: list[Any] | None, language: str) -> tuple[Any, ...]:
        """(progress text, upload box cleared, poll timer on)."""
        if not self.enabled:
            return PANEL_MESSAGES[language]["disabled"], None, gr.Timer(active=False)
        given = []
        for item in files or []:
            path = Path(getattr(item, "name", None) or str(item))
            # Gradio keeps the browser's file name as the temporary file's name.
            given.append((getattr(item, "orig_name", None) or path.name, path))
        if given:
            self.uploads.add(given)
        return self.progress(language), None, gr.Timer(active=True)

    def remove(self, doc_id: str | None, language: str) -> str:
        words = PANEL_MESSAGES[language]
        if not self.enabled:
            return words["disabled"]
        if not doc_id:
            return words["nothing"]
        try:
            name = self.uploads.remove(doc_id)
        except ValueError as exc:
            return words["remove_failed"].format(reason=exc)
        log.info("removed the uploaded document %s", name)
        return words["removed"].format(name=name)

    def build(self, labels: Any) -> dict[str, Any]:
        """The panel's components (inside the caller's accordion)."""
        table = gr.Dataframe(headers=COLUMNS["en"], interactive=False, wrap=True,
                             elem_id="documents")
        files = gr.File(label=labels("upload"), file_count="multiple",
                        file_types=list(UPLOAD_SUFFIXES), elem_id="upload",
                        interactive=self.enabled)
        status = gr.Markdown(elem_id="upload_status")
        with gr.Row():
            choice = gr.Dropdown(label=labels("remove_choice"), choices=[],
                                 elem_id="remove_choice", scale=3, interactive=self.enabled)
            remove = gr.Button(labels("remove"), variant="secondary", size="sm",
                               elem_id="remove", scale=1, interactive=self.enabled)
        return dict(table=table, files=files, status=status, choice=choice, remove=remove)
