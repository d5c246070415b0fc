"""The real server (``python app.py`` on 127.0.0.1, stopped by its PID): the OpenAI-
compatible API through OpenAI's own client, the MCP tools through an MCP client, keys,
exposure, and API clients queued with the page's users."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from ai_digest_qa import Assistant, ConfigError, load_config
from ai_digest_qa.config import is_loopback
from ai_digest_qa.evaluation import matches_keyword
from ai_digest_qa.server import check_exposure
from conftest import ROOT, AppServer

KEY = "sk-server-test-4f1c9e"


def test_only_loopback_hosts_count_as_private() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_the_api_is_not_opened_to_the_network_without_keys() -> None:
    with pytest.raises(ConfigError, match="api_keys"):
        check_exposure(load_config(ui_host="0.0.0.0"))
    with pytest.raises(ConfigError, match="ui_auth"):  # the page would be a way around
        check_exposure(load_config(ui_host="0.0.0.0", api_keys=KEY))
    check_exposure(load_config(ui_host="0.0.0.0", api_keys=KEY, ui_auth="alice:s3cret"))
    check_exposure(load_config(ui_host="0.0.0.0", api_open=True))
    check_exposure(load_config(ui_host="0.0.0.0", api_enabled=False))
    check_exposure(load_config())
    with pytest.raises(ConfigError, match="api_enabled"):
        check_exposure(load_config(ui_share=True))
    with pytest.raises(ConfigError, match="8 or more"):
        load_config(api_keys="short")


def test_serving_beyond_loopback_without_keys_exits_with_the_reason(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "app.py"), "--host", "0.0.0.0",
                             "--port", "0"], capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env={**_env(), "AI_DIGEST_QA_INDEX_DIR": str(tmp_path)})
    assert result.returncode == 2 and "api_keys" in result.stderr


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("AI_DIGEST_QA_")}


def _openai(server: AppServer, key: str = "unused"):
    from openai import OpenAI

    return OpenAI(base_url=f"{server.url}v1", api_key=key, max_retries=0, timeout=120)


# --- the default app: local LLM, no keys ------------------------------------------------


def test_openai_client_gets_cited_answers_in_both_languages(app_server: AppServer) -> None:
    client = _openai(app_server)
    assert "ai-digest-qa" in [m.id for m in client.models.list()]
    reply = client.chat.completions.create(
        model="ai-digest-qa", temperature=0,
        messages=[{"role": "user", "content": "Llama 2在透明度指数中得了多少分?"}])
    content = reply.choices[0].message.content or ""
    extra = reply.model_extra or {}
    assert "54" in content and "[1]" in content
    # The quote answers (same language), or the model phrases it, or it says it found
    # nothing and the quote is shown.
    assert extra["answer_mode"] in ("quoted", "llm", "extractive") and not extra["abstained"]
    assert extra["sources"][0]["marker"] == "[1]"
    assert "54" in extra["sources"][0]["text"]  # the cited passage holds the evidence
    stream = client.chat.completions.create(
        model="ai-digest-qa", stream=True, max_tokens=80, messages=[
            {"role": "user", "content": "How long is the context window of GPT-4 Turbo?"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "128k" in text.lower()  # phrased from a Chinese article's sentence
    final = chunks[-1].model_extra or {}
    assert chunks[-1].choices[0].finish_reason == "stop" and text.endswith(final["content"])
    assert any("128k" in s["text"] for s in final["sources"])


def test_follow_up_abstention_and_errors_over_http(app_server: AppServer) -> None:
    from openai import BadRequestError, NotFoundError

    client = _openai(app_server)
    reply = client.chat.completions.create(model="ai-digest-qa-extractive", messages=[
        {"role": "user", "content": "Which city hosted ICML 2024?"},
        {"role": "assistant", "content": "Vienna [1]."},
        {"role": "user", "content": "How many papers were accepted there?"}])
    assert "2,609" in (reply.choices[0].message.content or "")
    with pytest.raises(BadRequestError, match="empty"):
        client.chat.completions.create(model="ai-digest-qa",
                                       messages=[{"role": "user", "content": " "}])
    with pytest.raises(NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o",
                                       messages=[{"role": "user", "content": "hi"}])
    response = httpx.get(f"{app_server.url}v1/files", timeout=10)
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_route"
    reply = client.chat.completions.create(model="ai-digest-qa", messages=[
        {"role": "user", "content": "明天北京会下雨吗?"}])
    assert (reply.model_extra or {})["abstained"] is True
    assert "没有找到答案" in (reply.choices[0].message.content or "")
    found = httpx.post(f"{app_server.url}v1/retrieve", timeout=30,
                       json={"query": "直接偏好优化", "top_k": 3}).json()["data"]
    assert len(found) == 3 and any("DPO" in p["text"] for p in found)


def _mcp(url: str, calls: list[tuple[str, dict]], headers: dict | None = None) -> tuple:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def run() -> tuple:
        async with httpx.AsyncClient(headers=headers, timeout=120) as http, \
                streamable_http_client(url, http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = [t.name for t in (await session.list_tools()).tools]
                results = [await session.call_tool(name, args) for name, args in calls]
                return tools, results

    return asyncio.run(run())


def test_mcp_tools_search_and_ask(app_server: AppServer) -> None:
    tools, (search, ask) = _mcp(f"{app_server.url}gradio_api/mcp/", [
        ("search", {"query": "UniAudio 训练数据", "top_k": 2}),
        ("ask", {"question": "How long is the context window of GPT-4 Turbo?"})])
    assert sorted(tools) == ["ask", "search"]  # the page's own chat handler is not a tool
    assert not search.isError and not ask.isError
    passages = json.loads(search.content[0].text)
    assert len(passages) == 2 and any("UniAudio" in p["text"] for p in passages)
    answer = json.loads(ask.content[0].text)
    assert "128k" in answer["answer"].lower()
    assert answer["sources"] and answer["abstained"] is False


# Eight questions, each with words its own answer must hold (LLM or quotes, either
# language): eight concurrent clients must each get their own.
CONCURRENT = [
    ("Llama 2在透明度指数中得了多少分?", ("54",)),
    ("Which city hosted ICML 2024?", ("Vienna", "维也纳")),
    ("How long is the context window of GPT-4 Turbo?", ("128k",)),
    ("UniAudio的训练数据有多少小时?", ("165",)),
    ("How many parameters did the RWKV authors scale their model to?", ("14",)),
    ("What BLEU score did the original Transformer get on WMT 2014 English-to-German?",
     ("28.4",)),
    ("直接偏好优化(DPO)绕过了什么?", ("奖励",)),
    ("How many papers were submitted to ICML 2024?", ("9,653", "9653")),
]


def test_eight_api_clients_get_their_own_answers_queued_with_a_page_user(
        app_server: AppServer) -> None:
    """Four API clients, then a page user, then four more, at once: each gets its own
    answer, one is written at a time (ui_concurrency = 1), and the page user is served
    before the four API clients that came after it."""
    from gradio_client import Client

    finished: dict[str, float] = {}
    replies: dict[int, dict] = {}

    def api_client(number: int) -> None:
        response = httpx.post(f"{app_server.url}v1/chat/completions", timeout=600, json={
            "model": "ai-digest-qa", "max_tokens": 80,
            "messages": [{"role": "user", "content": CONCURRENT[number][0]}]})
        replies[number] = response.json() if response.status_code == 200 else {
            "status": response.status_code}
        finished[f"api{number}"] = time.monotonic()

    def start(numbers: range) -> list[threading.Thread]:
        started = []
        for number in numbers:
            started.append(threading.Thread(target=api_client, args=(number,)))
            started[-1].start()
            time.sleep(0.2)
        return started

    page = Client(app_server.url, verbose=False)  # connected before anyone asks
    threads = start(range(4))
    job = page.submit("什么是直接偏好优化(DPO)?", "local", 4, api_name="/ask")
    # The later clients start once the page's request is in line (its first update is
    # on the page): under a busy CPU the page's request can take seconds to get there,
    # and the order under test is the answer queue's, not the network's.
    deadline = time.monotonic() + 120
    while not job.outputs() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    threads += start(range(4, 8))

    def page_done() -> None:
        chat = job.result(timeout=600)[0]
        assert "DPO" in json.dumps(chat, ensure_ascii=False)
        finished["page"] = time.monotonic()

    threads.append(threading.Thread(target=page_done))
    threads[-1].start()
    for thread in threads:
        thread.join(timeout=600)
    for number, (question, expected) in enumerate(CONCURRENT):
        reply = replies[number]
        assert "choices" in reply, (question, reply)
        text = reply["choices"][0]["message"]["content"]
        assert any(term.lower() in text.lower() for term in expected), (question, text)
    assert finished["page"] < min(finished[f"api{n}"] for n in range(4, 8))


# --- a server with keys -----------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_server(corpus_assistant: Assistant, tmp_path_factory: pytest.TempPathFactory):
    with AppServer(corpus_assistant.config.index_dir,
                   tmp_path_factory.mktemp("keyed") / "app.log",
                   api_keys=f"{KEY},sk-second-key-77", ui_auth="alice:s3cret-pw",
                   llm_backend="extractive", local_model="/nonexistent/model.gguf") as server:
        yield server


def test_keys_guard_the_api_and_the_mcp_tools(keyed_server: AppServer) -> None:
    from openai import AuthenticationError

    with pytest.raises(AuthenticationError):
        _openai(keyed_server, "sk-wrong-key-000").models.list()
    reply = _openai(keyed_server, KEY).chat.completions.create(
        model="ai-digest-qa", messages=[{"role": "user", "content": "UniAudio用了多少小时的数据?"}])
    # As the eval matches it: by value ("165K hours" and "165000 小时" both hold it).
    assert matches_keyword("165000", reply.choices[0].message.content or "")
    response = httpx.post(f"{keyed_server.url}gradio_api/mcp/", timeout=10, json={})
    assert response.status_code == 401
    tools, _ = _mcp(f"{keyed_server.url}gradio_api/mcp/", [],
                    headers={"Authorization": f"Bearer {KEY}"})
    assert sorted(tools) == ["ask", "search"]
    # The page and its own Gradio endpoints ask for its login (ui_auth): no way around.
    assert httpx.get(f"{keyed_server.url}config", timeout=10).status_code == 401
    for endpoint in ("ask", "search_tool", "ask_tool"):
        response = httpx.post(f"{keyed_server.url}gradio_api/call/{endpoint}", timeout=10,
                              json={"data": ["What is DPO?"]})
        assert response.status_code == 401, (endpoint, response.text[:200])


def test_a_named_model_that_cannot_load_is_a_503(keyed_server: AppServer) -> None:
    from openai import InternalServerError

    with pytest.raises(InternalServerError, match="not loaded"):
        _openai(keyed_server, KEY).chat.completions.create(
            model="ai-digest-qa-local", messages=[{"role": "user", "content": "What is DPO?"}])


def test_keys_never_reach_the_log(keyed_server: AppServer) -> None:
    httpx.get(f"{keyed_server.url}v1/models", headers={"Authorization": f"Bearer {KEY}"})
    httpx.get(f"{keyed_server.url}v1/models", headers={"Authorization": "Bearer sk-guess-1234"})
    log = keyed_server.log_path.read_text()
    assert "API at" in log and KEY not in log and "sk-second-key-77" not in log
    assert "sk-guess-1234" not in log
