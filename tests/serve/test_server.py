"""The demo's HTTP API with a real (tiny, random) model: sessions, limits, streaming, isolation."""

import http.client
import io
import json
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib

import pytest
from PIL import Image

from allseeing.data.synth.samples import sample_images
from allseeing.infer.chat import ChatSession
from allseeing.infer.generate import DecodingConfig
from allseeing.serve.guards import AddressCheck
from allseeing.serve.sessions import ModelQueue
from tests.serve.conftest import events, request, running_demo


def png(size=(48, 32), colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def png_header(width, height) -> bytes:
    """The start of a PNG that says it is ``width`` x ``height`` (enough for Pillow to open it, not to decode it)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", b"")


def test_page_config_and_only_fixed_files(tiny_model):
    with running_demo(*tiny_model) as server:
        status, page = request(server, "/")
        assert status == 200 and b'<script src="/app.js">' in page
        assert request(server, "/app.js")[0] == 200 and request(server, "/style.css")[0] == 200
        status, body = request(server, "/api/config")
        config = json.loads(body)
        thumbnails = config.pop("thumbnails")
        assert config == {
            "samples": ["scene-1", "scene-2", "example-photo"],
            "modes": ["plain", "grounded", "scene_graph"],
            "max_upload_bytes": 2**20,
        }
        assert list(thumbnails) == config["samples"]
        assert all(url.startswith("data:image/jpeg;base64,") for url in thumbnails.values())
        assert "default-src 'self'" in urllib.request.urlopen(server.url).headers["Content-Security-Policy"]
        for path in ("/../pyproject.toml", "/static/app.js", "/%2e%2e/etc/passwd", "/index.html"):
            assert request(server, path)[0] == 404


def test_uploads_are_checked_and_a_bad_one_changes_nothing(tiny_model):
    with running_demo(*tiny_model, max_upload_bytes=4096) as server:
        status, body = request(server, "/api/session", body=png())
        session = json.loads(body)
        assert status == 200 and (session["width"], session["height"]) == (48, 32)
        assert session["image"].startswith("data:image/png;base64,")
        # Each refusal is a sentence for the page, not Pillow's words.
        status, body = request(server, "/api/session", body=b"<html>not an image</html>")
        assert (status, json.loads(body)["error"]) == (
            400,
            "This file is not an image the demo can read. Choose a PNG, JPEG, WebP, GIF or BMP image.",
        )
        status, body = request(server, "/api/session", body=png()[:60])
        assert (status, json.loads(body)["error"]) == (
            400,
            "This image could not be decoded: it looks damaged or cut short.",
        )
        status, body = request(server, "/api/session", body=png_header(10_000, 8_000))
        assert (status, json.loads(body)["error"]) == (
            400,
            "This image is 10000 x 8000 pixels; the demo takes images of up to 50 megapixels.",
        )
        # A strip (sides more than 32 times apart) is refused as the data layer refuses it, in the page's words.
        status, body = request(server, "/api/session", body=png((3300, 100)))
        assert (status, json.loads(body)["error"]) == (
            400,
            "This image is 3300 x 100 pixels; its sides differ by more than 32 times, so the model would see a "
            "line. Crop it closer to a square.",
        )
        status, body = request(server, "/api/session", body=png_header(30_000, 30_000))
        assert (status, json.loads(body)["error"]) == (
            400,
            "This image has too many pixels to open; the demo takes images of up to 50 megapixels.",
        )
        status, body = request(server, "/api/session", body=b"\0" * 5000)
        assert (status, json.loads(body)["error"]) == (
            413,
            "This file is 4.9 KiB; the demo takes uploads of up to 4.0 KiB.",
        )
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
        # A region wholly outside the image (or touching it only along an edge) is refused, not made a zero box.
        for box in (
            [-50, -50, -10, -10],
            [width + 5, 10, width + 90, 40],
            [0, 10, -30, 90],
            [10, height, 90, height + 9],
        ):
            status, body = request(server, "/api/region", json_body={"session": session, "box": box})
            assert status == 400, box
            assert json.loads(body)["error"].startswith(f"The region {box} lies outside the {width} x {height} image")
        status, body = request(server, "/api/region", json_body={"session": session, "box": [10, 10, 10.5, 90]})
        assert status == 400 and json.loads(body)["error"].startswith("The region is empty")
        # Partly outside: clipped to the image.
        status, body = request(
            server, "/api/region", json_body={"session": session, "box": [-40, -40, width + 40, height + 40]}
        )
        assert status == 200 and json.loads(body)["text"] == f"<ref>region</ref><box>[{expected}]</box>"
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
        assert status == 200 and [e["event"] for e in stream[:-1]] == ["started"] + ["text"] * (len(stream) - 2)
        stream = stream[1:]
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


@pytest.mark.slow
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


def test_large_uploads_are_kept_small(tiny_model):
    with running_demo(*tiny_model) as server:
        for kind in ("PNG", "JPEG"):  # a JPEG is decoded at a reduced scale, then scaled to fit
            big = io.BytesIO()
            Image.new("RGB", (3000, 2000), (20, 90, 160)).save(big, format=kind)
            status, body = request(server, "/api/session", body=big.getvalue())
            session = json.loads(body)
            assert status == 200
            sizes = [session[k] for k in ("width", "height", "original_width", "original_height")]
            assert sizes == [1024, 683, 3000, 2000]
            assert session["image"].startswith(f"data:image/{kind.lower()};base64,")  # a photo is shown as a JPEG
            kept = server.app.store.get(session["session"]).image
            assert kept.size == (1024, 683) and kept.mode == "RGB"
            assert max(abs(a - b) for a, b in zip(kept.getpixel((500, 300)), (20, 90, 160), strict=True)) <= 3
        # A small one is kept as it is; regions are in the kept image's pixels.
        small = json.loads(request(server, "/api/session", body=png())[1])
        assert (small["width"], small["height"], small["original_width"]) == (48, 32, 48)
        status, body = request(
            server, "/api/region", json_body={"session": session["session"], "box": [0, 0, 1024, 683]}
        )
        assert status == 200 and json.loads(body)["text"] == "<ref>region</ref><box>[[0, 165, 999, 832]]</box>"


def test_a_question_waiting_for_the_model_is_told_its_place(tiny_model):
    with running_demo(*tiny_model) as server:
        sessions = [
            json.loads(request(server, f"/api/session?sample={name}")[1])["session"] for name in ("scene-1", "scene-2")
        ]
        queue = server.app.store.queue
        streams = {}

        def ask(session):
            streams[session] = events(request(server, "/api/ask", json_body={"session": session, "message": "hi"})[1])

        threads = [threading.Thread(target=ask, args=(session,)) for session in sessions]
        with queue.turn():  # another chat is being answered
            for waiting, thread in enumerate(threads, start=2):
                thread.start()
                while queue.length < waiting:
                    time.sleep(0.01)
        for thread in threads:
            thread.join()
        first, second = (streams[session] for session in sessions)
        assert [e["event"] for e in first[:2]] == ["queued", "started"] and first[0]["ahead"] == 1
        assert [e for e in second if e["event"] == "queued"] == [
            {"event": "queued", "ahead": 2},
            {"event": "queued", "ahead": 1},
        ]
        assert first[-1]["event"] == second[-1]["event"] == "answer" and queue.length == 0


def test_a_waiting_client_that_leaves_frees_its_place():
    queue, reported = ModelQueue(), []

    def departed(ahead):
        reported.append(ahead)
        raise BrokenPipeError

    with queue.turn():
        with pytest.raises(BrokenPipeError), queue.turn(departed):
            pass
        assert reported == [1] and queue.length == 1
    with queue.turn():
        assert queue.length == 1


def test_host_and_origin_must_name_this_server(tiny_model):
    with running_demo(*tiny_model) as server:
        port = server.server_address[1]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
            assert request(server, "/api/config", headers={"Host": host})[0] == 200, host
        assert request(server, "/api/config", headers={"Host": f"127.0.0.1:{port + 1}"})[0] == 200  # forwarded
        for host in (f"evil.example:{port}", f"192.0.2.7:{port}", f"{socket.gethostname()}:{port}"):
            status, body = request(server, "/api/config", headers={"Host": host})
            assert status == 403 and "is not this demo's address" in json.loads(body)["error"], host
        assert request(server, "/", method="HEAD", headers={"Host": f"evil.example:{port}"}) == (403, b"")
        own = {"Origin": f"http://127.0.0.1:{port}"}
        assert request(server, "/api/session?sample=scene-1", headers=own)[0] == 200
        for origin in ("http://evil.example", f"http://evil.example:{port}", "null", f"https://127.0.0.1:{port}"):
            status, body = request(server, "/api/session?sample=scene-1", headers={"Origin": origin})
            assert status == 403 and json.loads(body)["error"].startswith(f"Origin {origin!r} is not"), origin


def test_which_hosts_a_bound_address_answers_to():
    loopback = AddressCheck("127.0.0.1", 7860)
    assert loopback.host("127.0.0.1:7860") and loopback.host("localhost:7860") and loopback.host("[::1]:7860")
    assert not loopback.host("192.168.1.5:7860") and not loopback.host("a:b")
    assert loopback.host("localhost:9000")  # a forwarded port (ssh -L 9000:localhost:7860)
    lan = AddressCheck("192.168.1.5", 80)
    assert lan.host("192.168.1.5") and lan.host("localhost") and not lan.host("192.168.1.6")
    named = AddressCheck("demo.lan", 8000)
    assert named.host("demo.lan:8000") and named.host("DEMO.LAN:8000") and not named.host("evil.lan:8000")
    everywhere = AddressCheck("0.0.0.0", 7860)
    assert everywhere.host("10.1.2.3:7860") and everywhere.host("[fe80::1]:7860") and everywhere.host("localhost:7860")
    assert everywhere.host(f"{socket.gethostname()}:7860")
    assert not everywhere.host("evil.example:7860") and not everywhere.host("10.1.2.3:7861")
    assert everywhere.origin("http://10.1.2.3:7860", "10.1.2.3:7860")
    assert not everywhere.origin("http://evil.example:7860", "evil.example:7860")
    # A page at another address this server would answer to is still another site.
    assert not everywhere.origin("http://203.0.113.9:7860", "10.1.2.3:7860")
    assert not everywhere.origin("http://[2001:db8::66]:7860", "10.1.2.3:7860")


def test_head_is_answered_like_get(tiny_model):
    with running_demo(*tiny_model) as server:
        for path in ("/", "/app.js", "/api/config", "/nope"):
            connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
            connection.request("GET", path)
            get = connection.getresponse()
            content = get.read()
            connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
            connection.request("HEAD", path)
            head = connection.getresponse()
            assert head.status == get.status and head.read() == b""
            assert head.headers["Content-Length"] == get.headers["Content-Length"] == str(len(content))


def raw_connection(server):
    return socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10)


def closed_within(sock, seconds):
    """What the server sent before it closed the connection, or None if it was still open after ``seconds``."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return received


@pytest.mark.slow
def test_stalled_clients_are_cut_off_and_logged_in_one_line_each(tiny_model, capsys):
    with running_demo(*tiny_model, idle_timeout=0.5, request_timeout=2.0) as server:
        start = time.monotonic()
        # 30 uploads that stop after their first bytes: each is answered 408 and closed after the idle time-out.
        stalled = []
        for _ in range(30):
            sock = raw_connection(server)
            head = f"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1:{server.server_address[1]}\r\nContent-Length: 100000\r\n\r\n"
            sock.sendall(head.encode() + png()[:20])
            stalled.append(sock)
        assert request(server, "/api/config")[0] == 200  # the demo still answers meanwhile
        answers = [closed_within(sock, 5) for sock in stalled]
        assert all(a is not None and a.startswith(b"HTTP/1.0 408 ") and b"The upload stalled" in a for a in answers)
        # A client that trickles its headers, each line within the idle time-out, is cut off at the request's deadline.
        trickle = raw_connection(server)
        trickle.sendall(b"GET / HTTP/1.1\r\n")
        opened = time.monotonic()
        closed = None
        while closed is None and time.monotonic() - opened < 6:
            try:
                trickle.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
            closed = closed_within(trickle, 0.3)
        assert time.monotonic() - opened < 4
        for sock in [*stalled, trickle]:
            sock.close()
        assert time.monotonic() - start < 15
    log = capsys.readouterr().err
    assert "Traceback" not in log
    assert log.count('"POST /api/session HTTP/1.1" 408') == 30
    assert log.count("Request timed out") == 1


def test_a_client_that_leaves_mid_answer_is_one_line_and_changes_nothing(tiny_model, capsys):
    with running_demo(*tiny_model, max_new_tokens=64) as server:
        session = json.loads(request(server, "/api/session?sample=scene-1")[1])["session"]
        queue = server.app.store.queue
        with queue.turn():  # the question waits; the client gives up meanwhile
            sock = raw_connection(server)
            payload = json.dumps({"session": session, "message": "hi"}).encode()
            sock.sendall(b"POST /api/ask HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload))
            while queue.length < 2:
                time.sleep(0.01)
            assert sock.recv(4096).startswith(b"HTTP/1.0 200")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # reset
        while queue.length:
            time.sleep(0.01)
        assert server.app.store.get(session).chat.history == []
        assert (
            events(request(server, "/api/ask", json_body={"session": session, "message": "hi"})[1])[-1]["event"]
            == "answer"
        )
    log = capsys.readouterr().err
    assert "Traceback" not in log and log.count("the client left before the answer was complete") == 1


def test_connections_over_the_limit_are_refused_at_once(tiny_model, capsys):
    with running_demo(*tiny_model, max_connections=2, idle_timeout=5) as server:
        held = [raw_connection(server) for _ in range(2)]
        time.sleep(0.2)
        status, body = request(server, "/api/config")
        assert status == 503 and json.loads(body) == {"error": "the demo is busy; try again in a moment"}
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 5
        while request(server, "/api/config")[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert "refused: already serving 2 connections" in capsys.readouterr().err
