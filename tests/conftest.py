"""Test-wide settings and shared fixtures: offline, deterministic."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised ``tiny`` model with a tokenizer trained on synthetic text, saved once per session."""
    from allseeing.data.synth.generate import text_corpus
    from allseeing.model.build import new_model, save

    model, processor = new_model("tiny", list(text_corpus(60, seed=0)), seed=0)
    folder = tmp_path_factory.mktemp("tiny_model")
    save(model, processor, folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from allseeing.model.build import load

    return load(tiny_model_dir)


def free_port() -> int:
    """A TCP port nobody listens on, for a torchrun rendezvous."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_checked(command: list[str], **kwargs) -> None:
    """Run a subprocess; on failure, show its output in the assertion."""
    import subprocess

    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
