"""Training configs: the stage presets, typed overrides, the derived accumulation, trainable parameter sets."""

import json

import pytest

from allseeing.model.build import new_model
from allseeing.train.config import ConfigError, load_config
from allseeing.train.setup import set_trainable

STAGES = {
    "stage1-pretrain": ("projector", "plain", "square", 256, 1e-3),
    "stage1-finetune": ("llm_and_projector", "vicuna_v1", "pad", 128, 2e-5),
    "stage2-pretrain": ("llm_and_projector", "vicuna_v1", "pad", 512, 2e-5),
    "stage2-finetune": ("llm_and_projector", "vicuna_v1", "pad", 512, 2e-5),
}


@pytest.mark.parametrize("stage", STAGES)
def test_stage_presets_hold_upstreams_hyperparameters(stage):
    config = load_config(f"configs/train/{stage}.yaml")
    assert (
        config.trainable,
        config.template,
        config.image_aspect,
        config.global_batch,
        config.learning_rate,
    ) == STAGES[stage]
    assert (config.max_length, config.weight_decay, config.warmup_ratio, config.schedule, config.seed) == (
        2048,
        0.0,
        0.03,
        "cosine",
        42,
    )
    assert config.accumulation(32) == 1  # 32 GPUs, as upstream


def test_stage2_stops_where_upstream_stopped():
    assert load_config("configs/train/stage2-pretrain.yaml").max_steps == 5000
    finetune = load_config("configs/train/stage2-finetune.yaml")
    assert (finetune.epochs, finetune.max_steps) == (3, 15540)


def test_the_global_batch_is_kept_when_processes_change():
    config = load_config("configs/train/stage1-finetune.yaml", ["per_device_batch=4"])
    assert [config.accumulation(world) for world in (1, 2, 8, 32)] == [32, 16, 4, 1]
    with pytest.raises(ConfigError, match="not a multiple"):
        config.accumulation(3)


def test_overrides_are_typed_and_unknown_keys_refused():
    config = load_config(
        "configs/train/small-synth.yaml", ["bf16=false", "max_steps=none", "learning_rate=3e-4", "epochs=1.5"]
    )
    assert (config.bf16, config.max_steps, config.learning_rate, config.epochs) == (False, None, 3e-4, 1.5)
    assert config.data[2].path == "synth/train/predicate.json" and config.data[2].ratio == 0.5
    with pytest.raises(ConfigError, match=r"unknown keys \['lr'\]"):
        load_config("configs/train/small-synth.yaml", ["lr=1"])
    with pytest.raises(ConfigError, match="per_device_batch: expected int"):
        load_config("configs/train/small-synth.yaml", ["per_device_batch=four"])
    with pytest.raises(ConfigError, match="trainable must be one of"):
        load_config("configs/train/small-synth.yaml", ["trainable=vision"])
    with pytest.raises(ConfigError, match="binding_readout_weight > 0 needs binding_weight > 0"):
        load_config("configs/train/small-synth.yaml", ["binding_readout_weight=1"])
    with pytest.raises(ConfigError, match="binding_first_target must be one of box, name"):
        load_config("configs/train/small-synth.yaml", ["binding_first_target=digit"])
    with pytest.raises(ConfigError, match="binding_first_target name needs first or name\\+first anchors, got 'all'"):
        load_config("configs/train/small-synth.yaml", ["binding_first_target=name", "binding_anchors=all"])
    with pytest.raises(ConfigError, match="binding term 'name@1:0' is not ANCHOR@LAYER:HEAD->TARGET"):
        load_config("configs/train/small-synth.yaml", ["binding_terms=name@1:0"])
    terms = load_config("configs/train/small-synth.yaml", ["binding_terms=name@1:0->box, first@0:2->name"])
    assert [str(term) for term in terms.binding_term_list()] == ["name@1:0->box", "first@0:2->name"]
    with pytest.raises(ConfigError, match="binding_terms replaces binding_layer: give one or the other"):
        load_config("configs/train/small-synth.yaml", ["binding_terms=name@1:0->box", "binding_layer=1"])


def test_ratios_must_be_non_negative_and_leave_something_to_train():
    def data(*ratios):
        return "data=" + json.dumps([{"path": f"m{i}.json", "ratio": r} for i, r in enumerate(ratios)])

    assert [s.ratio for s in load_config(None, [data(1.0, 0.0)]).data] == [1.0, 0.0]
    with pytest.raises(ConfigError, match=r"data m1.json: ratio must be a finite number >= 0, got -0.5"):
        load_config(None, [data(1.0, -0.5)])
    with pytest.raises(ConfigError, match="every manifest under 'data' has ratio 0"):
        load_config(None, [data(0.0, 0.0)])


@pytest.fixture(scope="module")
def tiny():
    return new_model("tiny", ["a red circle left of a blue star"], seed=0)[0]


def trainable_parts(model) -> set[str]:
    return {
        name.split(".")[1] if name.startswith("model.") else name.split(".")[0]
        for name, p in model.named_parameters()
        if p.requires_grad
    }


@pytest.mark.parametrize(
    ("stage", "parts"),
    [
        ("stage1-pretrain", {"multi_modal_projector"}),
        ("stage1-finetune", {"multi_modal_projector", "language_model", "lm_head"}),
        ("stage2-pretrain", {"multi_modal_projector", "language_model", "lm_head"}),
        ("stage2-finetune", {"multi_modal_projector", "language_model", "lm_head"}),
        ("small-synth", {"multi_modal_projector", "language_model", "lm_head", "vision_tower"}),
    ],
)
def test_each_stage_trains_the_right_modules(tiny, stage, parts):
    config = load_config(f"configs/train/{stage}.yaml")
    set_trainable(tiny, config.trainable, config.frozen_patch_embedding)
    assert trainable_parts(tiny) == parts
    if "vision_tower" not in parts:
        assert not any(p.requires_grad for p in tiny.model.vision_tower.parameters())


def test_frozen_patch_embedding_freezes_only_the_patch_projection(tiny):
    set_trainable(tiny, "all", frozen_patch_embedding=True)
    frozen = {name for name, p in tiny.named_parameters() if not p.requires_grad}
    assert frozen == {"model.vision_tower.embeddings.patch_embedding.weight"}
    set_trainable(tiny, "all")
    assert all(p.requires_grad for p in tiny.parameters())
