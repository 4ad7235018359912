"""Golden facts from the upstream ASMv2 code itself, run under its pinned stack, for the parity tests.

    python scripts/upstream_fixtures.py --upstream-src /path/to/all-seeing/all-seeing-v2 \
        [--venv /tmp/upstream-venv] [--out tests/fixtures/upstream]

``--upstream-src`` is the folder of the upstream repository (OpenGVLab/all-seeing) that holds its ``llava``
package. The script first builds a side virtual environment with upstream's pins (transformers 4.31.0,
tokenizers 0.13.3, sentencepiece 0.1.99; torch is the CPU wheel at hand, upstream's 2.0.1 has no wheel for
current Pythons) unless ``--venv`` already has one, then runs itself in it with that ``llava`` package on
``sys.path``. Every id, label, pixel and logit written comes from upstream's own functions: ``tokenizer_image_token``,
the conversation templates, ``preprocess_multimodal`` + ``preprocess_v1`` (training labels), the evaluation
loaders' datasets (single-turn, multi-turn/VCR, option ranking), ``process_images`` and ``LlavaLlamaForCausalLM``.
Nothing of upstream is copied here; the script only makes the inputs:

- a tiny SentencePiece BPE tokenizer trained on a synthetic corpus with LLaMA's settings (byte fallback, digits
  split, unk 0 / bos 1 / eos 2, dummy prefix, no normalisation), written as LLaMA tokenizer folders whose
  ``tokenizer_config.json`` has ``legacy`` false (vicuna-13b-v1.5's value), true, or no ``legacy`` key;
- a tiny CLIP vision tower and a tiny ASMv2 checkpoint built and saved by upstream's code (fp16, sharded
  ``pytorch_model-*.bin`` with transformers 4.31's ``rotary_emb.inv_freq`` buffers, the tokenizer with ``legacy``
  false, ``mm_vision_tower`` naming the hub CLIP as a real checkpoint does);
- non-square images (one with transparency) and question files in upstream's formats.

Outputs (in ``--out``): the folders above, ``images/``, ``questions/``, ``facts.json`` (prompt strings, ids with
upstream's -200 image id, training labels, greedy continuations, option losses, per ``legacy`` setting) and
``tensors.safetensors`` (pixel values, and the logits at the last prompt position for each prompt).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

PINS = [
    "torch==2.13.0",
    "transformers==4.31.0",
    "tokenizers==0.13.3",
    "sentencepiece==0.1.99",
    "protobuf",
    "numpy",
    "pillow",
    "einops",  # imported by upstream's llava.model (its MPT variant)
    "shortuuid",  # imported by upstream's evaluation loaders
]
LEGACY = {"false": False, "true": True, "absent": None}
SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
TEXT = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, vocab_size=400)
VISION = dict(
    hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
)
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
GREEDY_TOKENS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream-src", required=True, help="folder holding upstream's llava package")
    parser.add_argument("--venv", default="/tmp/upstream-venv", help="side virtual environment (built if absent)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests/fixtures/upstream"))
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    source = Path(args.upstream_src).resolve()
    if not (source / "llava" / "mm_utils.py").is_file():
        sys.exit(f"{source} has no llava/mm_utils.py: pass the all-seeing-v2 folder of OpenGVLab/all-seeing")
    if args.inner:
        write_facts(source, Path(args.out).resolve())
        return
    python = Path(args.venv) / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", args.venv], check=True)
        subprocess.run([str(python), "-m", "pip", "install", *PINS], check=True)
    command = [str(python), __file__, "--inner", "--upstream-src", str(source), "--out", args.out]
    subprocess.run(command, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})


# ---------------------------------------------------------------- everything below runs in the side environment


def corpus() -> list[str]:
    """Synthetic training text for the tokenizer. The upper-case words make ``USER`` split as LLaMA's vocabulary
    splits it (``▁US`` ``ER``, with ``US`` a piece of its own), so that upstream's ``legacy=False`` rule gives real
    pieces after ``</s>`` here too, as it does for vicuna-13b-v1.5."""
    import random

    rng = random.Random(0)
    words = (
        "the a an red blue green small large cube ball cone person dog car bus table cup is on in under near left "
        "right of what where who how many are there colour shape answer question with grounding scene graph describe "
        "image region box man woman sitting holding riding next to behind front it this that and or "
        "US USA USB BUS MUSEUM ER HER HERO ERA ASSIST ANT"
    ).split()
    lines = [SYSTEM] * 20
    for _ in range(600):
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(4, 12)))
        box = ", ".join(str(rng.randint(0, 999)) for _ in range(4))
        lines.append(
            f"{sentence.capitalize()}: <ref>{rng.choice(words)}</ref><box>[[{box}]]</box>. "
            f"({rng.choice('ABCD')}) {sentence}?"
        )
    return lines


def train_tokenizer(path: Path) -> None:
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_writer=model,
        vocab_size=TEXT["vocab_size"],
        model_type="bpe",
        byte_fallback=True,
        split_digits=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        character_coverage=1.0,
        allow_whitespace_only_pieces=True,
        num_threads=1,
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())


def tokenizer_folder(model: Path, folder: Path, legacy: bool | None) -> None:
    """A LLaMA tokenizer folder as vicuna-13b-v1.5 ships it (special tokens as AddedToken dicts)."""

    def added(content: str) -> dict:
        return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": False, "rstrip": False,
                "single_word": False}  # fmt: skip

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(model.read_bytes())
    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": added("<s>"),
        "clean_up_tokenization_spaces": False,
        "eos_token": added("</s>"),
        "model_max_length": 2048,
        "pad_token": None,
        "padding_side": "right",
        "sp_model_kwargs": {},
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": added("<unk>"),
    }
    if legacy is not None:
        config["legacy"] = legacy
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special = {"bos_token": added("<s>"), "eos_token": added("</s>"), "unk_token": added("<unk>")}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")


def write_images(folder: Path) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (28, 45, 3), dtype=np.uint8)).save(folder / "wide.png")
    Image.fromarray(rng.integers(0, 256, (41, 27, 3), dtype=np.uint8)).save(folder / "tall.png")
    rgba = rng.integers(0, 256, (22, 37, 4), dtype=np.uint8)
    rgba[:, :12, 3] = 0  # fully transparent strip: its colour is whatever the file holds under it
    Image.fromarray(rgba, "RGBA").save(folder / "alpha.png")


QUESTIONS = {
    "single": {
        "question_id": "single",
        "image": "wide.png",
        "text": "Where is the red cube? Answer the question with grounding.",
    },
    "chat": {
        "question_id": "chat",
        "image": "wide.png",
        "conversations": [
            {"from": "human", "value": "<image>\nDescribe the image."},
            {"from": "gpt", "value": "<ref>A red cube</ref><box>[[12, 340, 517, 998]]</box> is on the left."},
            {"from": "human", "value": "What is right of it?"},
        ],
    },
    "vcr": {
        "question_id": "7-qar",
        "image": "tall.png",
        "conversations": [
            {
                "from": "human",
                "value": "<image>\nWhat is <ref>person1</ref><box>[[100, 20, 480, 990]]</box> doing?\n"
                "(A) sitting on the bus.\n(B) riding a dog.\nAnswer with the option's letter from the given choices "
                "directly.",
            },
            {"from": "gpt", "value": "A"},
            {
                "from": "human",
                "value": "Why? (A) the seat is behind her.\n(B) USB is near.\nAnswer with the option's letter from "
                "the given choices directly.",
            },
        ],
        "correct_option": "A",
        "category": "qar",
    },
    "alpha": {"question_id": "alpha", "image": "alpha.png", "text": "What colour is the ball?"},
    "rank": {
        "question_id": "rank",
        "image": "wide.png",
        "text": "What is the relation between the man and the dog? Answer with one phrase.",
        "label_format": "{}",
    },
}
OPTIONS = ["on", "holding", "next to", "riding"]
TRAINING = {
    "train": {
        "id": "train",
        "image": "tall.png",
        "conversations": [  # the image marker after the text: upstream moves it to the front
            {"from": "human", "value": "Describe the image briefly.\n<image>"},
            {"from": "gpt", "value": "A man <ref>sitting</ref><box>[[3, 4, 500, 600]]</box> on a bus."},
            {"from": "human", "value": "Is there a dog?"},
            {"from": "gpt", "value": "Yes, next to the USB cable."},
            {"from": "human", "value": "How many?"},
            {"from": "gpt", "value": "2"},
        ],
    },
    "train_single": {
        "id": "train_single",
        "image": "wide.png",
        "conversations": [
            {"from": "human", "value": "<image>\nWhat is on the table?"},
            {"from": "gpt", "value": "A blue cup."},
        ],
    },
}


def stub_storage_client() -> None:
    """upstream's train.py imports and instantiates its internal storage client (petrel) at import time; images
    here are local files, so an empty stand-in is enough."""
    import types

    package, module = types.ModuleType("petrel_client"), types.ModuleType("petrel_client.client")
    module.Client = type("Client", (), {})
    sys.modules.update({"petrel_client": package, "petrel_client.client": module})


def build_checkpoint(out: Path, tokenizer_dir: Path) -> Path:
    """The tiny CLIP tower and ASMv2 checkpoint, built as upstream's train.py builds them and saved as it saves."""
    from types import SimpleNamespace

    import torch
    from llava.model import LlavaConfig, LlavaLlamaForCausalLM
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    clip = out / "clip"
    torch.manual_seed(0)
    CLIPVisionModel(CLIPVisionConfig(**VISION, projection_dim=16)).save_pretrained(clip)
    CLIPImageProcessor(
        size={"shortest_edge": VISION["image_size"]},
        crop_size={"height": VISION["image_size"], "width": VISION["image_size"]},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    ).save_pretrained(clip)

    # Longer than every prompt here: past it, transformers 4.31 rebuilds its rotary table from the saved (fp16-rounded)
    # inv_freq buffer, which a real checkpoint (4096 positions, prompts within 2048) never does.
    config = LlavaConfig(**TEXT, max_position_embeddings=1024, rms_norm_eps=1e-5, initializer_range=0.2,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2)  # fmt: skip
    torch.manual_seed(1)
    model = LlavaLlamaForCausalLM(config)
    model_args = SimpleNamespace(
        vision_tower=str(clip),
        mm_vision_select_layer=-2,
        mm_vision_select_feature="patch",
        pretrain_mm_mlp_adapter=None,
        mm_projector_type="mlp2x_gelu",
    )
    model.get_model().initialize_vision_modules(model_args=model_args)
    with torch.no_grad():  # a projector that is not near zero, so the image matters to the logits
        for parameter in model.get_model().mm_projector.parameters():
            parameter.normal_(0.0, 0.3)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, use_fast=False, model_max_length=2048)
    model.config.update(
        {
            "image_aspect_ratio": "pad",
            "tokenizer_padding_side": "right",
            "tokenizer_model_max_length": 2048,
            "tune_mm_mlp_adapter": False,
            "freeze_mm_mlp_adapter": False,
            "mm_use_im_start_end": False,
            "mm_projector_lr": None,
            "mm_use_im_patch_token": False,
            # a real checkpoint names the hub tower; the weights travel in the CLIP folder given to the converter
            "mm_vision_tower": "openai/clip-vit-large-patch14-336",
        }
    )
    checkpoint = out / "checkpoint"
    model.to(torch.float16).save_pretrained(checkpoint, max_shard_size="20KB")
    tokenizer.save_pretrained(checkpoint)
    return clip


def write_facts(source: Path, out: Path) -> None:
    sys.path.insert(0, str(source))
    stub_storage_client()
    from types import SimpleNamespace

    import sentencepiece
    import tokenizers
    import torch
    import transformers
    from llava import conversation as conversation_lib
    from llava.eval import model_vqa_loader, model_vqa_loader_multi_turn, model_vqa_loader_vocab_rank
    from llava.mm_utils import process_images
    from llava.model import LlavaLlamaForCausalLM
    from llava.train import train as upstream_train
    from PIL import Image
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    model_file = out / "tokenizer.model"
    train_tokenizer(model_file)
    for name, legacy in LEGACY.items():
        tokenizer_folder(model_file, out / f"tokenizer-legacy-{name}", legacy)
    model_file.unlink()
    write_images(out / "images")
    questions = out / "questions"
    questions.mkdir(exist_ok=True)
    for name, question in QUESTIONS.items():
        (questions / f"{name}.jsonl").write_text(json.dumps(question) + "\n")
    (questions / "options.json").write_text(json.dumps(OPTIONS) + "\n")
    (questions / "train.json").write_text(json.dumps(list(TRAINING.values()), indent=1) + "\n")
    clip = build_checkpoint(out, out / "tokenizer-legacy-false")

    model = LlavaLlamaForCausalLM.from_pretrained(
        out / "checkpoint", torch_dtype=torch.float32, mm_vision_tower=str(clip)
    ).eval()
    tower = model.get_vision_tower()
    if not tower.is_loaded:
        tower.load_model()
    image_processor = tower.image_processor
    # The evaluation loaders read the conversation mode from their module's command-line arguments.
    for module in (model_vqa_loader, model_vqa_loader_multi_turn, model_vqa_loader_vocab_rank):
        module.args = SimpleNamespace(conv_mode="vicuna_v1")
    conversation_lib.default_conversation = conversation_lib.conv_templates["vicuna_v1"]

    tensors: dict[str, torch.Tensor] = {}
    for name in ("wide", "tall", "alpha"):
        image = Image.open(out / "images" / f"{name}.png").convert("RGB")  # the evaluation loaders' conversion
        tensors[f"pixels/{name}"] = process_images([image], image_processor, model.config)[0].contiguous()

    facts: dict = {
        "versions": {
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "sentencepiece": sentencepiece.__version__,
            "torch": torch.__version__,
        },
        "image_tokens": (VISION["image_size"] // VISION["patch_size"]) ** 2,
        "vocab_size": TEXT["vocab_size"],
        "legacy": {},
    }
    images = str(out / "images")
    for name in LEGACY:
        tokenizer = AutoTokenizer.from_pretrained(out / f"tokenizer-legacy-{name}", use_fast=False)
        tokenizer.pad_token = tokenizer.unk_token  # as train.py and the evaluation set it for vicuna_v1
        cases: dict = {}
        for case, loader in (("single", model_vqa_loader), ("chat", model_vqa_loader_multi_turn),
                             ("vcr", model_vqa_loader_multi_turn)):  # fmt: skip
            dataset = loader.CustomDataset([QUESTIONS[case]], images, tokenizer, image_processor, model.config)
            input_ids, pixels = dataset[0]
            logits, greedy, margin = run_model(model, input_ids, pixels)
            tensors[f"logits/{name}/{case}"] = logits
            cases[case] = {
                "prompt": prompt_text(conversation_lib, QUESTIONS[case]),
                "input_ids": input_ids.tolist(),
                "greedy_ids": greedy,
                "greedy_min_margin": margin,
            }
        cases["rank"] = rank_losses(model, model_vqa_loader_vocab_rank, tokenizer, image_processor, images)
        for case, record in TRAINING.items():
            data_args = SimpleNamespace(is_multimodal=True, clean_strip=False, mm_use_im_start_end=False,
                                        mm_use_im_patch_token=False, num_im_patch_tokens=0)  # fmt: skip
            sources = upstream_train.preprocess_multimodal([json.loads(json.dumps(record["conversations"]))], data_args)
            encoded = upstream_train.preprocess_v1(sources, tokenizer, has_image=True)
            cases[case] = {"input_ids": encoded["input_ids"][0].tolist(), "labels": encoded["labels"][0].tolist()}
        facts["legacy"][name] = cases
    (out / "facts.json").write_text(json.dumps(facts) + "\n")
    save_file(tensors, out / "tensors.safetensors")


def prompt_text(conversation_lib, question: dict) -> str:
    """The prompt string the evaluation loaders build (template filled with the image-first question)."""
    conversation = conversation_lib.conv_templates["vicuna_v1"].copy()
    if "conversations" in question:
        turns = model_vqa_turns(question["conversations"])
    else:
        turns = ["<image>\n" + question["text"]]
    for index, value in enumerate(turns):
        conversation.append_message(conversation.roles[index % 2], value)
    conversation.append_message(conversation.roles[1], None)
    return conversation.get_prompt()


def model_vqa_turns(conversations: list[dict]) -> list[str]:
    from llava.eval.model_vqa_loader_multi_turn import preprocess_multimodal

    (source,) = preprocess_multimodal([json.loads(json.dumps(conversations))])
    return [sentence["value"] for sentence in source]


def run_model(model, input_ids, pixels):
    """Logits at the last prompt position, greedy ids, and the smallest top-2 logit gap along the greedy path."""
    import torch

    with torch.inference_mode():
        logits = model(input_ids=input_ids[None], images=pixels[None]).logits[0, -1].float().contiguous()
        output = model.generate(
            input_ids[None],
            images=pixels[None],
            do_sample=False,
            max_new_tokens=GREEDY_TOKENS,
            use_cache=True,
            output_scores=True,
            return_dict_in_generate=True,
        )
    gaps = [float(step[0].topk(2).values[0] - step[0].topk(2).values[1]) for step in output.scores]
    return logits, output.sequences[0, input_ids.shape[0] :].tolist(), min(gaps)


def rank_losses(model, loader, tokenizer, image_processor, images: str) -> dict:
    """Upstream's option ranking: each option's mean loss over its tokens, from the model's own loss."""
    import contextlib
    import io

    import torch

    dataset = loader.CustomDataset([QUESTIONS["rank"]], images, tokenizer, image_processor, model.config, OPTIONS)
    losses, ids = [], []
    for index in range(len(OPTIONS)):
        with contextlib.redirect_stdout(io.StringIO()):  # the loader prints its first items whole
            input_ids, _, pixels, labels = dataset[index]
        with torch.inference_mode():
            output = model(input_ids=torch.tensor([input_ids]), images=pixels[None], labels=torch.tensor([labels]))
        losses.append(float(output.loss))
        ids.append(input_ids)
    return {"options": OPTIONS, "input_ids": ids, "losses": losses}


if __name__ == "__main__":
    main()
