"""Measure the term bridge's thresholds (bridge.MIN_SCORE, bridge.MIN_MARGIN) on the
glossary: how often a Chinese term is given the right English word, a wrong one, or none.

Half the glossary's pairs serve as the hubness reference, the other half are tested: each
test term meets its own translation among 40 other test words ("present"), or the 40
others alone ("absent", where any translation is wrong). Run with the embedder the
assistant uses:

    python scripts/calibrate-bridge.py
"""

from __future__ import annotations

import random

import numpy as np

from ai_digest_qa import backends
from ai_digest_qa.bridge import MIN_MARGIN, MIN_SCORE, best_match, csls
from ai_digest_qa.config import load_config
from ai_digest_qa.glossary import default_glossary

DISTRACTORS = 40


def main() -> None:
    embedder = backends.create("embedder", load_config())
    pairs = [(zh, terms[0]) for zh, terms in default_glossary().chinese.items()]
    random.Random(1).shuffle(pairs)
    reference, test = pairs[::2], pairs[1::2]

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray(embedder.embed_passages(texts))

    ref_zh, ref_en = embed([p[0] for p in reference]), embed([p[1] for p in reference])
    zh, en = embed([p[0] for p in test]), embed([p[1] for p in test])
    # The bridge's own scoring, with the reference half as the hubness reference.
    directions = {"zh->en": csls(zh, en, ref_en, ref_zh), "en->zh": csls(en, zh, ref_zh, ref_en)}
    print(f"{embedder.name}: {len(test)} test terms, {len(reference)} reference pairs, "
          f"{DISTRACTORS} other words each; current setting {MIN_SCORE}/{MIN_MARGIN}")
    for direction, scores in directions.items():
        print(f"{direction}: min_score min_margin | present: right wrong none | absent: wrong")
        for min_score in (0.0, 0.02, 0.04, 0.06):
            for margin in (0.0, 0.02, 0.03, 0.04):
                print(f"{min_score:9.2f} {margin:10.2f} | "
                      f"{_outcomes(scores, min_score, margin, True)} | "
                      f"{_outcomes(scores, min_score, margin, False)}")


def _outcomes(scores: np.ndarray, min_score: float, margin: float, present: bool) -> str:
    rng = np.random.default_rng(0)
    right = wrong = none = 0
    count = len(scores)
    for term in range(count):
        words = list(rng.choice([w for w in range(count) if w != term], DISTRACTORS,
                                replace=False)) + ([term] if present else [])
        best = best_match(scores[term, words], min_score, margin)
        if best is None:
            none += 1
        elif words[best] == term:
            right += 1
        else:
            wrong += 1
    return f"{right:5d} {wrong:5d} {none:4d}" if present else f"{wrong:5d} of {count}"


if __name__ == "__main__":
    main()
