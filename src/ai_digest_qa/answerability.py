"""Whether the retrieved sources answer a question, from evidence rather than the LLM.

Three checks, each a general mechanism:

1. a Latin-script name the index never mentions (``FIFA``, ``H100``): abstain, naming it;
2. no sentence whose window mentions the question's constraints (another year's edition,
   another model's score): abstain, "the sources say nothing about X with Y";
3. a relevance score below a calibrated threshold: off-topic requests ("红烧肉怎么做").

The relevance score is a logistic model over a few signals of the best evidence: the
share of the question's terms it covers, the embedder's similarity, and the share of the
question's terms the index never contains. Its weights and threshold live in
``data/relevance.json`` and are fitted on the dev set's tune half by
``ai-digest-qa eval --calibrate`` (:func:`fit`), never by hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .evidence import Evidence, QuestionProfile


@dataclass(frozen=True)
class Signals:
    """What the relevance model reads for one question."""

    mass: float  # weighted share of all question terms in the best evidence's window
    coverage: float  # the same over the terms the evidence's language could contain
    similarity: float  # embedder cosine of question and best evidence
    unknown_share: float  # share of question terms the index never contains
    cross_language: bool  # best evidence in the other language

    @classmethod
    def of(cls, profile: QuestionProfile, best: Evidence, best_language: str) -> Signals:
        return cls(best.mass, best.coverage, best.similarity, profile.unknown_share,
                   best_language != profile.language)

    def vector(self) -> np.ndarray:
        cross = float(self.cross_language)
        # Similarities of one embedder sit in a narrow band; centre and scale them.
        similarity = (self.similarity - 0.85) * 10
        return np.array([self.mass, self.coverage, similarity, self.unknown_share, cross,
                         cross * self.coverage], dtype=np.float64)


FEATURES = ("mass", "coverage", "similarity", "unknown_share", "cross_language",
            "cross_coverage")


@dataclass(frozen=True)
class RelevanceModel:
    """p(answerable) = sigmoid(bias + weights . signals); answerable when p >= threshold."""

    weights: tuple[float, ...]
    bias: float
    threshold: float
    # At or above this, the LLM's "the quotes do not answer" is not believed (the quotes
    # are shown instead): the small model also says it of quotes that do answer.
    doubt_threshold: float = 0.5
    fitted_on: str = ""

    def probability(self, signals: Signals) -> float:
        z = self.bias + float(np.dot(self.weights, signals.vector()))
        return 1.0 / (1.0 + math.exp(-z))

    def answerable(self, signals: Signals) -> bool:
        return self.probability(signals) >= self.threshold

    def to_json(self) -> dict[str, object]:
        return {"features": list(FEATURES), **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> RelevanceModel:
        if list(data.get("features", [])) != list(FEATURES):  # type: ignore[call-overload]
            raise ValueError(f"relevance model for features {data.get('features')}, "
                             f"expected {list(FEATURES)}; recalibrate")
        weights = tuple(float(w) for w in data["weights"])  # type: ignore[attr-defined]
        return cls(weights, float(data["bias"]), float(data["threshold"]),  # type: ignore[arg-type]
                   float(data.get("doubt_threshold", 0.5)),  # type: ignore[arg-type]
                   str(data.get("fitted_on", "")))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")


@lru_cache(maxsize=1)
def default_model() -> RelevanceModel:
    text = resources.files("ai_digest_qa").joinpath("data/relevance.json").read_text("utf-8")
    return RelevanceModel.from_json(json.loads(text))


def fit(signals: Sequence[Signals], answerable: Sequence[bool],
        max_false_abstention: float = 0.0, l2: float = 0.1, steps: int = 4000,
        fitted_on: str = "") -> RelevanceModel:
    """Logistic regression (L2, gradient descent), then the highest threshold that keeps
    false abstentions on these questions at or below ``max_false_abstention``.

    The default allows none: fitted on a few dozen questions, a threshold that gives up
    one answerable tune question gave up four of fifty on the report half.
    """
    if not signals or len(set(answerable)) < 2:
        raise ValueError("calibration needs answerable and unanswerable questions")
    x = np.stack([s.vector() for s in signals])
    y = np.array(answerable, dtype=np.float64)
    w = np.zeros(x.shape[1])
    b = 0.0
    rate = 0.5
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        gradient = p - y
        w -= rate * (x.T @ gradient / len(y) + l2 * w)
        b -= rate * float(gradient.mean())
    probabilities = 1.0 / (1.0 + np.exp(-(x @ w + b)))
    positives = np.sort(probabilities[y == 1])
    allowed = int(math.floor(max_false_abstention * len(positives)))
    # Abstaining below the threshold: at most ``allowed`` answerable questions fall there.
    threshold = float(positives[allowed]) if allowed < len(positives) else 0.0
    threshold = max(0.0, threshold - 1e-9)
    return RelevanceModel(tuple(float(v) for v in w), b, threshold, fitted_on=fitted_on)


def fit_doubt(relevances: Sequence[float], answerable: Sequence[bool],
              false_abstention_cost: float = 3.0) -> float:
    """The doubt threshold from questions where the LLM said "not found": its verdict is
    believed below the threshold. Each unanswerable question believed counts 1, each
    answerable one ``false_abstention_cost``; the best threshold wins (ties: the lower)."""
    best, best_gain = 0.0, 0.0
    for threshold in sorted({*relevances, 1.0 + 1e-9}):
        gain = sum(1.0 if not a else -false_abstention_cost
                   for p, a in zip(relevances, answerable) if p < threshold)
        if gain > best_gain:
            best, best_gain = threshold, gain
    return best
