"""Lemmas for PSG scoring: spaCy's pipeline is upstream's; the approximation stands in without it."""

import json
from pathlib import Path

import pytest

from allseeing.eval.metrics import lemma
from allseeing.eval.metrics.lemma import APPROXIMATION, LemmatizerError, get_lemmatizer, load_synonyms, tokens

TABLE = json.loads((Path(__file__).parent / "data" / "spacy_lemmas.json").read_text())


def test_the_approximation_matches_spacy_on_the_class_vocabulary_lower_cased():
    assert len(TABLE["lemmas"]) > 400
    mismatches = {
        p: (spacy, list(APPROXIMATION.lemmas(p)))
        for p, spacy in TABLE["lemmas"].items()
        if [w.lower() for w in spacy] != list(APPROXIMATION.lemmas(p))
    }
    assert mismatches == {}


def test_the_approximation_reads_a_word_by_its_place_as_spacy_does():
    assert APPROXIMATION.lemmas("building") == ("build",)
    assert APPROXIMATION.lemmas("the building") == ("the", "building")
    assert APPROXIMATION.lemmas("potted plant") == ("pot", "plant")
    assert APPROXIMATION.lemmas("the potted plant") == ("the", "potted", "plant")


def test_spacy_is_used_when_installed_and_keeps_context_and_case():
    found = get_lemmatizer("auto")
    assert found.name.startswith("spacy ") and "core_web_sm" in found.name
    assert found.lemmas("building") == ("build",)
    assert found.lemmas("the building") == ("the", "building")
    assert found.lemmas("Dog") == ("Dog",)


def test_without_spacy_auto_announces_the_approximation_once_and_spacy_is_an_error(monkeypatch, capsys):
    monkeypatch.setattr(lemma, "_spacy_lemmatizer", lambda: None)
    lemma._announced_approximation.cache_clear()
    assert get_lemmatizer("auto") is APPROXIMATION
    assert get_lemmatizer("auto") is APPROXIMATION
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and "approximated" in warning and "allseeing[psg]" in warning
    with pytest.raises(LemmatizerError, match="not installed"):
        get_lemmatizer("spacy")
    lemma._announced_approximation.cache_clear()


def test_tokens_split_like_spacy():
    assert tokens("the man's hat, red") == ["the", "man", "'s", "hat", ",", "red"]


def test_official_reads_upstreams_synonym_table_and_fixed_ours():
    official, fixed = load_synonyms(protocol="official"), load_synonyms(protocol="fixed")
    for table in (official, fixed):
        assert len(set(table.values())) == 80
        assert (table["table"], table["phone"], table["person"]) == ("dining table", "cell phone", "person")
    assert official["houseplant"] == "potted plant" and official["stoplight"] == "traffic light"
    assert official["guy"] == "person" and "men" not in official  # upstream's table has no plurals
    assert fixed["men"] == "person"


def test_later_lines_win_for_a_repeated_synonym(tmp_path):
    path = tmp_path / "syn.txt"
    path.write_text("cup, glass\nwine glass, glass\n")
    assert load_synonyms(path)["glass"] == "wine glass"
