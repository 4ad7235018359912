"""The twelve general benchmarks end to end: the synthetic versions read as their scorers expect, and ``eval run``
over configs/eval/general.yaml answers and scores all of them with the bundled model."""

import json
from pathlib import Path

import pytest
import yaml

from allseeing.cli import main
from allseeing.data.synth.general import GENERAL_FILES, true_answer
from allseeing.eval.registry import GENERAL_TASKS, TASKS
from allseeing.eval.report import PUBLISHED_ASMV2
from allseeing.eval.score import score_file
from tests.infer.stub_openai import ScriptedServer


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from allseeing.data.synth.generate import generate

    root = tmp_path_factory.mktemp("general") / "synth"
    generate(root, n_train=1, n_test=6, seed=4, workers=1, progress=False)
    return root


def test_every_synthetic_file_is_read_by_its_scorer_and_the_truth_scores_full_marks(synth, tmp_path):
    assert set(GENERAL_FILES) == {task.name for task in GENERAL_TASKS} == set(PUBLISHED_ASMV2)
    for name, relative in GENERAL_FILES.items():
        if name in ("llava_wild", "mmvet"):  # judged: see the suite test
            continue
        path = synth / "eval" / "general" / relative
        questions = TASKS[name].read_questions(path)
        assert questions, name
        predictions = tmp_path / f"{name}.jsonl"
        predictions.write_text(
            "".join(
                json.dumps({"question_id": q["question_id"], "text": true_answer(name, q)}) + "\n" for q in questions
            )
        )
        metric = PUBLISHED_ASMV2[name][0]
        for protocol in ("official", "fixed"):
            scores = score_file(name, path, predictions, protocol)
            full = 200.0 * len({q["category"] for q in questions}) if name == "mme" else 100.0
            assert scores[metric] == full and scores["invalid"] == 0, (name, protocol, scores)


def judge_reply(text: str) -> str:
    """A scripted judge: LLaVA-Bench reviews get "8 6", MM-Vet's grader 0.5."""
    return "8 6\nThe first answer is more complete." if "Assistant 1" in text else "0.5"


@pytest.mark.slow
def test_the_general_suite_runs_end_to_end_with_the_bundled_model(synth, tmp_path, capsys):
    suite = yaml.safe_load(Path("configs/eval/general.yaml").read_text(encoding="utf-8"))
    judge = ScriptedServer(reply=judge_reply)
    try:
        suite["image_root"] = str(synth)
        suite["out"] = str(tmp_path / "out")
        for entry in suite["tasks"]:
            entry["questions"] = str(synth.parent / entry["questions"])
            if entry["task"] == "llava_wild":
                entry.update(judge_base_url=judge.url, judge_model="judge")
        path = tmp_path / "general.yaml"
        path.write_text(yaml.safe_dump(suite))
        assert main(["eval", "run", "--suite", str(path), "--limit", "3"]) == 0
    finally:
        judge.close()
    report = json.loads(capsys.readouterr().out)
    assert list(report["results"]) == [task.name for task in GENERAL_TASKS]
    for name, by_protocol in report["results"].items():
        if name == "mmvet":  # no judge named: predicted, not scored
            assert "judge" in by_protocol["skipped"] and (tmp_path / "out" / "mmvet.jsonl").is_file()
            continue
        for protocol, scores in by_protocol.items():
            assert scores["answered"] >= 1 and PUBLISHED_ASMV2[name][0] in scores, (name, protocol)
    table = (tmp_path / "out" / "report.md").read_text()
    assert "## General benchmarks" in table and "| vqav2 | vqav2 | accuracy |" in table and "| 1621.0 |" in table
    assert "| mmvet | mmvet | total | – | – | – | 41.3 |" in table


def test_eval_submit_writes_the_servers_file_and_refuses_an_incomplete_one(synth, tmp_path, capsys):
    questions = synth / "eval" / "general" / GENERAL_FILES["mmvet"]
    records = TASKS["mmvet"].read_questions(questions)
    predictions = tmp_path / "mmvet.jsonl"
    lines = [json.dumps({"question_id": q["question_id"], "text": q["answer"]}) + "\n" for q in records]
    predictions.write_text("".join(lines))
    out = tmp_path / "upload" / "results.json"
    argv = ["eval", "submit", "mmvet", "--questions", str(questions), "--predictions", str(predictions)]
    assert main([*argv, "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == {"task": "mmvet", "questions": len(records), "out": str(out)}
    assert json.loads(out.read_text()) == {f"v1_{q['question_id']}": q["answer"] for q in records}
    predictions.write_text("".join(lines[1:]))
    assert main([*argv, "--out", str(tmp_path / "again.json")]) == 1
    assert "1 unanswered" in capsys.readouterr().err and not (tmp_path / "again.json").exists()
