"""One server, one port: the web UI, the OpenAI-compatible API and the MCP tools.

``python app.py`` / ``ai-digest-qa serve``. A FastAPI app takes ``/v1/...`` (api.py);
Gradio is mounted on the rest, with its MCP server at ``/gradio_api/mcp/`` exposing the
``search`` and ``ask`` tools. uvicorn serves the lot. Gradio's own ``launch()`` cannot
carry routes of ours, so it is used only when the API is off (it alone makes share links).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request

from .api import (
    MODEL_ID,
    ApiError,
    ApiService,
    ChatRequest,
    add_api,
    error_response,
    source_records,
)
from .assistant import Assistant
from .concurrency import AnswerSlots, ServerBusy
from .config import Config, ConfigError, is_loopback, load_config
from .records import Answer

log = logging.getLogger("ai_digest_qa.server")

MCP_PATH = "/gradio_api/mcp"


def check_exposure(config: Config) -> None:
    """Refuse to open the API to the network without keys, unless told to explicitly."""
    if not config.api_enabled:
        return
    if config.ui_share:
        raise ConfigError("A share link (ui_share) needs Gradio's own launcher, which cannot "
                          "serve the API: set api_enabled = false (AI_DIGEST_QA_API_ENABLED=0) "
                          "to share the page without the API.")
    if is_loopback(config.ui_host) or config.api_open:
        return
    if not config.api_key_list:
        raise ConfigError(
            f"The API would answer anyone who reaches {config.ui_host} with no key. Set "
            "api_keys (AI_DIGEST_QA_API_KEYS=key1,key2), or api_open = true to serve it "
            "open knowingly, or api_enabled = false.")
    if not config.ui_auth:
        # The page's own Gradio endpoints answer too: without a login they would be a
        # way around the keys.
        raise ConfigError(
            f"The page on {config.ui_host} would answer anyone without a login, around the "
            "API's keys: set ui_auth = \"user:password\" (--auth), or api_open = true.")


def mcp_tools(service: ApiService) -> list[Any]:
    """The MCP tools: plain typed functions whose docstrings Gradio turns into schemas."""

    def search(query: str, top_k: int = 5) -> str:
        """Search the AI digest articles and papers (Chinese or English) for passages.

        Returns JSON: a list of passages with title, url, source, text and offsets.

        Args:
            query: what to look for, in Chinese or English
            top_k: how many passages to return, 1 to 50
        """
        with _tool_errors():
            service.check_ready()
            found = service.retrieve({"query": query, "top_k": int(top_k)})["data"]
        return json.dumps(found, ensure_ascii=False)

    def ask(question: str) -> str:
        """Answer a question from the AI digest articles and papers, with citations.

        Returns JSON: answer, answer_mode, abstained and sources. The answer marks
        each claim with [n]; sources lists what each marker cites. When the sources do
        not answer, it says so and abstained is true.

        Args:
            question: the question, in Chinese or English
        """
        with _tool_errors():
            service.check_ready()
            answer: Answer = service.answer(ChatRequest(
                question=question, history=(), model=MODEL_ID, llm=None, stream=False,
                temperature=None, max_tokens=None))
        return json.dumps({"answer": answer.text, "answer_mode": answer.mode,
                           "abstained": answer.abstained,
                           "sources": source_records(answer, service.root)},
                          ensure_ascii=False)

    return [search, ask]


class _McpKeyGuard:
    """The MCP tools answer like the API, so they need its key too (a plain ASGI
    middleware: Starlette's BaseHTTPMiddleware buffers the streams MCP sends)."""

    def __init__(self, app: Any, service: ApiService) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(MCP_PATH):
            try:
                self.service.check_key(Request(scope))
            except ApiError as exc:
                response = error_response(exc)
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(config: Config, assistant: Assistant | None = None) -> tuple[Any, Any]:
    """The FastAPI app (API + UI + MCP) and the ChatApp behind the page. ``assistant``:
    one already loaded (the bench's), else one for ``config``."""
    import gradio as gr
    from fastapi import FastAPI
    from gradio.events import api as gradio_endpoint

    from .ui import page_options, serving_app

    assistant = assistant or Assistant(config)
    slots = AnswerSlots(config.ui_concurrency, config.ui_queue_size)
    chat = serving_app(assistant, slots)
    service = ApiService(assistant, slots, config.api_key_list, chat.warmup.not_ready)
    with chat.blocks:
        for tool in mcp_tools(service):
            # Unqueued: Gradio's MCP server then calls the function directly instead of
            # through its own HTTP queue (which a ui_auth login would refuse). The answer
            # slots gate it. Named apart from the page's own "ask" endpoint.
            gradio_endpoint(tool, api_name=f"{tool.__name__}_tool", queue=False)
    # No generated docs: they would be served without the API's key.
    app = FastAPI(title="ai-digest-qa", docs_url=None, redoc_url=None, openapi_url=None)
    add_api(app, service)
    if config.api_key_list:
        app.add_middleware(_McpKeyGuard, service=service)
    app = gr.mount_gradio_app(app, chat.blocks, path="", mcp_server=_mcp_available(),
                              **page_options(config))
    return app, chat


@contextmanager
def _tool_errors() -> Iterator[None]:
    """An API error as a tool error the MCP client can read (Gradio hides others)."""
    import gradio as gr

    try:
        yield
    except ApiError as exc:
        raise gr.Error(exc.message) from None
    except ServerBusy as exc:
        raise gr.Error(str(exc)) from None


def _mcp_available() -> bool:
    try:
        import mcp  # noqa: F401 - the gradio[mcp] extra
    except ImportError:
        log.warning("MCP tools are off: the mcp package (gradio[mcp]) is not installed.")
        return False
    return True


def _warn_open_ui(config: Config) -> None:
    if (config.ui_share or not is_loopback(config.ui_host)) and not config.ui_auth:
        log.warning("The UI is reachable from other machines (%s) with no password: set "
                    "ui_auth = \"user:password\" (AI_DIGEST_QA_UI_AUTH).",
                    "a public share link" if config.ui_share else config.ui_host)


def launch(config: Config | None = None) -> None:
    """Serve on ``config.ui_host:ui_port`` (127.0.0.1:7860 by default) until stopped."""
    config = config or load_config()
    check_exposure(config)
    _warn_open_ui(config)
    if not config.api_enabled:
        _launch_gradio_only(config)
        return
    import uvicorn

    app, _ = build_app(config)
    log.info("API at http://%s:%d/v1 (%s)", config.ui_host, config.ui_port,
             "keys required" if config.api_key_list else "no key")
    uvicorn.run(app, host=config.ui_host, port=config.ui_port, log_level="warning")


def _launch_gradio_only(config: Config) -> None:
    from .ui import page_options, serving_app

    chat = serving_app(Assistant(config))
    chat.blocks.launch(server_name=config.ui_host, server_port=config.ui_port,
                       share=config.ui_share, quiet=False, **page_options(config))
