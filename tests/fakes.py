"""Small scripted stand-ins for the embedder and the LLM, for fast deterministic tests.

The real components are tested end to end elsewhere (marked slow); these make every
branch of the pipeline reachable in milliseconds.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ai_digest_qa import Assistant, load_config
from ai_digest_qa.index import UpdateReport
from ai_digest_qa.llm import LLMError
from ai_digest_qa.textutils import keyword_tokens


class FakeEmbedder:
    """Hashed bag of keyword tokens: texts sharing words are close, others are not."""

    name = "fake:hashed-tokens"
    dimension = 64

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in keyword_tokens(text) or ["<empty>"]:
                digest = hashlib.sha256(token.encode()).digest()
                vectors[row, digest[0] % self.dimension] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts)


class ScriptedLLM:
    """Replies from a queue, in order; records every request. An exception in the queue
    is raised instead of replying. Streams each reply in pieces of a few characters."""

    name = "scripted"

    def __init__(self, *replies: str | Exception) -> None:
        self.replies = list(replies)
        self.requests: list[list[dict[str, str]]] = []
        self.max_tokens: list[int] = []  # each request's

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float,
               timeout: float, cancel: threading.Event | None = None) -> Iterator[str]:
        self.requests.append(messages)
        self.max_tokens.append(max_tokens)
        if not self.replies:
            raise AssertionError(f"unexpected LLM call: {messages[-1]['content'][:200]}")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        for start in range(0, len(reply), 4):
            if cancel is not None and cancel.is_set():
                return
            yield reply[start:start + 4]


def failing(message: str = "the scripted model failed") -> LLMError:
    return LLMError(message)


TINY_CORPUS = {
    "icml.txt": (
        "ICML 2024 论文亮点\n\n"
        "ICML 是机器学习国际会议,目前正在奥地利首都维也纳举行。"
        "例如,今年的版本提交了 9,653 篇论文,仅接受 2,609 篇,接受率为 27.03%。\n\n"
        "1.3 大模型的挑战\n\n"
        "大模型的训练成本很高,推理也需要大量显存。\n"
    ),
    "transparency.md": (
        "# Transparency index\n\n"
        "The foundation model transparency index scored Llama 2 at 54, the highest score. "
        "GPT-4 scored 48 and ranked third.\n\n"
        "## Context windows\n\n"
        "Claude 2 supports a context window of 100k tokens and accepts PDF files.\n"
    ),
    "dpo.txt": (
        "直接偏好优化\n\n"
        "直接偏好优化(DPO)绕过了奖励模型,直接在偏好数据上优化语言模型。它比RLHF更容易实现。\n"
    ),
}


def tiny_assistant(folder: Path, **settings: object) -> Assistant:
    """An assistant over :data:`TINY_CORPUS` with the fake embedder (index built here)."""
    corpus = folder / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for name, text in TINY_CORPUS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    assistant = Assistant(load_config(corpus_dir=corpus, index_dir=folder / "index",
                                      temperature=0.0, **settings))
    assistant._embedder = FakeEmbedder()  # the seam for tests: no model is loaded
    assistant.ensure_index()
    return assistant


def fake_assistant(folder: Path, files: dict[str, bytes], **settings: object
                   ) -> tuple[Assistant, UpdateReport]:
    """An assistant over ``files`` (name -> bytes, written to ``folder/corpus``) with the
    fake embedder, and the report of building its index."""
    corpus = folder / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (corpus / name).write_bytes(data)
    assistant = Assistant(load_config(corpus_dir=corpus, index_dir=folder / "index",
                                      temperature=0.0, **settings))
    assistant._embedder = FakeEmbedder()
    return assistant, assistant.ensure_index()
