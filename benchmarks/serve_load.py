"""predict through ``transformers serve`` against in-process predict, on the same questions in one run.

    python benchmarks/serve_load.py [--questions 32] [--concurrency 1 4] [--task grounding]

Loopback only and bounded: ``transformers serve`` runs as a child process on 127.0.0.1 (a free port) with the
bundled model in float32 (the in-process path's precision on a CPU), every request goes there, each run answers
``--questions`` questions of a synthetic evaluation file, and the server is stopped at the end whatever happens.

1. In-process: ``predict`` with the bundled model (batched, ``--batch-size``), timed from the first question to
   the last answer (model loading excluded: the server's is excluded too).
2. Served: ``predict --backend openai`` against the server, once per ``--concurrency``.

Prints one JSON object: per run the seconds, requests/s and answers/s (a request is one question's chat
completion; the in-process path makes none), the ratio of each served run's answers/s to the in-process one, whether
the answers equal the in-process answers, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TASK_FILES = {"grounding": "grounding/grounding_eval.jsonl", "crpe": "crpe/crpe_relation.jsonl"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: Path, port: int, time_limit: float) -> subprocess.Popen:
    transformers_cli = Path(sys.executable).with_name("transformers")
    command = [str(transformers_cli), "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    command += ["--dtype", "float32", "--continuous-batching", str(model)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + time_limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"transformers serve stopped (exit {server.returncode})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5):
                return server
        except OSError:
            time.sleep(1)
    server.kill()
    raise SystemExit(f"transformers serve did not answer within {time_limit} s")


def answers(path: Path) -> list[tuple[str, str]]:
    return [(r["question_id"], r["text"]) for r in map(json.loads, path.read_text().splitlines())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--task", choices=tuple(TASK_FILES), default="grounding")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--batch-size", type=int, default=8, help="in-process batch size")
    parser.add_argument("--time-limit", type=float, default=600, help="seconds for the server to start")
    args = parser.parse_args()

    import torch

    from allseeing.assets import BUNDLED_MODEL
    from allseeing.data.synth.generate import generate
    from allseeing.eval.answerers import load_for_prediction
    from allseeing.eval.predict import predict
    from allseeing.infer.openai_client import Endpoint

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root / "synth", n_train=1, n_test=max(4, args.questions // 4), seed=3, workers=1, progress=False)
        questions = root / "synth" / "eval" / TASK_FILES[args.task]
        settings = {"limit": args.questions, "progress": False}
        runs: dict[str, dict] = {}

        loaded = load_for_prediction(BUNDLED_MODEL)
        began = time.perf_counter()
        local = root / "local.jsonl"
        summary = predict(
            args.task,
            BUNDLED_MODEL,
            questions,
            root / "synth",
            local,
            batch_size=args.batch_size,
            loaded=loaded,
            **settings,
        )
        seconds = time.perf_counter() - began
        reference = answers(local)
        runs["in_process"] = {
            "batch_size": args.batch_size,
            "seconds": round(seconds, 2),
            "requests_per_s": None,
            "answers_per_s": round(summary["answered_now"] / seconds, 2),
        }
        del loaded

        port = free_port()
        server = start_server(BUNDLED_MODEL, port, args.time_limit)
        try:
            endpoint_url = f"http://127.0.0.1:{port}/v1"
            for concurrency in args.concurrency:
                out = root / f"served-{concurrency}.jsonl"
                endpoint = Endpoint(base_urls=(endpoint_url,), served_model=str(BUNDLED_MODEL), concurrency=concurrency)
                began = time.perf_counter()
                summary = predict(args.task, endpoint, questions, root / "synth", out, **settings)
                seconds = time.perf_counter() - began
                rate = round(summary["answered_now"] / seconds, 2)
                runs[f"served_concurrency_{concurrency}"] = {
                    "seconds": round(seconds, 2),
                    "requests_per_s": round(summary["requests"] / seconds, 2),  # retries included
                    "answers_per_s": rate,
                    "answers_per_s_vs_in_process": round(rate / runs["in_process"]["answers_per_s"], 3),
                    "same_answers_as_in_process": answers(out) == reference,
                }
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()

    report = {
        "task": args.task,
        "questions": args.questions,
        "runs": runs,
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, torch {torch.__version__}, "
        f"transformers {__import__('transformers').__version__}",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
