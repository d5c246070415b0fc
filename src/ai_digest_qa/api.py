"""The OpenAI-compatible HTTP API, served on the web UI's own port (server.py mounts it).

Open WebUI, LobeChat, Chatbox, IDE plugins and the ``openai`` package all speak
``/v1/chat/completions``: pointed at ours they use the knowledge base with no code of
ours. The last user message is the question, earlier turns are the history, and the
answer keeps its ``[n]`` markers; a top-level ``sources`` list (ignored by clients that do
not know it) says what each marker cites. ``/v1/retrieve`` returns passages as JSON.

Errors use OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``) with a
status code, so clients show our message instead of failing to parse. Generation waits
for the same answer slots as the page (concurrency.py).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from . import backends
from .assistant import Assistant, QuestionError, validate_question
from .concurrency import AnswerSlots, ServerBusy
from .config import ConfigError
from .llm import LLMError
from .records import Answer, History

log = logging.getLogger("ai_digest_qa.api")

MODEL_ID = "ai-digest-qa"
# Model ids a client can pick: the configured answer backend, or one named. None = as
# configured (an unavailable LLM then falls back to quotes, and says so).
MODELS: dict[str, str | None] = {
    MODEL_ID: None, **{f"{MODEL_ID}-{name}": name for name in backends.names("llm")}}
MAX_TEMPERATURE = 2.0  # OpenAI's own range
MAX_RETRIEVE_TOP_K = 50


class ApiError(Exception):
    """An error answered in OpenAI's shape with ``status``."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind
        self.code, self.param = code, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind,
                          "param": self.param, "code": self.code}}


def error_response(error: ApiError) -> JSONResponse:
    headers = {"Retry-After": "10"} if error.status in (429, 503) else None
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


# --- requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatRequest:
    """A validated ``/v1/chat/completions`` body."""

    question: str
    history: History
    model: str
    llm: str | None
    stream: bool
    temperature: float | None
    max_tokens: int | None


def message_text(content: object) -> str:
    """A message's text: a string, or OpenAI's list of parts (text parts joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content
                         if isinstance(part, dict) and part.get("type") == "text")
    if content is None:
        return ""
    raise ApiError(400, "A message's content must be a string or a list of text parts.",
                   param="messages")


def _history(messages: list[dict[str, Any]]) -> History:
    """Earlier (question, answer) pairs: each user message with the reply after it."""
    pairs: list[tuple[str, str]] = []
    question: str | None = None
    for message in messages:
        role, text = message.get("role"), message_text(message.get("content"))
        if role == "user":
            question = text
        elif role == "assistant" and question is not None and text.strip():
            pairs.append((question, text))
            question = None
    return pairs  # the answer pipeline keeps the last few (prompts.HISTORY_TURNS)


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content} objects.",
                       param="messages")
    if not all(isinstance(m, dict) for m in messages):
        raise ApiError(400, "Each message must be an object with 'role' and 'content'.",
                       param="messages")
    if messages[-1].get("role") != "user":
        raise ApiError(400, "The last message must be the user's question (role 'user').",
                       param="messages")
    return messages


def _number(body: dict[str, Any], name: str, kind: type, low: float, high: float | None
            ) -> Any:
    value = body.get(name)
    if value is None:
        return None
    valid = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)  # Python's json reads NaN and Infinity
    if kind is int:
        valid = valid and float(value).is_integer()
    if not valid or value < low or (high is not None and value > high):
        limits = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ApiError(400, f"'{name}' must be a number {limits}, got {value!r}.", param=name)
    return kind(value)


def parse_chat_request(body: object, max_question_chars: int) -> ChatRequest:
    """The request's question, history and options, or :class:`ApiError` (400/404)."""
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    messages = _messages(body)
    try:
        question = validate_question(message_text(messages[-1].get("content")),
                                     max_question_chars)
    except QuestionError as exc:
        raise ApiError(400, str(exc), param="messages") from None
    model = body.get("model") or MODEL_ID
    if not isinstance(model, str) or model not in MODELS:
        raise ApiError(404, f"The model {model!r} does not exist; use one of "
                       f"{', '.join(MODELS)} (GET /v1/models).", code="model_not_found",
                       param="model")
    if body.get("n") not in (None, 1):
        raise ApiError(400, "Only one choice per request is supported ('n' must be 1).",
                       param="n")
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise ApiError(400, f"'stream' must be true or false, got {stream!r}.", param="stream")
    max_tokens = _number(body, "max_tokens", int, 1, None)
    if max_tokens is None:
        max_tokens = _number(body, "max_completion_tokens", int, 1, None)
    return ChatRequest(
        question=question, history=_history(messages[:-1]), model=str(model),
        llm=MODELS[str(model)], stream=bool(stream),
        temperature=_number(body, "temperature", float, 0.0, MAX_TEMPERATURE),
        max_tokens=max_tokens)


# --- responses --------------------------------------------------------------------------


def source_records(answer: Answer, root: Path) -> list[dict[str, Any]]:
    """One entry per citation: its marker, the passage, and the span the answer rests on;
    ``page`` is the page that span starts on (the passage's first page without a span)."""
    return [{"marker": c.marker, **c.passage.to_record(root), "page": c.page,
             "span": list(c.span) if c.span else None} for c in answer.citations]


def answer_fields(answer: Answer, root: Path) -> dict[str, Any]:
    """What our answer adds to OpenAI's shape: mode, abstention and sources."""
    return {"answer_mode": answer.mode, "abstained": answer.abstained,
            "abstention": answer.abstention, "notice": answer.notice,
            "llm": answer.llm, "sources": source_records(answer, root)}


def completion_body(answer: Answer, request: ChatRequest, completion_id: str,
                    created: int, root: Path) -> dict[str, Any]:
    return {"id": completion_id, "object": "chat.completion", "created": created,
            "model": request.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer.text}}],
            **answer_fields(answer, root)}


def chunk_body(completion_id: str, created: int, model: str, delta: dict[str, Any],
               finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            **extra}


def sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


# --- the service ------------------------------------------------------------------------


class ApiService:
    """The API's handlers over one assistant, its readiness and the shared answer slots.

    ``not_ready`` returns why the index cannot be searched yet (None when it can), so a
    request during the first build gets a 503 that says so instead of hanging.
    """

    def __init__(self, assistant: Assistant, slots: AnswerSlots, keys: tuple[str, ...],
                 not_ready: Callable[[], str | None] = lambda: None) -> None:
        self.assistant = assistant
        self.root = assistant.config.corpus_dir.parent
        self.slots = slots
        self._keys = tuple(key.encode() for key in keys)  # never logged
        self._not_ready = not_ready
        # Answers wait for a slot in threads of their own: a shared pool (asyncio's has
        # 6 threads on 2 cores) would hold later requests before they take a ticket.
        self.pool = ThreadPoolExecutor(slots.limit + slots.max_waiting + 1,
                                       thread_name_prefix="api-answer")

    async def authorize(self, request: Request) -> None:
        """The route dependency: async, so that a request without a key is refused at
        once, not after waiting for a worker thread that answers are holding."""
        self.check_key(request)

    def check_key(self, request: Request) -> None:
        if not self._keys:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode()
        # Compare with every key in constant time: timing says nothing about a key.
        matches = [hmac.compare_digest(given, key) for key in self._keys]
        if scheme.lower() != "bearer" or not any(matches):
            raise ApiError(401, "Missing or wrong API key: send 'Authorization: Bearer "
                           "<key>' with one of the server's api_keys.",
                           code="invalid_api_key")

    def check_ready(self) -> None:
        reason = self._not_ready()
        if reason:
            raise ApiError(503, reason, kind="server_error", code="index_not_ready")

    def check_model(self, request: ChatRequest) -> None:
        """A model named explicitly must load; the default one may fall back to quotes."""
        if request.llm is None or not backends.has("llm", request.llm, backends.GENERATES):
            return
        try:
            self.assistant.llm(request.llm)
        except (LLMError, ConfigError) as exc:
            raise ApiError(503, f"The model {request.model!r} is not loaded: {exc}",
                           kind="server_error", code="model_not_loaded") from None

    def check_capacity(self) -> None:
        if self.slots.is_full():
            raise ApiError(429, f"The server is busy ({self.slots.waiting} requests wait); "
                           "retry in a few seconds.", kind="rate_limit_error",
                           code="server_busy")

    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "ai-digest-qa"}
            for name in MODELS]}

    def answer_items(self, request: ChatRequest, cancel: threading.Event
                     ) -> Iterator[str | Answer]:
        """The answer's pieces, then the Answer, holding an answer slot throughout."""
        with self.slots.hold(cancel) as held:
            if not held:
                return
            items = self.assistant.ask_stream(
                request.question, history=request.history, llm=request.llm, cancel=cancel,
                temperature=request.temperature, max_tokens=request.max_tokens)
            with closing(items):
                yield from items

    def answer(self, request: ChatRequest, cancel: threading.Event | None = None) -> Answer:
        final = None
        for item in self.answer_items(request, cancel or threading.Event()):
            if isinstance(item, Answer):
                final = item
        if final is None:
            raise ApiError(500, "No answer was produced.", kind="server_error")
        return final

    def retrieve(self, body: object) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object with 'query'.")
        top_k = _number(body, "top_k", int, 1, MAX_RETRIEVE_TOP_K) or 5
        query = body.get("query", body.get("question"))
        if query is None:
            raise ApiError(400, "'query' (the text to search for) is required.",
                           param="query")
        try:
            passages = self.assistant.retrieve(query, top_k)
        except QuestionError as exc:
            raise ApiError(400, str(exc), param="query") from None
        return {"object": "list", "data": [p.to_record(self.root) for p in passages]}


async def _json_body(request: Request) -> object:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON.") from None


async def stream_events(service: ApiService, request: ChatRequest) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's chunk format; the last chunk carries our fields.

    The pipeline runs in a worker thread and hands its pieces over a queue. A client that
    goes away cancels this generator, which sets ``cancel``: llama.cpp stops at the next
    token instead of writing an answer nobody reads.
    """
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    cancel = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in service.answer_items(request, cancel):
                loop.call_soon_threadsafe(queue.put_nowait, item)
        except Exception as exc:  # noqa: BLE001 - sent to the client as an error event
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, done)

    worker = loop.run_in_executor(service.pool, produce)
    streamed: list[str] = []
    try:
        yield sse(chunk_body(completion_id, created, request.model, {"role": "assistant"}))
        while (item := await queue.get()) is not done:
            if isinstance(item, Answer):
                correction = _correction("".join(streamed), item.text)
                if correction:
                    yield sse(chunk_body(completion_id, created, request.model,
                                         {"content": correction}))
                yield sse(chunk_body(completion_id, created, request.model, {}, "stop",
                                     content=item.text, **answer_fields(item, service.root)))
            elif isinstance(item, Exception):
                yield sse(_stream_error(item).body())
            elif isinstance(item, str):
                streamed.append(item)
                yield sse(chunk_body(completion_id, created, request.model,
                                     {"content": item}))
        yield sse("[DONE]")
    finally:
        cancel.set()
        await asyncio.wait([worker], timeout=30)


def _correction(streamed: str, final: str) -> str:
    """What to send after the streamed draft so that the client ends with the answer.

    A draft can fail verification after it was streamed (the page then replaces it). A
    stream cannot take text back, so the final answer follows it on its own paragraph;
    when verification failed, its first line says so. The last chunk's ``content``
    holds the final answer alone, for clients that can replace the text."""
    if final == streamed or not final:
        return ""
    if streamed and final.startswith(streamed):
        return final[len(streamed):]
    return f"\n\n{final}" if streamed.strip() else final


async def _answer_unless_gone(service: ApiService, chat: ChatRequest, request: Request
                             ) -> Answer:
    """The whole answer; a client that hangs up meanwhile stops it at the next token
    (or takes it out of the queue), instead of holding a slot for nobody."""
    cancel = threading.Event()
    future = asyncio.get_running_loop().run_in_executor(service.pool, service.answer,
                                                        chat, cancel)
    while not (await asyncio.wait([future], timeout=0.5))[0]:
        if await request.is_disconnected():
            cancel.set()
    return future.result()


def _stream_error(exc: Exception) -> ApiError:
    if isinstance(exc, ServerBusy):
        return ApiError(429, str(exc), kind="rate_limit_error", code="server_busy")
    log.error("streaming an answer failed", exc_info=exc)
    return ApiError(500, "The answer failed on the server; its log has the details.",
                    kind="server_error")


# --- routes -----------------------------------------------------------------------------


def api_router(service: ApiService) -> APIRouter:
    """``/v1/models``, ``/v1/chat/completions``, ``/v1/retrieve`` and a 404 for the rest."""
    router = APIRouter(prefix="/v1", dependencies=[Depends(service.authorize)])

    @router.get("/models")
    async def models() -> dict[str, Any]:
        return service.models()

    @router.post("/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> dict[str, Any] | StreamingResponse:
        chat = parse_chat_request(await _json_body(request),
                                  service.assistant.config.max_question_chars)
        service.check_ready()
        service.check_capacity()
        await run_in_threadpool(service.check_model, chat)
        if chat.stream:
            return StreamingResponse(stream_events(service, chat),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        try:
            answer = await _answer_unless_gone(service, chat, request)
        except ServerBusy as exc:
            raise ApiError(429, str(exc), kind="rate_limit_error", code="server_busy") from None
        return completion_body(answer, chat, f"chatcmpl-{uuid.uuid4().hex}", int(time.time()),
                               service.root)

    @router.get("/models/{model}")
    async def model(model: str) -> dict[str, Any]:
        if model not in MODELS:
            raise ApiError(404, f"The model {model!r} does not exist; use one of "
                           f"{', '.join(MODELS)}.", code="model_not_found", param="model")
        return next(m for m in service.models()["data"] if m["id"] == model)

    @router.post("/retrieve")
    async def retrieve(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        service.check_ready()
        return await run_in_threadpool(service.retrieve, body)

    @router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def unknown(path: str) -> None:
        raise ApiError(404, f"Unknown route /v1/{path}; this server has /v1/models, "
                       "/v1/chat/completions and /v1/retrieve.", code="unknown_route")

    return router


def add_api(app: FastAPI, service: ApiService) -> None:
    """Mount the API on ``app`` (before the web UI takes the remaining paths)."""
    app.include_router(api_router(service))

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def crash(request: Request, exc: Exception) -> Response:
        # Anything else still answers in OpenAI's shape; the details stay in the log.
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        if not request.url.path.startswith("/v1/"):
            return PlainTextResponse("Internal Server Error", status_code=500)
        return error_response(ApiError(500, "The request failed on the server; its log "
                                       "has the details.", kind="server_error"))

    app.add_exception_handler(ApiError, handle)
    app.add_exception_handler(Exception, crash)
