"""``allseeing chat``: one-shot and interactive multi-turn, overlays, bad images."""

import io
import json
import sys

import pytest
from PIL import Image

from allseeing.assets import EXAMPLE_IMAGE
from allseeing.cli import main


def test_one_shot_prints_the_answer_and_its_parse(tiny_model_dir, tmp_path, capsys):
    drawn = tmp_path / "out" / "answer.png"
    argv = ["chat", "--model", str(tiny_model_dir), "--image", str(EXAMPLE_IMAGE), "--prompt", "Where is the bus?"]
    assert main([*argv, "--max-new-tokens", "8", "--draw", str(drawn)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"question", "answer", "objects", "triplets", "errors"}
    assert result["question"] == "Where is the bus?" and isinstance(result["answer"], str)
    assert Image.open(drawn).size == (640, 514)


def test_interactive_session_keeps_the_history(tiny_model_dir, capsys, monkeypatch):
    from allseeing.infer import chat

    seen = []
    original = chat.generate

    def spy(model, processor, requests, decoding, **options):
        seen.append(requests[0].turns)
        return original(model, processor, requests, decoding, **options)

    monkeypatch.setattr(chat, "generate", spy)
    monkeypatch.setattr(sys, "stdin", io.StringIO("first question\nsecond question\n\nnever asked\n"))
    assert main(["chat", "--model", str(tiny_model_dir), "--image", str(EXAMPLE_IMAGE), "--max-new-tokens", "4"]) == 0
    answers = [json.loads(chunk) for chunk in capsys.readouterr().out.replace("}\n{", "}\n\x00{").split("\x00")]
    assert [a["question"] for a in answers] == ["first question", "second question"]
    assert seen[0] == (("<image>\nfirst question", None),)
    assert seen[1] == (("<image>\nfirst question", answers[0]["answer"]), ("second question", None))


def test_bad_image_is_one_line(tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    assert main(["chat", "--model", str(tiny_model_dir), "--image", str(bad), "--prompt", "hi"]) == 1
    assert capsys.readouterr().err == f"allseeing chat: error: image {bad} is not in an image format Pillow can read\n"


@pytest.mark.slow
def test_no_progress_bar_reaches_a_stderr_that_is_not_a_terminal(tiny_model_dir):
    import os
    import subprocess

    argv = [
        "chat",
        "--model",
        str(tiny_model_dir),
        "--image",
        str(EXAMPLE_IMAGE),
        "--prompt",
        "Hi",
        "--max-new-tokens",
        "2",
    ]
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    done = subprocess.run(
        [sys.executable, "-m", "allseeing", *argv], capture_output=True, text=True, env=env, check=True
    )
    assert done.stderr == "" and json.loads(done.stdout)["question"] == "Hi"
