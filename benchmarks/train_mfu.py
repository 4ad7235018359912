"""Training MFU at a realistic shape on a GPU, against the card's own matrix-product ceiling, in the same run.

    python benchmarks/train_mfu.py [--llm llama-1.3b] [--batch 8] [--length 2048] [--steps 8]
    python benchmarks/train_mfu.py --llm tiny --device cpu --batch 2 --length 128 --steps 2   # a check of the script

The model is ASMv2's layout at stage-2 fine-tuning: the vision tower of ``asmv2-13b`` (CLIP ViT-L/14-336, 576
image tokens, frozen) and a LLaMA language model of --llm's shape with the projector, both trained, randomly
initialised (speed does not depend on the weights). One step is ``recipe.train``'s: bf16 autocast, the summed
token loss, backward, gradient clipping, AdamW on float32 weights. Each sequence is 576 image tokens and text up
to --length, the loss on the text.

Model FLOPs per step (the work the step needs, as MFU counts it): 6 x (trained matrix parameters: projector, LLM
layers and lm_head; embeddings are lookups) x tokens, plus attention 12 x layers x width x length per token
(forward and backward, full-length convention); the frozen vision tower costs its forward only: 2 x parameters x
577 positions plus attention. The baseline is an 8192 x 8192 x 8192 bf16 matrix product on random data: MFU is
given against it and against the datasheet's dense bf16 peak (989 TFLOP/s for H100/H200 SXM).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace

import torch

from allseeing.data.synth.generate import text_corpus
from allseeing.data.tokenize import IGNORE_INDEX
from allseeing.model.build import new_model
from allseeing.model.presets import PRESETS, ModelPreset
from allseeing.train.loss import summed_loss
from allseeing.train.setup import set_trainable

DATASHEET_BF16_TFLOPS = 989.0  # H100 / H200 SXM, dense
LLM_SHAPES = {
    # LLaMA-style shapes (RMSNorm, SwiGLU, no bias); vocabulary 32064 as ASMv2's
    "llama-1.3b": dict(hidden_size=2048, intermediate_size=5504, num_hidden_layers=24, num_attention_heads=16),
    "llama-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32),
}


def preset_for(llm: str) -> ModelPreset:
    if llm == "tiny":
        return replace(PRESETS["tiny"], vocab_size=512)
    base = PRESETS["asmv2-13b"]
    shape = LLM_SHAPES[llm]
    return replace(
        base, name=f"asmv2-{llm}", text={**base.text, **shape, "num_key_value_heads": shape["num_attention_heads"]}
    )


def matmul_tflops(device: str, size: int = 8192, repeats: int = 10) -> float:
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e12


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_flops(model, image_positions: int, tokens: int, length: int, batch: int) -> float:
    text = model.config.text_config
    vision = model.config.vision_config
    llm = model.model.language_model
    matrix = sum(p.numel() for n, p in llm.named_parameters() if p.ndim == 2 and "embed_tokens" not in n)
    matrix += model.lm_head.weight.numel()
    projector = sum(p.numel() for p in model.model.multi_modal_projector.parameters() if p.ndim == 2)
    trained = 6 * (matrix * tokens + projector * image_positions * batch)
    attention = 12 * text.num_hidden_layers * text.hidden_size * length * tokens
    vision_params = sum(p.numel() for p in model.model.vision_tower.parameters() if p.ndim == 2)
    positions = image_positions + 1  # with CLS
    vision_forward = batch * (
        2 * vision_params * positions + 4 * vision.num_hidden_layers * vision.hidden_size * positions**2
    )
    return trained + attention + vision_forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm", default="llama-1.3b", choices=(*LLM_SHAPES, "tiny"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    preset = preset_for(args.llm)
    with torch.device(args.device):
        model, processor = new_model(preset, list(text_corpus(200)), seed=0)
    set_trainable(model, "llm_and_projector")
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)

    image_tokens = preset.image_tokens
    generator = torch.Generator().manual_seed(0)
    text_ids = torch.randint(
        3,
        min(model.config.text_config.vocab_size, 32000),
        (args.batch, args.length - image_tokens - 1),
        generator=generator,
    )
    input_ids = torch.cat(
        [
            torch.ones(args.batch, 1, dtype=torch.long),
            torch.full((args.batch, image_tokens), processor.special.image, dtype=torch.long),
            text_ids,
        ],
        dim=1,
    )
    labels = input_ids.clone()
    labels[:, : 1 + image_tokens] = IGNORE_INDEX
    size = preset.vision["image_size"]
    batch = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values": torch.randn(args.batch, 3, size, size, generator=generator),
    }
    batch = {k: v.to(args.device) for k, v in batch.items()}
    labels = labels.to(args.device)
    tokens = int((labels[:, 1:] != IGNORE_INDEX).sum())

    def step() -> float:
        start = time.perf_counter()
        with torch.autocast(torch.device(args.device).type, dtype=torch.bfloat16):
            loss, count, _ = summed_loss(model, {**batch, "labels": labels})
            (loss / count).backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize(args.device)
        return time.perf_counter() - start

    for _ in range(2):  # warm-up: allocator, kernels, optimizer state
        step()
    seconds = statistics.median(step() for _ in range(args.steps))
    flops = step_flops(model, image_tokens, args.batch * args.length, args.length, args.batch)
    ceiling = matmul_tflops(args.device)
    achieved = flops / seconds / 1e12
    report = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
        "torch": torch.__version__,
        "model": {
            "llm": args.llm,
            "parameters": sum(p.numel() for p in model.parameters()),
            "trained_parameters": sum(p.numel() for p in trainable),
            "image_tokens": image_tokens,
        },
        "batch": args.batch,
        "length": args.length,
        "trained_tokens_per_step": tokens,
        "step_seconds_median": round(seconds, 4),
        "tokens_per_s": round(args.batch * args.length / seconds),
        "model_tflops_per_step": round(flops / 1e12, 2),
        "achieved_tflops": round(achieved, 1),
        "baseline_matmul_bf16_tflops": round(ceiling, 1),
        "mfu_vs_measured_matmul": round(achieved / ceiling, 3),
        "mfu_vs_datasheet": round(achieved / DATASHEET_BF16_TFLOPS, 3),
    }
    if args.device.startswith("cuda"):
        report["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
