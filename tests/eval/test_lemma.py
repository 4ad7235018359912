"""Our lemmatiser gives upstream's (spaCy en_core_web_sm) lemmas on the whole class vocabulary."""

import json
from pathlib import Path

from allseeing.eval.metrics.lemma import lemmas, load_synonyms, tokens

TABLE = json.loads((Path(__file__).parent / "data" / "spacy_lemmas.json").read_text())


def test_every_phrase_of_the_class_vocabulary_lemmatises_as_spacy_does():
    assert len(TABLE["lemmas"]) > 400
    mismatches = {
        p: (spacy, lemmas(p)) for p, spacy in TABLE["lemmas"].items() if [w.lower() for w in spacy] != lemmas(p)
    }
    assert mismatches == {}


def test_tokens_split_like_spacy():
    assert tokens("the man's hat, red") == ["the", "man", "'s", "hat", ",", "red"]


def test_synonym_table():
    synonyms = load_synonyms()
    assert len({v for v in synonyms.values()}) == 80
    assert (synonyms["table"], synonyms["phone"], synonyms["houseplant"], synonyms["stoplight"]) == (
        "dining table",
        "cell phone",
        "potted plant",
        "traffic light",
    )
    assert synonyms["person"] == "person"


def test_later_lines_win_for_a_repeated_synonym(tmp_path):
    path = tmp_path / "syn.txt"
    path.write_text("cup, glass\nwine glass, glass\n")
    assert load_synonyms(path)["glass"] == "wine glass"
