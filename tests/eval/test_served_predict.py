"""``allseeing predict --backend openai`` and suites with a served model, against a scripted server."""

import json

import pytest
import yaml
from PIL import Image

from allseeing.cli import main
from allseeing.eval.predict import predict
from allseeing.eval.registry import get_task
from allseeing.eval.task import EvalError
from allseeing.infer.openai_client import Endpoint
from tests.eval.helpers import write_jsonl
from tests.infer.stub_openai import ScriptedServer, closed_port_url

N = 12


@pytest.fixture
def crpe(tmp_path):
    Image.new("RGB", (20, 10), "red").save(tmp_path / "a.png")
    questions = [
        {
            "question_id": f"q{i}",
            "image": "a.png",
            "text": f"Question {i}?\nA. yes\nB. no\nAnswer with the option's letter from the given choices directly.",
            "correct_option": "A",
            "category": "exist",
        }
        for i in range(N)
    ]
    return write_jsonl(tmp_path / "crpe.jsonl", questions)


@pytest.fixture
def stub():
    servers = []

    def start(script=None):
        servers.append(ScriptedServer(script, reply=lambda text: "A" if "Question" in text else "?"))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def served(url, **settings):
    return Endpoint(base_urls=(url,), served_model="asmv2", **{"backoff_s": 0.01, "concurrency": 4, **settings})


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def first_text(question):
    return question.split("\n")[0]


def test_a_served_model_answers_every_question_once_in_question_order(crpe, stub, tmp_path):
    s = stub({f"Question {i}?": [("status", 500)] for i in (1, 4, 7)})
    out = tmp_path / "p.jsonl"
    summary = predict("crpe", served(s.url), crpe, tmp_path, out)
    assert summary["answered_now"] == N
    records = lines(out)
    assert [r["question_id"] for r in records] == [f"q{i}" for i in range(N)]  # reordered once complete
    assert {r["text"] for r in records} == {"A"} and records[0]["model_id"] == "asmv2"
    assert records[0]["metadata"]["backend"] == "openai" and records[0]["metadata"]["base_url"] == [s.url]
    assert records[0]["prompt"].startswith("<image>\nQuestion 0?")
    assert s.bodies[0]["max_tokens"] == get_task("crpe").max_new_tokens and s.bodies[0]["temperature"] == 0
    assert sum(s.attempts.values()) == N + 3 == summary["requests"]
    scores = json.loads(main_json(["eval", "score", "crpe", "--questions", str(crpe), "--predictions", str(out)]))
    assert scores["exist"] == 100.0


def main_json(argv):
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(argv) == 0
    return buffer.getvalue()


def test_a_server_down_stops_with_one_line_and_the_rerun_completes_the_file(crpe, stub, tmp_path, capsys):
    s = stub({"Question 5?": [("status", 503)] * 3})
    out = tmp_path / "p.jsonl"
    argv = [
        "predict", "crpe", "--backend", "openai", "--base-url", s.url, "--served-model", "asmv2",
        "--questions", str(crpe), "--image-root", str(tmp_path), "--out", str(out), "--max-retries", "1",
        "--concurrency", "2",
    ]  # fmt: skip
    assert main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith("allseeing predict: error: http://127.0.0.1:")
    assert "no answer to question 'q5' after 2 tries (last: HTTP 503 scripted 503)" in error
    kept = [r["question_id"] for r in lines(out)]
    assert "q5" not in kept and len(kept) == len(set(kept)) and {"q0", "q1", "q2", "q3", "q4"} <= set(kept)
    assert main(argv) == 0  # the server recovered
    summary = json.loads(capsys.readouterr().out)
    assert summary["already_answered"] == len(kept) and summary["answered_now"] == N - len(kept)
    assert [r["question_id"] for r in lines(out)] == [f"q{i}" for i in range(N)]


def test_nothing_is_asked_of_a_server_that_is_not_there_twice_over(crpe, tmp_path):
    with pytest.raises(OSError, match=r"after 2 tries \(last: ConnectionRefusedError"):
        predict("crpe", served(closed_port_url(), max_retries=1), crpe, tmp_path, tmp_path / "p.jsonl")


def test_a_served_run_does_not_extend_a_local_runs_file_nor_another_served_models(crpe, stub, tmp_path):
    s = stub()
    out = tmp_path / "p.jsonl"
    local = {"model": str(tmp_path / "m"), "decoding": {"max_new_tokens": 128, "do_sample": False}}
    out.write_text(json.dumps({"question_id": "q0", "text": "A", "metadata": local}) + "\n")
    with pytest.raises(EvalError, match="backend local there, openai now"):
        predict("crpe", served(s.url), crpe, tmp_path, out)
    out.unlink()
    predict("crpe", served(s.url), crpe, tmp_path, out, limit=2)
    predict("crpe", Endpoint(base_urls=(s.url, s.url + "/"), served_model="asmv2"), crpe, tmp_path, out, limit=3)
    with pytest.raises(EvalError, match="model asmv2 there, gpt-4o now"):
        predict("crpe", Endpoint(base_urls=(s.url,), served_model="gpt-4o"), crpe, tmp_path, out)
    assert len(lines(out)) == 3 and not s.headers[0].get("Authorization")


def test_option_ranking_is_refused_for_a_served_model(tmp_path):
    questions = write_jsonl(tmp_path / "q.jsonl", [{"question_id": 1, "image": "a.png", "text": "x"}])
    with pytest.raises(EvalError, match="psg_pred_cls ranks its options .* run it in-process"):
        predict("psg_pred_cls", served("http://127.0.0.1:9/v1"), questions, tmp_path, tmp_path / "p.jsonl")


def test_the_openai_options_need_the_openai_backend(crpe, tmp_path, capsys):
    argv = ["predict", "crpe", "--questions", str(crpe), "--image-root", str(tmp_path), "--out", str(tmp_path / "p")]
    assert main([*argv, "--base-url", "http://127.0.0.1:9/v1"]) == 1
    assert "are for --backend openai" in capsys.readouterr().err
    assert main([*argv, "--backend", "openai"]) == 1
    assert "needs --base-url and --served-model" in capsys.readouterr().err


def test_a_suite_runs_against_a_served_model(crpe, stub, tmp_path, capsys):
    s = stub()
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "backend": "openai",
                "base_url": [s.url],
                "served_model": "asmv2",
                "concurrency": 3,
                "protocols": ["official"],
                "image_root": str(tmp_path),
                "out": str(tmp_path / "out"),
                "tasks": [{"name": "exist", "task": "crpe", "questions": str(crpe)}],
            }
        )
    )
    assert main(["eval", "run", "--suite", str(suite)]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["model"] == f"asmv2 (served at {s.url})"
    assert report["results"]["exist"]["official"]["exist"] == 100.0
    capsys.readouterr()
    assert main(["eval", "run", "--suite", str(suite), "--model", "x"]) == 1
    assert "asks the served asmv2" in capsys.readouterr().err


def test_a_served_suite_with_option_ranking_is_refused_before_anything_runs(tmp_path):
    from allseeing.config import ConfigError
    from allseeing.eval.report import Suite

    suite = tmp_path / "suite.yaml"
    tasks = [
        {"name": "exist", "task": "crpe", "questions": "a"},
        {"name": "pc", "task": "psg_pred_cls", "questions": "b"},
    ]
    keys = {"backend": "openai", "base_url": ["http://127.0.0.1:9/v1"], "served_model": "m"}
    suite.write_text(yaml.safe_dump({**keys, "image_root": ".", "out": "o", "tasks": tasks}))
    with pytest.raises(ConfigError, match=r"tasks \['pc'\]: ranking options needs log-likelihoods"):
        Suite.read(suite)


def test_a_served_run_imports_neither_torch_nor_transformers(crpe, stub, tmp_path):
    """Evaluating an API model needs only the base install."""
    import subprocess
    import sys

    s = stub()
    argv = ["predict", "crpe", "--backend", "openai", "--base-url", s.url, "--served-model", "m"]
    argv += ["--questions", str(crpe), "--image-root", str(tmp_path), "--out", str(tmp_path / "p.jsonl")]
    code = (
        "import sys; from allseeing.cli import main; status = main(sys.argv[1:]); "
        "assert not {'torch', 'transformers'} & set(sys.modules), 'a heavy import'; sys.exit(status)"
    )
    subprocess.run([sys.executable, "-c", code, *argv], check=True, capture_output=True)
    assert len(lines(tmp_path / "p.jsonl")) == N


def test_another_prompt_language_is_another_run(tmp_path, stub):
    """MMBench's instruction language changes the prompt: one file holds one language's answers."""
    import base64
    import io

    image = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(image, format="PNG")
    header = "index\tquestion\thint\tA\tB\tanswer\tcategory\tl2-category\timage\n"
    row = "{}\tWhat color?\t\tred\tblue\tA\tc\tl\t" + base64.b64encode(image.getvalue()).decode() + "\n"
    questions = tmp_path / "mmbench.tsv"
    questions.write_text(header + row.format(1) + row.format(2))
    s, out = stub(), tmp_path / "p.jsonl"
    predict("mmbench_cn", served(s.url), questions, tmp_path, out, limit=1)
    with pytest.raises(EvalError, match=r"settings None there, \{'lang': 'cn'\} now"):
        predict("mmbench_cn", served(s.url), questions, tmp_path, out, lang="cn")
    predict("mmbench_cn", served(s.url), questions, tmp_path, out)
    assert len(lines(out)) == 2
