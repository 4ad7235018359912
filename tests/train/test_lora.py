"""LoRA through peft: what is trained, what the checkpoints hold, resuming, and the merged final model."""

import json

import pytest
import torch

from allseeing.model.build import load
from allseeing.train.checkpoint import TRAINABLE_FILE
from allseeing.train.config import ConfigError, load_config
from allseeing.train.recipe import train
from allseeing.train.setup import initial_model, set_trainable, with_lora
from tests.train.conftest import overrides

CONFIG = "configs/train/small-synth.yaml"
LORA = ["trainable=llm_and_projector", "lora_rank=4", "lora_alpha=8", "lora_dropout=0.1"]


def losses(out):
    return [json.loads(line)["loss"] for line in (out / "log.jsonl").read_text().splitlines()]


def test_lora_trains_the_adapters_and_the_projector_only(train_data, tmp_path):
    config = load_config(CONFIG, overrides(train_data, tmp_path, *LORA))
    model, _ = initial_model(config)
    set_trainable(model, config.trainable)
    adapted = with_lora(model, config)
    trained = [name for name, p in adapted.named_parameters() if p.requires_grad]
    adapters = [name for name in trained if "lora_" in name]
    assert adapters and all(".language_model." in name for name in adapters)
    targets = {name.split(".lora_")[0].rsplit(".", 1)[1] for name in adapters}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert set(trained) - set(adapters) == {
        name for name, _ in adapted.named_parameters() if ".multi_modal_projector." in name
    }


def test_lora_needs_the_llm_stage():
    with pytest.raises(ConfigError, match="lora_rank 4 needs trainable=llm_and_projector"):
        load_config(None, ["trainable=projector", "lora_rank=4", 'data=[{"path": "x.json"}]'])


@pytest.fixture(scope="module")
def lora_run(train_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora")
    config = load_config(CONFIG, overrides(train_data, out, *LORA, "max_steps=6"))
    train(config, progress=False)
    return out, config


@pytest.mark.slow
def test_a_lora_run_learns_and_saves_a_merged_plain_model(lora_run):
    out, config = lora_run
    curve = losses(out)
    assert len(curve) == 6 and curve[-1] < curve[0]
    assert (out / "checkpoint-6" / TRAINABLE_FILE).is_file() and not (
        out / "checkpoint-6" / "model.safetensors"
    ).exists()
    final, _ = load(out / "final")
    initial, _ = initial_model(config)
    before, after = dict(initial.named_parameters()), dict(final.named_parameters())
    assert set(before) == set(after)  # no adapter left: the merged model is the stock architecture
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert any(".multi_modal_projector." in name for name in changed)
    assert any(name.endswith("self_attn.q_proj.weight") for name in changed)
    assert all(
        ".vision_tower." not in name and "embed_tokens" not in name and "lm_head" not in name for name in changed
    )


@pytest.mark.slow
def test_a_resumed_lora_run_follows_the_same_curve(train_data, lora_run, tmp_path):
    full, _ = lora_run
    out = tmp_path / "resumed"
    train(load_config(CONFIG, overrides(train_data, out, *LORA, "max_steps=3")), progress=False)
    summary = train(
        load_config(CONFIG, overrides(train_data, out, *LORA, "max_steps=6", "resume=true")), progress=False
    )
    assert summary["start"] == 3
    assert losses(out) == pytest.approx(losses(full), rel=1e-6)
