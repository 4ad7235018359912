"""Writing small question and prediction files for the scoring tests."""

import json

from allseeing.eval.score import score_file


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def score(tmp_path, task, questions, answers, **kwargs):
    """Score ``answers`` ({question_id: text or record}) against ``questions``."""
    q = write_jsonl(tmp_path / "questions.jsonl", questions)
    records = [a if isinstance(a, dict) else {"question_id": i, "text": a} for i, a in answers.items()]
    p = write_jsonl(tmp_path / "predictions.jsonl", records)
    return score_file(task, q, p, **kwargs)
