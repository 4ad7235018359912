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


@pytest.fixture(scope="session")
def upstream_converted(tmp_path_factory):
    """``legacy`` -> the upstream fixture checkpoint (with that tokenizer) converted by ``allseeing convert``; each
    conversion runs once per session."""
    from allseeing.model.convert import convert
    from tests import upstream

    folders = {}

    def converted(legacy: str):
        if legacy not in folders:
            root = tmp_path_factory.mktemp(f"upstream_{legacy}")
            source = upstream.checkpoint(root / "checkpoint", legacy)
            folders[legacy] = convert(source, upstream.FIXTURES / "clip", root / "converted")
        return folders[legacy]

    return converted


def allseeing_on_two_processes(*argv: str) -> None:
    """Run ``allseeing ARGV`` under ``torchrun --nproc_per_node 2``; fail with its output."""
    on_two_processes("-m", "allseeing", *argv)


def on_two_processes(*target: str) -> None:
    """Run ``torchrun --nproc_per_node 2 TARGET`` (a free rendezvous port, one thread a process); fail with its
    output."""
    import os
    import shutil
    import socket
    import subprocess

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [shutil.which("torchrun"), "--nproc_per_node", "2", "--master_port", str(port), *target]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
