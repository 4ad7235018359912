"""The OpenAI-compatible client against a scripted server: retries bounded, nothing lost or duplicated, secrets kept."""

import base64
import io

import pytest
from PIL import Image

from allseeing.infer.openai_client import ChatClient, Endpoint, RemoteError, answer_all, chat_messages
from tests.infer.stub_openai import ScriptedServer, closed_port_url


@pytest.fixture
def server():
    servers = []

    def start(script=None, **kwargs):
        servers.append(ScriptedServer(script, **kwargs))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def client(*urls, sleeps=None, **settings):
    endpoint = Endpoint(base_urls=urls, served_model="m", **{"backoff_s": 0.01, **settings})
    return ChatClient(endpoint, sleep=(sleeps.append if sleeps is not None else lambda s: None))


def ask(text):
    return [{"role": "user", "content": text}]


def test_messages_carry_the_image_first_as_png_and_the_text_without_its_marker():
    image = Image.new("RGB", (3, 2), (10, 200, 30))
    messages = chat_messages([("<image>\nWhat is here?", "A cat."), ("And left of it?", None)], image)
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    picture, text = messages[0]["content"]
    assert text == {"type": "text", "text": "What is here?"} and messages[1]["content"] == "A cat."
    prefix, data = picture["image_url"]["url"].split(",", 1)
    assert prefix == "data:image/png;base64"
    decoded = Image.open(io.BytesIO(base64.b64decode(data)))
    assert decoded.size == (3, 2) and decoded.getpixel((1, 1)) == (10, 200, 30)  # lossless
    assert messages[2]["content"] == "And left of it?"
    with pytest.raises(ValueError, match="no image"):
        chat_messages([("<image>\nQ", None)], None)


def test_busy_and_failing_answers_are_retried_until_answered(server):
    s = server(
        {
            "busy": [("status", 429, 0)],
            "broken": [("status", 500), ("status", 503)],
            "unreadable": [("garbage",)],
        }
    )
    sleeps = []
    c = client(s.url, sleeps=sleeps)
    assert [c.complete(ask(t), 8, t) for t in ("busy", "broken", "unreadable")] == [
        "answer: busy",
        "answer: broken",
        "answer: unreadable",
    ]  # stripped, as upstream strips
    assert s.attempts == {"busy": 2, "broken": 3, "unreadable": 2}
    assert sleeps[0] == 0  # Retry-After honoured; then backoff doubles: [0.005, 0.01) then [0.01, 0.02)
    assert 0.005 <= sleeps[1] < 0.01 and 0.01 <= sleeps[2] < 0.02
    assert s.bodies[0] == {"model": "m", "messages": ask("busy"), "max_tokens": 8, "temperature": 0, "stream": False}


def test_a_time_out_is_retried(server):
    s = server({"slow": [("sleep", 1.0)]})
    assert client(s.url, timeout_s=0.3).complete(ask("slow"), 8, "q") == "answer: slow"
    assert s.attempts["slow"] == 2


def test_retries_are_bounded_and_the_error_is_one_line(server):
    s = server({"down": [("status", 503)] * 10})
    with pytest.raises(RemoteError) as error:
        client(s.url, max_retries=3).complete(ask("down"), 8, "question 'q7'")
    assert s.attempts["down"] == 4
    message = str(error.value)
    assert "\n" not in message and message.startswith(s.url)
    assert "no answer to question 'q7' after 4 tries (last: HTTP 503 scripted 503)" in message


def test_a_refusal_is_not_retried(server):
    s = server({"q": [("status", 401)]})
    with pytest.raises(RemoteError, match=r"HTTP 401 scripted 401 \(q\)$"):
        client(s.url).complete(ask("q"), 8, "q")
    assert s.attempts["q"] == 1


def test_a_server_that_is_not_there_fails_after_its_retries():
    url = closed_port_url()
    with pytest.raises(RemoteError, match=r"after 3 tries \(last: ConnectionRefusedError"):
        client(url, max_retries=2).complete(ask("q"), 8, "q")


def test_a_retry_goes_to_the_next_server(server):
    s = server()
    c = client(closed_port_url(), s.url)
    assert [c.complete(ask(f"q{i}"), 8, "q") for i in range(4)] == [f"answer: q{i}" for i in range(4)]


def test_the_key_comes_from_the_environment_and_only_goes_in_the_header(server, monkeypatch):
    s = server()
    monkeypatch.setenv("STUB_KEY", "sk-secret")
    c = client(s.url, api_key_env="STUB_KEY")
    c.complete(ask("q"), 8, "q")
    assert s.headers[0]["Authorization"] == "Bearer sk-secret"
    assert "sk-secret" not in str(s.bodies)
    monkeypatch.delenv("STUB_KEY")
    with pytest.raises(ValueError, match="STUB_KEY: that environment variable is not set"):
        client(s.url, api_key_env="STUB_KEY")


def test_a_url_that_could_carry_a_secret_is_refused():
    for url in ("https://user:pw@api.example.com/v1", "https://api.example.com/v1?key=abc"):
        with pytest.raises(ValueError, match=r"api.example.com\.\.\.: a URL with a user, password, query"):
            Endpoint(base_urls=(url,), served_model="m")
    with pytest.raises(ValueError, match="not an http"):
        Endpoint(base_urls=("127.0.0.1:8000",), served_model="m")
    assert Endpoint(base_urls=("http://[::1]:8000/v1",), served_model="m").base_urls == ("http://[::1]:8000/v1",)


def test_all_jobs_are_answered_once_with_bounded_concurrency(server):
    s = server({"q3": [("status", 500)], "q5": [("status", 429, 0)]})
    jobs = [(f"k{i}", lambda i=i: (ask(f"q{i}"), 8)) for i in range(20)]
    answers = dict(answer_all(client(s.url, concurrency=3), jobs))
    assert answers == {f"k{i}": f"answer: q{i}" for i in range(20)}
    assert 2 <= s.most_in_flight <= 3


def test_a_job_that_fails_for_good_stops_new_ones_and_loses_none_answered(server):
    s = server({"q2": [("status", 503)] * 10})
    jobs = [(f"k{i}", lambda i=i: (ask(f"q{i}"), 8)) for i in range(12)]
    answered = []
    with pytest.raises(RemoteError, match="question 'k2' after 2 tries"):
        for key, _ in answer_all(client(s.url, concurrency=2, max_retries=1), jobs):
            answered.append(key)
    assert "k2" not in answered and {"k0", "k1"} <= set(answered)
    assert len(answered) == len(set(answered)) and len(answered) < 11  # no new job after the failure
    assert sum(s.attempts.values()) == len(answered) + 2


def test_a_redirect_is_not_followed_so_the_key_stays_home(server, monkeypatch):
    elsewhere = server()
    s = server({"q": [("redirect", elsewhere.url + "/chat/completions")]})
    monkeypatch.setenv("STUB_KEY", "sk-secret")
    with pytest.raises(
        RemoteError, match=r"HTTP 302, redirected to .*: give that URL as --base-url .*\(question 'q'\)"
    ):
        client(s.url, api_key_env="STUB_KEY").complete(ask("q"), 8, "question 'q'")
    assert s.attempts["q"] == 1 and not elsewhere.headers  # not retried, and nothing reached the other server
