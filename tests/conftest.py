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
