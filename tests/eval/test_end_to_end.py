"""Predict and score every task on the synthetic world's evaluation files with a tiny model, through the CLI."""

import json

import pytest
import yaml

from allseeing.cli import main
from allseeing.data.synth.generate import generate
from allseeing.eval.registry import REGION_TASKS
from tests.conftest import allseeing_on_two_processes

pytestmark = pytest.mark.slow  # see pyproject.toml: the full run (.ci/run) includes it

CONTRACT_KEYS = {
    "crpe_exist": {"exist", "subject", "predicate", "object", "overall", "per_row"},
    "crpe_relation": {"exist", "subject", "predicate", "object", "overall", "per_row"},
    "grounding": {"average", "query_check"},
    "region_caption": {"synth_test"},
    "vcr": {"q2a", "qa2r", "q2ar"},
    "psg": {"recall", "mean_recall", "num_pred_tuples", "correct_format_ratio", "per_predicate"},
    "psg_pred_cls": {"recall@20", "recall@50", "recall@100", "mean_recall@20", "mean_recall@50", "mean_recall@100"},
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("e2e")
    generate(root / "synth", n_train=2, n_test=8, seed=11, workers=1, progress=False)
    eval_dir = root / "synth" / "eval"
    tasks = [
        {"name": "crpe_exist", "task": "crpe", "questions": str(eval_dir / "crpe/crpe_exist.jsonl")},
        {"name": "crpe_relation", "task": "crpe", "questions": str(eval_dir / "crpe/crpe_relation.jsonl")},
        {"name": "grounding", "task": "grounding", "questions": str(eval_dir / "grounding/grounding_eval.jsonl")},
        {
            "name": "region_caption",
            "task": "region_caption",
            "questions": str(eval_dir / "region_caption/region_caption_eval_square_pad.jsonl"),
        },
        {"name": "vcr", "task": "vcr", "questions": str(eval_dir / "vcr/VCR_val_square_pad.jsonl")},
        {"name": "psg", "task": "psg", "questions": str(eval_dir / "psg/psg_eval.jsonl"), "max_new_tokens": 48},
        {
            "name": "psg_pred_cls",
            "task": "psg_pred_cls",
            "questions": str(eval_dir / "psg_pred_cls/psg_pred_cls_full_square_pad.jsonl"),
        },
    ]
    path = root / "suite.yaml"
    out = root / "out"
    path.write_text(
        yaml.safe_dump(
            {
                "model": str(tiny_model_dir),
                "image_root": str(root / "synth"),
                "out": str(out),
                "batch_size": 4,
                "tasks": tasks,
            }
        )
    )
    return path, out


def test_every_task_predicts_and_scores(suite, capsys, monkeypatch):
    import allseeing.model.build as build

    loads = []
    real_load = build.load
    monkeypatch.setattr(build, "load", lambda *args, **kwargs: loads.append(args) or real_load(*args, **kwargs))
    path, out = suite
    assert main(["eval", "run", "--suite", str(path)]) == 0
    assert len(loads) == 1  # one model load for the seven tasks
    report = json.loads(capsys.readouterr().out)
    assert set(report["results"]) == set(CONTRACT_KEYS)
    assert {scores["official"]["task"] for scores in report["results"].values()} == {t.name for t in REGION_TASKS}
    for name, by_protocol in report["results"].items():
        assert set(by_protocol) == {"official", "fixed"}
        for protocol, scores in by_protocol.items():
            assert CONTRACT_KEYS[name] <= set(scores), name
            assert scores["coverage"] == 100.0 and scores["protocol"] == protocol
    assert (out / "report.json").is_file()
    table = (out / "report.md").read_text()
    assert "## crpe_relation (crpe)" in table and "| official |" in table and "| fixed |" in table
    assert "| average | query_check/one_box | query_check/images |" in table
    line = json.loads((out / "psg_pred_cls.jsonl").read_text().splitlines()[0])
    assert len(line["text"]) == len(line["scores"]) == len(line["sum_logprobs"]) == 12
    assert line["scores"] == sorted(line["scores"], reverse=True)
    assert line["metadata"]["template"] == "vicuna_v1" and line["model_id"]


def predict_crpe(model_dir, questions, out) -> list[str]:
    """``allseeing predict crpe`` arguments on the suite's synthetic images (``--out`` to add)."""
    return [
        "predict",
        "crpe",
        "--model",
        str(model_dir),
        "--questions",
        questions,
        "--image-root",
        str(out.parent / "synth"),
    ]


def test_a_rerun_resumes_and_answers_nothing_new(suite, tiny_model_dir, capsys):
    path, out = suite
    questions = yaml.safe_load(path.read_text())["tasks"][0]["questions"]
    predictions = out / "crpe_exist.jsonl"
    lines = predictions.read_text().splitlines(keepends=True)
    predictions.write_text("".join(lines[:-3]) + lines[-3][:10])  # a run killed while writing
    argv = [*predict_crpe(tiny_model_dir, questions, out), "--out", str(predictions)]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["answered_now"], summary["already_answered"]) == (3, len(lines) - 3)
    assert [json.loads(x)["question_id"] for x in predictions.read_text().splitlines()] == [
        json.loads(x)["question_id"] for x in lines
    ]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["answered_now"] == 0


def test_eval_score_cli_writes_the_scores(suite, tmp_path, capsys):
    path, out = suite
    questions = yaml.safe_load(path.read_text())["tasks"][4]["questions"]
    target = tmp_path / "scores.json"
    argv = [
        "eval",
        "score",
        "vcr",
        "--questions",
        questions,
        "--predictions",
        str(out / "vcr.jsonl"),
        "--protocol",
        "fixed",
        "--out",
        str(target),
    ]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(target.read_text()) and printed["protocol"] == "fixed"


def test_two_processes_under_torchrun_merge_into_the_same_file(suite, tiny_model_dir, tmp_path):
    path, out = suite
    questions = yaml.safe_load(path.read_text())["tasks"][0]["questions"]
    argv = predict_crpe(tiny_model_dir, questions, out)
    allseeing_on_two_processes(*argv, "--out", str(tmp_path / "sharded.jsonl"))
    assert (tmp_path / "sharded.jsonl.rank0-of-2").is_file() and (tmp_path / "sharded.jsonl.rank1-of-2").is_file()
    assert main([*argv, "--out", str(tmp_path / "single.jsonl")]) == 0
    single = [json.loads(x) for x in (tmp_path / "single.jsonl").read_text().splitlines()]
    sharded = [json.loads(x) for x in (tmp_path / "sharded.jsonl").read_text().splitlines()]
    assert [(r["question_id"], r["text"]) for r in sharded] == [(r["question_id"], r["text"]) for r in single]
