"""The OpenAI-compatible API in-process: request parsing, responses, streaming, errors,
keys and capacity, over a tiny real index with the fake embedder (fast; the real server
is tested in test_server.py)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ai_digest_qa import Answer, Assistant
from ai_digest_qa.api import MODELS, ApiError, ApiService, add_api, parse_chat_request
from ai_digest_qa.concurrency import AnswerSlots
from fakes import ScriptedLLM, tiny_assistant

KEY = "sk-test-0123456789"
QUESTION = "What score did Llama 2 get on the transparency index?"


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    # The configured model cannot load: the default model id falls back to quotes, an
    # explicitly named "-local" gets a 503.
    return tiny_assistant(tmp_path_factory.mktemp("api"), llm_backend="local",
                          local_model=str(Path("/nonexistent/model.gguf")))


def _client(assistant: Assistant, *, keys: tuple[str, ...] = (), slots: AnswerSlots | None
            = None, not_ready=lambda: None) -> TestClient:
    app = FastAPI()
    add_api(app, ApiService(assistant, slots or AnswerSlots(1, 4), keys, not_ready))
    return TestClient(app)


def _chat(question: str = QUESTION, **options) -> dict:
    return {"messages": [{"role": "user", "content": question}], **options}


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


# --- parsing ----------------------------------------------------------------------------


def test_the_last_user_message_is_the_question_and_earlier_turns_the_history() -> None:
    request = parse_chat_request({"model": "ai-digest-qa-extractive", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Who made Llama 2?"},
        {"role": "assistant", "content": "Meta [1]."},
        {"role": "user", "content": [{"type": "text", "text": "What did it score?"},
                                     {"type": "image_url", "image_url": {"url": "x"}}]},
    ], "temperature": 0.5, "max_tokens": 40}, 4000)
    assert request.question == "What did it score?"
    assert list(request.history) == [("Who made Llama 2?", "Meta [1].")]
    assert request.llm == "extractive" and request.model == "ai-digest-qa-extractive"
    assert request.temperature == 0.5 and request.max_tokens == 40 and not request.stream


@pytest.mark.parametrize(("body", "status", "param"), [
    ([], 400, None),
    ({"messages": []}, 400, "messages"),
    ({"messages": ["hi"]}, 400, "messages"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, 400, "messages"),
    (_chat("   "), 400, "messages"),
    (_chat("x" * 5000), 400, "messages"),
    (_chat(model="gpt-4"), 404, "model"),
    (_chat(temperature=3), 400, "temperature"),
    (_chat(temperature="hot"), 400, "temperature"),
    (_chat(max_tokens=0), 400, "max_tokens"),
    (_chat(max_tokens=True), 400, "max_tokens"),
    (_chat(max_tokens=1.5), 400, "max_tokens"),
    (_chat(n=2), 400, "n"),
    (_chat(temperature=float("nan")), 400, "temperature"),
    (_chat(stream="false"), 400, "stream"),
    (_chat(model=["ai-digest-qa"]), 404, "model"),
])
def test_bad_requests_say_what_is_wrong(body, status: int, param: str | None) -> None:
    with pytest.raises(ApiError) as caught:
        parse_chat_request(body, 4000)
    assert caught.value.status == status and caught.value.param == param
    assert caught.value.message  # a sentence saying what to change


# --- routes -----------------------------------------------------------------------------


def test_models_lists_the_assistant_and_its_modes(assistant: Assistant) -> None:
    ids = [m["id"] for m in _client(assistant).get("/v1/models").json()["data"]]
    assert ids == list(MODELS) and ids[0] == "ai-digest-qa"


def test_a_completion_carries_markers_sources_and_the_mode(assistant: Assistant) -> None:
    response = _client(assistant).post("/v1/chat/completions", json=_chat())
    assert response.status_code == 200
    body = response.json()
    content = body["choices"][0]["message"]["content"]
    assert body["object"] == "chat.completion" and body["choices"][0]["finish_reason"] == "stop"
    assert "54" in content and "[1]" in content
    # The local model cannot load: the answer is the quotes, and says why.
    assert body["answer_mode"] == "extractive" and body["notice"]
    source = body["sources"][0]
    assert source["marker"] == "[1]" and source["source"] == "corpus/transparency.md"
    start, end = source["span"]
    assert "54" in source["text"][start:end]
    assert set(source) >= {"title", "url", "page", "text", "span", "doc_id", "start", "end"}


def test_streaming_sends_openai_chunks_then_the_sources(assistant: Assistant) -> None:
    with _client(assistant).stream("POST", "/v1/chat/completions",
                                   json=_chat(stream=True)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: "):] for line in response.iter_lines()
                  if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "54" in text and "[1]" in text
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["sources"]
    assert len({c["id"] for c in chunks}) == 1


def test_an_unanswerable_question_is_a_normal_completion_that_says_so(
        assistant: Assistant) -> None:
    body = _client(assistant).post("/v1/chat/completions", json=_chat(
        "What is the capital of Australia?", model="ai-digest-qa-extractive")).json()
    assert body["abstained"] is True and body["answer_mode"] == "abstained"
    assert body["choices"][0]["message"]["content"] and body["sources"] == []


def test_retrieve_returns_passages(assistant: Assistant) -> None:
    client = _client(assistant)
    data = client.post("/v1/retrieve", json={"query": "DPO 奖励模型", "top_k": 2}).json()["data"]
    assert 1 <= len(data) <= 2 and "DPO" in data[0]["text"]
    assert _error(client.post("/v1/retrieve", json={"top_k": 2}))["param"] == "query"
    assert client.post("/v1/retrieve", json={"query": "DPO", "top_k": 0}).status_code == 400


def test_errors_have_openai_shape_and_status(assistant: Assistant) -> None:
    client = _client(assistant)
    assert _error(client.get("/v1/embeddings"))["code"] == "unknown_route"
    assert client.post("/v1/nothing/here", json={}).status_code == 404
    response = client.post("/v1/chat/completions", content=b"{not json",
                           headers={"content-type": "application/json"})
    assert response.status_code == 400 and "JSON" in _error(response)["message"]
    response = client.post("/v1/chat/completions", json=_chat(model="ai-digest-qa-local"))
    assert response.status_code == 503 and _error(response)["code"] == "model_not_loaded"


def test_while_the_index_builds_the_api_says_so(assistant: Assistant) -> None:
    client = _client(assistant, not_ready=lambda: "The index is being built (3/10).")
    for response in (client.post("/v1/chat/completions", json=_chat()),
                     client.post("/v1/retrieve", json={"query": "DPO"})):
        assert response.status_code == 503 and response.headers["retry-after"]
        assert _error(response)["code"] == "index_not_ready"


def test_keys_are_required_when_set(assistant: Assistant) -> None:
    client = _client(assistant, keys=(KEY, "sk-other-key-000"))
    assert _error(client.get("/v1/models"))["code"] == "invalid_api_key"
    assert client.get("/v1/models", headers={"Authorization": "Bearer wrong-key"}
                      ).status_code == 401
    assert client.get("/v1/models", headers={"Authorization": f"Basic {KEY}"}
                      ).status_code == 401
    for key in (KEY, "sk-other-key-000"):
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}
                          ).status_code == 200
    assert client.get("/v1/unknown").status_code == 401  # nothing is told without a key


def test_a_full_queue_is_a_429(assistant: Assistant) -> None:
    slots = AnswerSlots(limit=1, max_waiting=0)
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        with slots.hold():
            holding.set()
            release.wait()

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    try:
        response = _client(assistant, slots=slots).post("/v1/chat/completions", json=_chat())
        assert response.status_code == 429 and _error(response)["code"] == "server_busy"
    finally:
        release.set()
        thread.join()


def test_temperature_and_max_tokens_reach_the_model_within_limits(
        assistant: Assistant) -> None:
    class Recording(ScriptedLLM):
        def stream(self, messages, *, max_tokens, temperature, timeout, cancel=None):
            self.settings = (max_tokens, temperature)
            return super().stream(messages, max_tokens=max_tokens, temperature=temperature,
                                  timeout=timeout, cancel=cancel)

    model = Recording("Llama 2 scored 54 [1].")
    items = list(assistant.ask_stream(QUESTION, llm=model, temperature=0.7,
                                      max_tokens=10_000))
    assert isinstance(items[-1], Answer) and "54" in items[-1].text
    assert model.settings == (assistant.config.max_answer_tokens, 0.7)  # capped, honoured


class _DraftThenFallback:
    """An assistant whose streamed draft fails verification: the final answer differs."""

    def __init__(self, real: Assistant, final: Answer) -> None:
        self.config, self.final = real.config, final

    def ask_stream(self, question, **options):
        yield "Zephyr: Direct Distillation"
        yield " of LM Alignment [1]"
        yield self.final


def test_a_stream_ends_with_the_final_answer_when_the_draft_was_replaced(
        assistant: Assistant) -> None:
    final = assistant.ask(QUESTION, llm="extractive")
    service = ApiService(_DraftThenFallback(assistant, final), AnswerSlots(1, 4), ())
    app = FastAPI()
    add_api(app, service)
    with TestClient(app).stream("POST", "/v1/chat/completions",
                                json=_chat(stream=True)) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines()
                  if line.startswith("data: {")]
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    assert text.startswith("Zephyr: Direct Distillation of LM Alignment [1]")
    assert text.endswith("\n\n" + final.text)  # the answer follows the rejected draft
    assert events[-1]["content"] == final.text and events[-1]["sources"]


def test_a_model_can_be_looked_up_by_id(assistant: Assistant) -> None:
    client = _client(assistant)
    assert client.get("/v1/models/ai-digest-qa-extractive").json()["id"] == \
        "ai-digest-qa-extractive"
    assert _error(client.get("/v1/models/gpt-4"))["code"] == "model_not_found"


def test_a_client_that_hangs_up_stops_its_answer() -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from ai_digest_qa.api import _answer_unless_gone

    class Gone:
        async def is_disconnected(self) -> bool:
            return True

    class Waiting:
        pool = ThreadPoolExecutor(1)

        def answer(self, chat, cancel):
            return "stopped" if cancel.wait(10) else "ran to the end"

    assert asyncio.run(_answer_unless_gone(Waiting(), None, Gone())) == "stopped"
