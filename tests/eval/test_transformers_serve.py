"""The bundled model served by ``transformers serve`` answers as the in-process model does (greedy)."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from allseeing.assets import BUNDLED_MODEL
from allseeing.data.synth.generate import generate
from allseeing.eval.predict import predict
from allseeing.infer.openai_client import Endpoint

pytestmark = pytest.mark.slow  # a server subprocess; the full run (.ci/run) includes it
pytest.importorskip("fastapi", reason="transformers serve needs the serve extra: pip install 'allseeing[serve]'")

QUESTIONS = 6  # per file


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served_bundled_model():
    """``transformers serve --host 127.0.0.1 --port P --device cpu --dtype float32 BUNDLED`` (the documented
    one-liner; float32 as the in-process path runs on a CPU), its URL once it lists the model."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("transformers")), "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--device", "cpu", "--dtype", "float32", "--continuous-batching", str(BUNDLED_MODEL)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                pytest.fail(f"transformers serve stopped: {server.stderr.read()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/models", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("transformers serve did not answer within 180 s")
                time.sleep(1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize(
    ("task", "questions"),
    [("crpe", "crpe/crpe_relation.jsonl"), ("grounding", "grounding/grounding_eval.jsonl")],
)
def test_the_served_model_answers_as_the_in_process_model(served_bundled_model, tmp_path_factory, task, questions):
    root = tmp_path_factory.mktemp("serve")
    generate(root / "synth", n_train=1, n_test=4, seed=21, workers=1, progress=False)
    path = root / "synth" / "eval" / questions
    local, served = root / "local.jsonl", root / "served.jsonl"
    predict(task, BUNDLED_MODEL, path, root / "synth", local, limit=QUESTIONS, progress=False)
    endpoint = Endpoint(base_urls=(served_bundled_model,), served_model=str(BUNDLED_MODEL), concurrency=2)
    predict(task, endpoint, path, root / "synth", served, limit=QUESTIONS, progress=False)
    answers = [
        [(r["question_id"], r["text"]) for r in map(json.loads, p.read_text().splitlines())] for p in (local, served)
    ]
    assert len(answers[0]) == QUESTIONS and answers[1] == answers[0]
