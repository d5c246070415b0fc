"""The hosted (OpenAI-compatible) path against a real llama.cpp server on 127.0.0.1,
and its failure modes: server down, too slow, malformed replies."""

import http.server
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ai_digest_qa import Assistant, load_config
from ai_digest_qa.llm import LLMError, LLMTimeout, OpenAICompatibleLLM
from conftest import free_port

HERE = Path(__file__).resolve().parent
MESSAGES = [{"role": "user", "content": "Reply with one word: yes"}]


@pytest.fixture(scope="module")
def llama_server(model_path: Path):
    port = free_port()
    process = subprocess.Popen([sys.executable, str(HERE / "llm_server.py"), str(model_path),
                                str(port)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("READY"), line
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()  # stopped by its own PID
        process.wait(timeout=30)


def _hosted(corpus_assistant: Assistant, base_url: str, timeout: float = 120.0) -> Assistant:
    config = load_config(corpus_dir=corpus_assistant.config.corpus_dir,
                         index_dir=corpus_assistant.config.index_dir, llm_backend="openai",
                         openai_base_url=base_url, openai_api_key="sk-test-secret",
                         llm_timeout=timeout)
    return Assistant(config)


@pytest.mark.slow
def test_hosted_endpoint_streams(llama_server):
    llm = OpenAICompatibleLLM(llama_server, "default", "sk-test-secret")
    pieces = list(llm.stream(MESSAGES, max_tokens=8, temperature=0.0, timeout=60))
    assert "".join(pieces).strip()
    assert "sk-test-secret" not in repr(llm) and "sk-test-secret" not in llm.name


@pytest.mark.slow
def test_hosted_answer_is_cited(llama_server, corpus_assistant):
    answer = _hosted(corpus_assistant, llama_server).ask("Llama 2在透明度指数中得了多少分?")
    assert answer.llm.startswith("openai:") or answer.mode == "extractive"
    assert not answer.abstained and "54" in answer.text
    assert any("Llama 2得分54" in c.passage.text for c in answer.citations)


def test_server_down_falls_back_to_extractive(corpus_assistant):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    answer = _hosted(corpus_assistant, f"http://127.0.0.1:{port}/v1").ask(
        "How many papers did CVPR 2023 accept?")
    assert time.monotonic() - started < 30
    assert answer.mode == "extractive" and "Cannot reach" in (answer.notice or "")
    assert any("2359" in c.passage.text for c in answer.citations)
    assert "sk-test-secret" not in answer.text + (answer.notice or "")


class _Handler(http.server.BaseHTTPRequestHandler):
    behaviour = "slow"

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.behaviour == "slow":
            time.sleep(5)
            return
        if self.behaviour == "echo-key":  # like OpenAI's "Incorrect API key provided: ..."
            body = json.dumps({"error": {"message": "Incorrect API key provided: "
                                         + self.headers.get("Authorization", "")}}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b"data: {this is not json\n\n")

    def log_message(self, *args):
        pass


@pytest.fixture()
def faulty_server():
    servers = []

    def start(behaviour: str) -> str:
        handler = type("Handler", (_Handler,), {"behaviour": behaviour})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.shutdown()


def test_slow_endpoint_times_out_then_falls_back(faulty_server, corpus_assistant):
    url = faulty_server("slow")
    with pytest.raises(LLMTimeout):
        list(OpenAICompatibleLLM(url, "m").stream(MESSAGES, max_tokens=8, temperature=0,
                                                  timeout=1.0))
    started = time.monotonic()
    answer = _hosted(corpus_assistant, url, timeout=1.0).ask("Which city hosted ICML 2024?")
    assert time.monotonic() - started < 10
    assert answer.mode == "extractive" and "1s" in (answer.notice or "")


def test_malformed_reply_is_an_error_and_falls_back(faulty_server, corpus_assistant):
    url = faulty_server("malformed")
    with pytest.raises(LLMError, match="malformed"):
        list(OpenAICompatibleLLM(url, "m").stream(MESSAGES, max_tokens=8, temperature=0,
                                                  timeout=5))
    answer = _hosted(corpus_assistant, url).ask("ICML 2024 在哪里举行?")
    assert answer.mode == "extractive" and answer.language == "zh"
    assert any("维也纳" in c.passage.text for c in answer.citations)


SECRET = "sk-proj-0123456789abcdefSECRET"


def test_an_api_key_never_reaches_answers_logs_or_the_ui(faulty_server, corpus_assistant,
                                                         caplog, tmp_path):
    """The endpoint echoes the key in its error, as OpenAI does; nothing shows it."""
    import gradio as gr

    from ai_digest_qa.ui import ChatApp, Warmup

    url = faulty_server("echo-key")
    config = load_config(corpus_dir=corpus_assistant.config.corpus_dir,
                         index_dir=corpus_assistant.config.index_dir, llm_backend="openai",
                         openai_base_url=url, openai_api_key=SECRET,
                         feedback_file=tmp_path / "feedback.jsonl")
    assistant = Assistant(config)
    with caplog.at_level(logging.DEBUG):
        answer = assistant.ask("How many papers did CVPR 2023 accept?")
        warmup = Warmup(assistant, load_llm=False).start()
        assert warmup.index_ready.wait(120)
        request = gr.Request(session_hash="s", headers={"accept-language": "en"})
        outputs = list(ChatApp(assistant, warmup).answer(
            "How many papers did CVPR 2023 accept?", "openai", 4, [], request))
    assert answer.mode == "extractive" and "HTTP 401" in (answer.notice or "")
    shown = [answer.text, answer.notice or "", repr(config), repr(assistant.config),
             json.dumps(outputs, default=str, ensure_ascii=False), caplog.text]
    for part in (SECRET, SECRET[:12], SECRET[-8:]):
        assert not any(part in text for text in shown), part
    assert "401" in json.dumps(outputs, default=str)  # the reason itself is still shown
