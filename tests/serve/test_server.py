"""The demo's HTTP API with a real (tiny, random) model: sessions, limits, streaming, isolation."""

import io
import json
import subprocess
import sys
import threading
import urllib.request

from PIL import Image

from allseeing.data.synth.samples import sample_images
from allseeing.infer.chat import ChatSession
from allseeing.infer.generate import DecodingConfig
from tests.serve.conftest import events, request, running_demo


def png(size=(48, 32), colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_page_config_and_only_fixed_files(tiny_model):
    with running_demo(*tiny_model) as server:
        status, page = request(server, "/")
        assert status == 200 and b'<script src="/app.js">' in page
        assert request(server, "/app.js")[0] == 200 and request(server, "/style.css")[0] == 200
        status, body = request(server, "/api/config")
        assert json.loads(body) == {
            "samples": ["scene-1", "scene-2", "example-photo"],
            "modes": ["plain", "grounded", "scene_graph"],
            "max_upload_bytes": 2**20,
        }
        for path in ("/../pyproject.toml", "/static/app.js", "/%2e%2e/etc/passwd", "/index.html"):
            assert request(server, path)[0] == 404


def test_uploads_are_checked_and_a_bad_one_changes_nothing(tiny_model):
    with running_demo(*tiny_model, max_upload_bytes=4096) as server:
        status, body = request(server, "/api/session", body=png())
        session = json.loads(body)
        assert status == 200 and (session["width"], session["height"]) == (48, 32)
        assert session["image"].startswith("data:image/png;base64,")
        status, body = request(server, "/api/session", body=b"<html>not an image</html>")
        assert status == 400
        assert json.loads(body)["error"].startswith("image the upload is not in an image format Pillow can read")
        status, body = request(server, "/api/session", body=b"\0" * 5000)
        assert status == 413 and json.loads(body)["error"] == "the upload is 0.0 MiB, over the limit of 0.0 MiB"
        status, body = request(server, "/api/session?sample=../../etc/passwd")
        assert status == 404 and json.loads(body)["error"] == "no sample named '../../etc/passwd'"
        # The first session still answers.
        status, raw = request(server, "/api/ask", json_body={"session": session["session"], "message": "hi"})
        assert status == 200 and events(raw)[-1]["event"] == "answer"


def test_region_reference_and_request_errors(tiny_model):
    with running_demo(*tiny_model) as server:
        session = json.loads(request(server, "/api/session?sample=scene-1")[1])["session"]
        width, height = sample_images(1)["scene-1"].size
        status, body = request(server, "/api/region", json_body={"session": session, "box": [0, 0, width, height]})
        side = max(width, height)
        top, left = (side - height) // 2, (side - width) // 2
        expected = [left * 999 // side, top * 999 // side, (left + width) * 999 // side, (top + height) * 999 // side]
        assert status == 200 and json.loads(body)["text"] == f"<ref>region</ref><box>[{expected}]</box>"
        assert request(server, "/api/region", json_body={"session": session, "box": [3, 3, 3, 9]})[0] == 400
        assert request(server, "/api/region", json_body={"session": session, "box": "0,0,1,1"})[0] == 400
        assert (
            request(server, "/api/region", body=b'{"session": "%s", "box": [0, 0, NaN, 9]}' % session.encode())[0]
            == 400
        )
        assert request(server, "/api/region", json_body={"session": "nope", "box": [0, 0, 9, 9]})[0] == 404
        assert request(server, "/api/ask", body=b"{not json")[0] == 400
        assert request(server, "/api/ask", json_body={"session": session, "message": " "})[0] == 400
        status, body = request(server, "/api/ask", json_body={"session": session, "message": "hi", "mode": "x"})
        assert status == 400 and "unknown mode 'x'" in json.loads(body)["error"]


def test_an_answer_streams_then_arrives_whole_and_joins_the_history(tiny_model):
    model, processor = tiny_model
    with running_demo(model, processor, max_new_tokens=12) as server:
        session = json.loads(request(server, "/api/session?sample=scene-2")[1])["session"]
        status, raw = request(
            server, "/api/ask", json_body={"session": session, "message": "What is here?", "mode": "plain"}
        )
        stream = events(raw)
        assert status == 200 and [e["event"] for e in stream[:-1]] == ["text"] * (len(stream) - 1)
        final = stream[-1]
        assert final["event"] == "answer" and final["question"] == "What is here?"
        assert "".join(e["text"] for e in stream[:-1]).strip() == final["answer"]
        assert set(final) >= {"segments", "overlay", "relations", "scene_graph", "scene_graph_svg", "errors"}
        chat = server.app.store.get(session).chat
        assert chat.history == [("<image>\nWhat is here?", final["answer"])]
        assert json.loads(request(server, "/api/reset", json_body={"session": session})[1]) == {"ok": True}
        assert chat.history == []


def test_a_question_to_a_chat_still_answering_is_refused_not_interleaved(tiny_model):
    with running_demo(*tiny_model) as server:
        session = json.loads(request(server, "/api/session?sample=scene-1")[1])["session"]
        chat = server.app.store.get(session)
        with chat.lock:  # as while another request of this chat is generating
            final = events(request(server, "/api/ask", json_body={"session": session, "message": "hi"})[1])[-1]
        assert final == {"event": "error", "message": "this chat is still answering the previous question"}
        assert chat.chat.history == []


def test_a_new_chat_while_the_chat_is_answering_is_refused(tiny_model):
    with running_demo(*tiny_model) as server:
        session = json.loads(request(server, "/api/session?sample=scene-1")[1])["session"]
        chat = server.app.store.get(session)
        chat.chat.history.append(("<image>\nhi", "an answer"))
        with chat.lock:  # as while another request of this chat is generating
            status, raw = request(server, "/api/reset", json_body={"session": session})
        assert status == 409 and "still answering" in json.loads(raw)["error"]
        assert chat.chat.history == [("<image>\nhi", "an answer")]  # nothing half-cleared
        assert request(server, "/api/reset", json_body={"session": session})[0] == 200 and chat.chat.history == []


def test_a_conversation_longer_than_the_context_is_refused_in_the_page(tiny_model):
    model, processor = tiny_model
    with running_demo(model, processor, max_new_tokens=12) as server:
        session = json.loads(request(server, "/api/session?sample=scene-1")[1])["session"]
        message = "describe " * processor.config.max_length
        final = events(request(server, "/api/ask", json_body={"session": session, "message": message})[1])[-1]
        assert final["event"] == "error" and "longer than the context of 1024" in final["message"]
        assert server.app.store.get(session).chat.history == []


def test_two_simultaneous_chats_never_mix_histories(tiny_model):
    model, processor = tiny_model
    questions = {
        "scene-1": ["What is in the image?", "And on the left?", "Which is biggest?"],
        "scene-2": ["Count the shapes.", "What colour is the square?", "Anything above it?"],
    }
    samples = sample_images(2)
    # What each conversation gives alone, one after the other.
    alone = {}
    for name, asked in questions.items():
        chat = ChatSession(model, processor, samples[name], DecodingConfig(max_new_tokens=12))
        alone[name] = [chat.ask(q).text for q in asked]
    with running_demo(model, processor, max_new_tokens=12) as server:
        sessions = {
            name: json.loads(request(server, f"/api/session?sample={name}")[1])["session"] for name in questions
        }
        answers = {name: [] for name in questions}
        start = threading.Barrier(len(questions))

        def converse(name):
            start.wait()
            for question in questions[name]:
                raw = request(
                    server, "/api/ask", json_body={"session": sessions[name], "message": question, "mode": "plain"}
                )[1]
                answers[name].append(events(raw)[-1]["answer"])

        threads = [threading.Thread(target=converse, args=(name,)) for name in questions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == alone
        for name, session in sessions.items():
            history = server.app.store.get(session).chat.history
            assert [q for q, _ in history] == ["<image>\n" + questions[name][0], *questions[name][1:]]


def test_the_demo_verb_serves_on_localhost(tiny_model_dir):
    process = subprocess.Popen(
        [sys.executable, "-m", "allseeing", "demo", "--model", str(tiny_model_dir), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()
        while line and not line.startswith("allseeing demo:"):  # the weight-loading bar comes first
            line = process.stderr.readline()
        assert line.startswith(f"allseeing demo: serving {tiny_model_dir} on http://127.0.0.1:"), line
        url = line.split(" on ")[1].split()[0]
        with urllib.request.urlopen(url + "api/config", timeout=30) as response:
            assert json.loads(response.read())["modes"] == ["plain", "grounded", "scene_graph"]
    finally:
        process.terminate()
        process.wait(timeout=30)
