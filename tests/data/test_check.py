"""The data checker finds each kind of problem, names the record, and exits non-zero."""

import json

from PIL import Image

from allseeing.cli import main
from allseeing.data.check import check_manifest

GOOD = {
    "id": "ok",
    "image": "a.png",
    "conversations": [
        {"from": "human", "value": "<image>\nWhere is the dog?"},
        {"from": "gpt", "value": "<ref>dog</ref><box>[[1, 2, 3, 4]]</box>"},
    ],
}


def sample(**changes):
    record = json.loads(json.dumps(GOOD))
    record.update(changes)
    return record


def turns(*values):
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": v} for i, v in enumerate(values)]


def write(tmp_path, records, name="m.json"):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "broken.png").write_bytes(b"no image")
    path = tmp_path / name
    if name.endswith(".jsonl"):
        path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    else:
        path.write_text(json.dumps(records))
    return path


def test_a_clean_manifest_passes(tmp_path):
    text_only = {"id": "text-only", "conversations": turns("hi", "hello")}
    report = check_manifest(write(tmp_path, [GOOD, text_only]), tmp_path, progress=False)
    assert report.ok
    assert (report.records, report.images, report.turns) == (2, 1, 4)


def test_each_problem_is_found_and_named(tmp_path):
    records = [
        sample(id="missing-image", image="nope.png"),
        sample(id="broken-image", image="broken.png"),
        sample(id="roles", conversations=[{"from": "gpt", "value": "<image>\nx"}, {"from": "human", "value": "y"}]),
        sample(id="two-markers", conversations=turns("<image>\nx", "y", "<image> again", "z")),
        sample(id="no-marker", conversations=turns("x", "y")),
        sample(id="out-of-range", conversations=turns("<image>\nx", "<ref>dog</ref><box>[[1, 2, 3, 1000]]</box>")),
        sample(id="dangling", conversations=turns("<image>\nx", "y", "z")),
        {"conversations": turns("a", "b")},
        ["not", "a", "sample"],
    ]
    report = check_manifest(write(tmp_path, records), tmp_path, progress=False)
    assert not report.ok
    assert report.bad_records == len(records)
    assert dict(report.problems) == {
        "image": 2,
        "roles": 3,
        "image_marker": 3,
        "rec": 1,
        "missing_id": 1,
        "not_a_sample": 1,
    }
    text = "\n".join(report.examples)
    assert f"{tmp_path / 'm.json'}[0]: image {tmp_path / 'nope.png'} does not exist" in text
    assert "[5]: turn 1: offset 14: box [1, 2, 3, 1000] is outside the square999 range 0..999" in text


def test_jsonl_bad_lines_are_counted_not_fatal(tmp_path, capsys):
    path = write(tmp_path, [GOOD, "{not json", GOOD], name="m.jsonl")
    assert main(["data", "check", str(path), "--image-root", str(tmp_path)]) == 1
    report = json.loads(capsys.readouterr().out)["manifests"][str(path)]
    assert report["records"] == 3 and report["bad_records"] == 1
    assert report["problems"] == {"unreadable": 1}
    assert report["examples"][0].startswith(f"{path}:2: not JSON")


def test_an_unreadable_manifest_is_one_line(tmp_path, capsys):
    path = tmp_path / "m.json"
    path.write_text('{"not": "a list"}')
    assert main(["data", "check", str(path), "--image-root", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"allseeing data: error: {path}: expected a JSON array of samples, found dict\n"


def test_a_broken_line_is_named_by_its_file_line_and_column_only(tmp_path, capsys):
    # A record holding U+2028 stays one line (text-mode iteration would not split there, str.splitlines would).
    odd = json.dumps(sample(id="odd\u2028x"), ensure_ascii=False)
    path = write(tmp_path, [odd, GOOD, '{"id": 3,'], name="m.jsonl")
    assert main(["data", "check", str(path), "--image-root", str(tmp_path)]) == 1
    report = json.loads(capsys.readouterr().out)["manifests"][str(path)]
    assert report["records"] == 3
    assert report["examples"] == [f"{path}:3: not JSON at column 10: Expecting property name enclosed in double quotes"]


def test_an_empty_manifest_says_so(tmp_path, capsys):
    for name in ("m.jsonl", "m.json"):
        path = tmp_path / name
        path.write_text("\n  \n")
        assert main(["data", "check", str(path), "--image-root", str(tmp_path)]) == 1
        assert capsys.readouterr().err == f"allseeing data: error: {path}: empty file, no samples\n"


def test_an_image_that_training_would_refuse_is_a_problem_here(tmp_path, capsys):
    Image.new("RGB", (4000, 100)).save(tmp_path / "strip.png")
    path = write(tmp_path, [sample(image="strip.png")])
    assert main(["data", "check", str(path), "--image-root", str(tmp_path)]) == 1
    report = json.loads(capsys.readouterr().out)["manifests"][str(path)]
    assert "sides differ by more than 32 times" in report["examples"][0]
