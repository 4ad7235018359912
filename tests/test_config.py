"""The one typed loader of presets and suites: nested entries, unknown and missing keys named by their place."""

from dataclasses import dataclass, field

import pytest

from allseeing.config import ConfigError, load_config
from allseeing.eval.report import Suite


@dataclass
class Inner:
    name: str
    size: int = 1


@dataclass
class Outer:
    items: list[Inner] = field(default_factory=list)
    scale: tuple[float, ...] = (1.0,)
    label: str | None = None

    def check(self) -> "Outer":
        if any(item.size < 0 for item in self.items):
            raise ConfigError("items: a size is negative")
        return self


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_nested_entries_are_typed_and_checked(tmp_path):
    loaded = load_config(write(tmp_path, "items: [{name: a, size: '3'}, {name: b}]\nscale: [1, 2]\n"), [], Outer)
    assert loaded == Outer([Inner("a", 3), Inner("b", 1)], (1.0, 2.0))
    assert load_config(None, ['items=[{"name": "c"}]', "label=x"], Outer).items == [Inner("c")]
    with pytest.raises(ConfigError, match="items: a size is negative"):
        load_config(None, ['items=[{"name": "c", "size": -1}]'], Outer)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("items: [{name: a}, {name: b, colour: red}]", r"c.yaml: items\[1\]: unknown keys \['colour'\]"),
        ("items: [{size: 2}]", r"c.yaml: items\[0\]: missing keys \['name'\]"),
        ("items: [{name: a, size: two}]", r"c.yaml: items\[0\].size: expected int, got 'two'"),
        ("items: {name: a}", r"items: expected a list"),
        ("label: [1, 2]", r"label: expected text"),
        ("- 1", r"a preset is a mapping"),
    ],
)
def test_a_bad_entry_is_named_by_its_place(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), [], Outer)


def test_the_shipped_suite_reads_and_a_bad_suite_says_where(tmp_path):
    suite = Suite.read("configs/eval/synth.yaml")
    assert suite.tasks and suite.tasks[0].box_format == "square999"
    base = "image_root: .\nout: o\nmodel: null\ntasks:\n"
    with pytest.raises(ConfigError, match=r"tasks\[0\]: unknown keys \['question'\]"):
        Suite.read(write(tmp_path, base + "  - {name: a, task: crpe, question: q.jsonl}\n"))
    with pytest.raises(ConfigError, match="unknown task 'cpre'"):
        Suite.read(write(tmp_path, base + "  - {name: a, task: cpre, questions: q.jsonl}\n"))
    twice = "  - {name: a, task: crpe, questions: q.jsonl}\n" * 2
    with pytest.raises(ConfigError, match=r"names \['a'\] are used twice"):
        Suite.read(write(tmp_path, base + twice))


@dataclass
class Strict:
    count: int = 1
    pair: tuple[float, float] = (0.0, 1.0)
    text: str = "a"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pair: [0.9]", r"pair: expected 2 values, got 1"),
        ("text: null", r"text: expected text, got None"),
        ("count: true", r"count: expected int, got True"),
    ],
)
def test_values_are_held_to_their_types(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), [], Strict)
    assert load_config(None, ["pair=[0.5, 2]"], Strict).pair == (0.5, 2.0)
