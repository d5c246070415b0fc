"""What N concurrent API clients see, measured on a real server (``bench --api-clients``).

The server (server.py: API, page and MCP on one port) runs in this process on a free
loopback port. The same questions are first asked one at a time, then all at once: with
one answer slot on two cores the concurrent run should take about the sequential run's
total, with no request failing and each client's wait growing with its place in line.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from .assistant import Assistant
from .config import Config


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _ServerThread:
    """uvicorn serving :func:`server.build_app` in a thread, until :meth:`stop`."""

    def __init__(self, config: Config, assistant: Assistant) -> None:
        import uvicorn

        from .server import build_app

        app, _ = build_app(config, assistant)  # the loaded models, not a second copy
        self.url = f"http://127.0.0.1:{config.ui_port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1",
                                                     port=config.ui_port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self, timeout: float = 300.0) -> _ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # until the index is ready (503 before)
            try:
                if httpx.post(f"{self.url}/v1/retrieve", json={"query": "probe"},
                              timeout=10).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError("the benchmark's server did not become ready")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


def _ask(url: str, question: str, max_tokens: int) -> tuple[float, int, str]:
    started = time.perf_counter()
    response = httpx.post(f"{url}/v1/chat/completions", timeout=900, json={
        "model": "ai-digest-qa", "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": question}]})
    text = response.json()["choices"][0]["message"]["content"] if response.is_success else ""
    return time.perf_counter() - started, response.status_code, text


def bench_api_clients(assistant: Assistant, questions: list[str], max_tokens: int = 80
                      ) -> dict[str, Any]:
    """Each question alone, then all at once from len(questions) clients, through a
    server over ``assistant`` (its index and models, already loaded)."""
    from dataclasses import replace

    if not questions:
        raise ValueError("bench_api_clients needs at least one question")
    # On loopback and without keys: the benchmark's own clients send none.
    config = replace(assistant.config, ui_port=_free_port(), ui_host="127.0.0.1",
                     api_keys="", ui_auth="")
    server = _ServerThread(config, assistant).start()
    try:
        _ask(server.url, "warm-up: what is DPO?", max_tokens)  # the model loads on first use
        alone = [_ask(server.url, q, max_tokens) for q in questions]
        started = time.perf_counter()
        with ThreadPoolExecutor(len(questions)) as pool:
            together = list(pool.map(lambda q: _ask(server.url, q, max_tokens), questions))
        wall = time.perf_counter() - started
    finally:
        server.stop()
    sequential = sum(seconds for seconds, _, _ in alone)
    waits = sorted(seconds for seconds, _, _ in together)
    return {"clients": len(questions), "sequential_total_s": sequential,
            "concurrent_wall_s": wall, "wall_ratio_concurrent_to_sequential":
                wall / sequential if sequential else float("nan"),
            "alone_s": [s for s, _, _ in alone], "concurrent_s": [s for s, _, _ in together],
            "fastest_s": waits[0], "median_s": waits[len(waits) // 2], "slowest_s": waits[-1],
            "statuses": [status for _, status, _ in together],
            "same_answer_as_alone": sum(a[2] == b[2] for a, b in zip(alone, together))}


def api_clients_markdown(result: dict[str, Any]) -> list[str]:
    ok = sum(status == 200 for status in result["statuses"])
    return [
        f"## {result['clients']} concurrent API clients", "",
        "| | seconds |", "| --- | --- |",
        f"| the questions one at a time, total | {result['sequential_total_s']:.1f} |",
        f"| all at once, until the last answer | {result['concurrent_wall_s']:.1f} |",
        f"| each client's wait: fastest / median / slowest | {result['fastest_s']:.1f} / "
        f"{result['median_s']:.1f} / {result['slowest_s']:.1f} |", "",
        f"All at once / one at a time: **{result['wall_ratio_concurrent_to_sequential']:.2f}x**"
        f"; {ok} of {result['clients']} answered (HTTP 200), "
        f"{result['same_answer_as_alone']} with the same text as alone.", ""]
