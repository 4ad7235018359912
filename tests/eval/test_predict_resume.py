"""Resuming a predictions file: what a killed run leaves is repaired, and one file never mixes two runs."""

import json

import pytest

from allseeing.eval.predict import answered, check_same_run, predict
from allseeing.eval.task import EvalError
from tests.eval.helpers import write_jsonl

RUN = {"model": "/models/a", "decoding": {"max_new_tokens": 16, "do_sample": False, "batch_size": 8}}


def line(question_id, metadata=RUN):
    return json.dumps({"question_id": question_id, "text": "A", "metadata": metadata})


def test_a_complete_last_line_without_its_newline_is_terminated(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(line("q1") + "\n" + line("q2"))  # killed between "}" and the newline
    assert set(answered(path)) == {"q1", "q2"}
    with path.open("a") as out:
        out.write(line("q3") + "\n")
    assert [json.loads(x)["question_id"] for x in path.read_text().splitlines()] == ["q1", "q2", "q3"]


def test_an_incomplete_last_line_is_removed_and_a_broken_middle_line_stops(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(line("q1") + "\n" + line("q2")[:10])
    assert set(answered(path)) == {"q1"} and path.read_text() == line("q1") + "\n"
    path.write_text(line("q1")[:10] + "\n" + line("q2") + "\n")
    with pytest.raises(EvalError, match=r"p.jsonl:1: a broken line before the end"):
        answered(path)


def test_another_model_or_decoding_is_refused_and_another_batch_size_is_not(tmp_path):
    done = {"q1": RUN}
    check_same_run(tmp_path / "p.jsonl", done, {**RUN, "decoding": {**RUN["decoding"], "batch_size": 2}})
    with pytest.raises(EvalError, match=r"model /models/a there, /models/b now\): write to another --out"):
        check_same_run(tmp_path / "p.jsonl", done, {**RUN, "model": "/models/b"})
    with pytest.raises(EvalError, match=r"decoding .*'max_new_tokens': 16.* there, .*'max_new_tokens': 32"):
        check_same_run(tmp_path / "p.jsonl", done, {**RUN, "decoding": {**RUN["decoding"], "max_new_tokens": 32}})


def test_predict_refuses_to_extend_another_models_file_before_loading_a_model(tmp_path):
    questions = write_jsonl(
        tmp_path / "q.jsonl",
        [
            {"question_id": f"q{i}", "image": "x.jpg", "text": "Q?", "correct_option": "A", "category": "exist"}
            for i in range(2)
        ],
    )
    out = tmp_path / "p.jsonl"
    out.write_text(line("q0") + "\n")
    with pytest.raises(EvalError, match="holds answers of another run"):
        predict("crpe", tmp_path / "no-such-model", questions, tmp_path, out)
    assert out.read_text() == line("q0") + "\n"


def test_an_answer_holding_a_line_separator_character_stays_one_line(tmp_path):
    path = tmp_path / "p.jsonl"
    record = json.dumps({"question_id": "q1", "text": "a\u2028b\x1cc", "metadata": RUN}, ensure_ascii=False)
    path.write_text(record + "\n" + line("q2") + "\n", encoding="utf-8")
    assert set(answered(path)) == {"q1", "q2"}
    assert path.read_text(encoding="utf-8") == record + "\n" + line("q2") + "\n"


def test_a_question_file_of_another_task_is_flagged_before_a_model_loads(tmp_path, capsys):
    crpe = [{"question_id": "q0", "image": "x.jpg", "text": "Q?", "correct_option": "A", "category": "exist"}]
    questions = write_jsonl(tmp_path / "q.jsonl", crpe)
    with pytest.raises(OSError):  # the model folder does not exist: the warning came before trying to load it
        predict("grounding", tmp_path / "no-such-model", questions, tmp_path, tmp_path / "p.jsonl")
    warning = capsys.readouterr().err
    assert "question 'q0' lacks bbox, width, height: its answers cannot be scored as grounding" in warning
