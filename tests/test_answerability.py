"""The calibrated relevance model (answerability.py)."""

import json

import pytest

from ai_digest_qa.answerability import (
    RelevanceModel,
    Signals,
    default_model,
    fit,
    fit_doubt,
)


def signals(mass, unknown=0.0, similarity=0.85, cross=False):
    return Signals(mass, mass, similarity, unknown, cross)


def test_fit_separates_relevant_from_off_topic_and_bounds_false_abstentions():
    answerable = [signals(0.3 + 0.02 * i) for i in range(30)]
    off_topic = [signals(0.05 + 0.01 * i, unknown=0.8) for i in range(10)]
    model = fit(answerable + off_topic, [True] * 30 + [False] * 10,
                max_false_abstention=0.05)
    rejected = sum(not model.answerable(s) for s in answerable)
    assert rejected <= 1  # 5% of 30
    assert sum(not model.answerable(s) for s in off_topic) >= 9
    assert model.probability(signals(0.9)) > model.probability(signals(0.1, unknown=0.9))


def test_fit_needs_both_kinds_of_question():
    with pytest.raises(ValueError, match="answerable and unanswerable"):
        fit([signals(0.5)], [True])


def test_the_model_round_trips_and_refuses_other_features(tmp_path):
    model = RelevanceModel((0.1, 0.2, 0.3, 0.4, 0.5, 0.6), -1.0, 0.7, 0.8, "test")
    path = tmp_path / "relevance.json"
    model.save(path)
    assert RelevanceModel.from_json(json.loads(path.read_text())) == model
    data = json.loads(path.read_text())
    data["features"] = ["mass"]
    with pytest.raises(ValueError, match="recalibrate"):
        RelevanceModel.from_json(data)


def test_the_shipped_model_is_a_calibrated_one():
    model = default_model()
    assert 0.0 < model.threshold < 1.0 and "tune" in model.fitted_on
    assert any(w != 0.0 for w in model.weights)


def test_the_doubt_threshold_believes_the_model_only_where_it_pays():
    # Unanswerable questions sit at low relevance, answerable ones high.
    relevances = [0.2, 0.3, 0.4, 0.9, 0.95]
    labels = [False, False, False, True, True]
    assert 0.4 < fit_doubt(relevances, labels) <= 0.9
    assert fit_doubt([0.9, 0.95], [True, True]) == 0.0  # never believed
