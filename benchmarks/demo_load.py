"""The web demo under load: N sessions upload a large image, then all ask at once, against the bundled model.

    python benchmarks/demo_load.py [--sessions 8] [--questions 2] [--upload-side 7000] [--max-new-tokens 48]
    python benchmarks/demo_load.py --keep-full-uploads           # the same server, uploads kept whole (no bound)
    python benchmarks/demo_load.py --pythonpath OLD/src          # another checkout's demo (e.g. before a change)

Loopback only: the server is a child process bound to 127.0.0.1 on a free port, and every request goes there. The
run is bounded: ``sessions * (1 + questions)`` requests, each with a time-out, all within ``--time-limit`` seconds;
the server is stopped at the end whatever happens (and killed if it does not stop).

1. Start the demo on the bundled model; its resident memory (RSS) once loaded is the baseline.
2. Every session uploads the same JPEG of ``--upload-side`` pixels square (a synthetic scene scaled up), all at once.
3. Every session asks ``--questions`` grounded questions, one after another, all sessions at the same time; the
   answer is read as it streams: the time to the first answer text and to the complete answer are recorded.

Prints one JSON object: latency percentiles (upload; ask: first text, complete answer), the server's RSS (after
loading, after the uploads, the peak over the run from the kernel's VmHWM, at the end), errors, the machine.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import subprocess
import sys
import threading
import time

LAUNCHER = r"""
import inspect, sys
from allseeing.assets import BUNDLED_MODEL
from allseeing.data.synth.samples import sample_images
from allseeing.infer.generate import DecodingConfig
from allseeing.model.build import load
try:
    from allseeing.serve.app import DemoApp
    from allseeing.serve.server import DemoServer
except ImportError:  # a checkout from before the demo was split into app and server (--pythonpath)
    from allseeing.serve.demo import DemoApp, DemoServer
from allseeing.serve.sessions import SessionStore

max_new_tokens, max_upload, keep_full = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
model, processor = load(BUNDLED_MODEL)
store = SessionStore(model, processor, DecodingConfig(max_new_tokens=max_new_tokens))
options = {}
bounded = "max_side" in inspect.signature(DemoApp).parameters
if bounded and keep_full:
    options["max_side"] = 0
server = DemoServer(("127.0.0.1", 0), DemoApp(store, sample_images(), max_upload, **options))
print(json.dumps({"port": server.server_address[1], "bounded_uploads": bounded and not keep_full}), flush=True)
server.serve_forever()
""".replace("import inspect, sys", "import inspect, json, sys")


def upload_image(side: int) -> bytes:
    """A synthetic scene scaled up to ``side`` x ``side`` pixels, as a JPEG (what a camera photo would be)."""
    import random

    from PIL import Image

    from allseeing.data.synth.scenes import sample_scene
    from allseeing.data.synth.world import render

    scene = None
    index = 0
    while scene is None:
        scene = sample_scene(random.Random(f"demo-load/{index}"), "load")
        index += 1
    image = render(scene).resize((side, side), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of ``pid`` in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values


def percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)

    return {"n": len(ordered), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(ordered[-1], 3)}


class Client:
    def __init__(self, port: int, deadline: float) -> None:
        self.port, self.deadline = port, deadline

    def _connection(self) -> http.client.HTTPConnection:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the benchmark's time limit is over")
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=min(left, 300))

    def upload(self, body: bytes) -> dict:
        connection = self._connection()
        connection.request("POST", "/api/session", body=body, headers={"Content-Type": "image/jpeg"})
        response = connection.getresponse()
        data = json.loads(response.read())
        connection.close()
        if response.status != 200:
            raise RuntimeError(f"upload: {response.status} {data}")
        return data

    def ask(self, session: str, message: str) -> tuple[float | None, float, str]:
        """(seconds to the first answer text, seconds to the complete answer, the final event's kind)."""
        start = time.monotonic()
        connection = self._connection()
        body = json.dumps({"session": session, "message": message, "mode": "grounded"})
        connection.request("POST", "/api/ask", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        first_text, final = None, "none"
        for line in response:
            event = json.loads(line)
            if event["event"] == "text" and first_text is None:
                first_text = time.monotonic() - start
            elif event["event"] in ("answer", "error"):
                final = event["event"] if event["event"] == "answer" else f"error: {event['message']}"
        connection.close()
        return first_text, time.monotonic() - start, final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="concurrent demo sessions (at most 32)")
    parser.add_argument("--questions", type=int, default=2, help="questions per session, one after another")
    parser.add_argument("--upload-side", type=int, default=7000, help="the uploaded image's side in pixels")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--time-limit", type=float, default=600, help="seconds for the whole run")
    parser.add_argument("--keep-full-uploads", action="store_true", help="the server keeps uploads whole")
    parser.add_argument("--pythonpath", help="run the server from this source folder (another checkout)")
    args = parser.parse_args()
    if not 1 <= args.sessions <= 32 or not 1 <= args.questions <= 8:
        parser.error("--sessions must be 1..32 and --questions 1..8")
    deadline = time.monotonic() + args.time_limit

    body = upload_image(args.upload_side)
    environment = dict(os.environ, HF_HUB_OFFLINE="1")
    if args.pythonpath:
        environment["PYTHONPATH"] = os.path.abspath(args.pythonpath)
    server = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(args.max_new_tokens), str(max(len(body) * 2, 8 << 20)),
         "1" if args.keep_full_uploads else "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=environment, text=True,
    )  # fmt: skip
    samples: list[float] = []
    stop = threading.Event()
    errors: list[str] = []
    try:
        started = json.loads(server.stdout.readline())
        client = Client(started["port"], deadline)
        time.sleep(0.5)
        loaded = memory(server.pid)

        def monitor() -> None:
            while not stop.is_set():
                try:
                    samples.append(memory(server.pid)["VmRSS"])
                except OSError:
                    return
                time.sleep(0.05)

        threading.Thread(target=monitor, daemon=True).start()

        uploads: list[float] = []
        sessions: list[str] = []

        def open_session() -> None:
            start = time.monotonic()
            try:
                sessions.append(client.upload(body)["session"])
                uploads.append(time.monotonic() - start)
            except Exception as error:
                errors.append(f"upload: {type(error).__name__}: {error}")

        threads = [threading.Thread(target=open_session) for _ in range(args.sessions)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(1.0)
        after_uploads = memory(server.pid)

        first_texts: list[float] = []
        answers: list[float] = []
        gate = threading.Barrier(len(sessions)) if sessions else None
        questions = ["What is in the image?", "Which object is the largest?", "What is on the left?"]

        def converse(session: str) -> None:
            gate.wait()
            for index in range(args.questions):
                try:
                    first_text, total, final = client.ask(session, questions[index % len(questions)])
                except Exception as error:
                    errors.append(f"ask: {type(error).__name__}: {error}")
                    return
                if final != "answer":
                    errors.append(f"ask: {final}")
                    return
                answers.append(total)
                if first_text is not None:
                    first_texts.append(first_text)

        threads = [threading.Thread(target=converse, args=(session,)) for session in sessions]
        run_start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        asking = time.monotonic() - run_start
        end = memory(server.pid)
    finally:
        stop.set()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    import torch

    mib = lambda value: round(value, 1)  # noqa: E731
    retained = after_uploads["VmRSS"] - loaded["VmRSS"]
    print(
        json.dumps(
            {
                "server": "this tree" if not args.pythonpath else os.path.abspath(args.pythonpath),
                "bounded_uploads": started["bounded_uploads"],
                "sessions": args.sessions,
                "questions_per_session": args.questions,
                "upload": {"side": args.upload_side, "bytes": len(body), "seconds": percentiles(uploads)},
                "ask": {
                    "answers": len(answers),
                    "seconds_to_first_text": percentiles(first_texts),
                    "seconds_to_complete_answer": percentiles(answers),
                    "answers_per_second": round(len(answers) / asking, 3) if asking else None,
                    "wall_seconds": round(asking, 2),
                },
                "server_rss_mib": {
                    "loaded": mib(loaded["VmRSS"]),
                    "after_uploads": mib(after_uploads["VmRSS"]),
                    "per_session_after_uploads": mib(retained / max(1, len(sessions))),
                    "peak": mib(end["VmHWM"]),
                    "peak_sampled": mib(max(samples)) if samples else None,
                    "end": mib(end["VmRSS"]),
                },
                "errors": errors,
                "machine": {
                    "cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(),
                    "torch": torch.__version__,
                },
                "max_new_tokens": args.max_new_tokens,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
