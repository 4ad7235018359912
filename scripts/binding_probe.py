"""Where binding a name to its object breaks: three teacher-forced probes on held-out grounding questions.

1. ``attention``: the share of one head's attention (``--layer``, ``--head``: the binding loss's head, see
   ``allseeing.train.binding``) that an anchor puts on the asked object's box and on another object's box of the
   same image (``--anchor first``: the position predicting the box's first digit; ``name``: the name's last token
   in the answer). ``asked_higher`` is the share of questions where the asked box gets more: 0.5 when the head
   finds objects but not the named one. ``--every-head`` adds the same for every head of every layer
   (``attention_by_head``, keyed ``LAYER:HEAD``): which heads look at objects from the anchor, and which pick one.
2. ``box_readable``: how much of the asked object's box, and of the other object's box, a linear map of the anchor's
   state leaves unexplained, at the input of every language-model layer and after the last (cross-fitted ridge
   regression, the binding loss's readout, on standardised states: 0 when the state holds the box, about 1 when it
   holds nothing of it). The digits are written from the last of these states: an ``asked`` well below ``other``
   there means the state has picked the asked object; both alike, that it holds (a blend of) the image's objects
   regardless of the name.
3. ``colour_readable``: held-out accuracy (%) of a linear classifier reading the asked object's colour word from
   the state of (a) the image token under the box's centre and (b) the anchor, at the input of every language-model
   layer (index 0: the embeddings; the last: after the last layer). Chance is one over the number of colours. If
   the patch holds the colour and the anchor does not, the name never reaches the place where the box is written.

    python scripts/binding_probe.py --model runs/x/final --questions heldout/eval/grounding/grounding_eval.jsonl \
        --image-root heldout [--layer -2] [--head 0] [--anchor first] [--limit 200]

Prints one JSON object. Questions must use upstream's grounding prompt (synthetic files do); the colour probe reads
the ``synth_name`` questions (``<colour> <shape>``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from grounding_probe import PREFIX, answer, pairs

from allseeing.data.image import load_image
from allseeing.model.build import load
from allseeing.rec.boxes import encode
from allseeing.train.binding import (
    BindingLoss,
    box_anchors,
    centre_patch,
    cross_fitted_unexplained,
    name_anchors,
    patch_mask,
)
from allseeing.train.binding_terms import BindingTerm


def states(model, processor, binding: BindingLoss, anchor: str, question: dict, image_root: Path):
    """The teacher-forced forward pass of ``question``'s true answer: hidden states, anchor position and box, and
    the image tokens' positions."""
    encoded = processor.encode([("<image>\n" + question["text"], answer(question["text"][len(PREFIX) :], question))])
    ids = torch.tensor([encoded.input_ids])
    pixels = processor.pixel_values([load_image(image_root / question["image"])])
    with torch.no_grad():
        hidden = model(input_ids=ids, pixel_values=pixels, output_hidden_states=True).hidden_states
    find = name_anchors if anchor == "name" else box_anchors
    (positions, (box, *_)), *_ = find(encoded.input_ids, encoded.labels, binding.strings)
    image_positions = (ids[0] == model.config.image_token_id).nonzero().flatten()
    return hidden, positions[0], box, image_positions


def attention_shares(model, processor, binding, anchor, questions, image_root, limit) -> list[dict]:
    """Per term of ``binding`` (one head each): its mean share on the asked and on the other box, and how often the
    asked one gets more."""
    asked, other = [[] for _ in binding.terms], [[] for _ in binding.terms]
    for question, another in pairs(questions)[:limit]:
        hidden, position, box, image_positions = states(model, processor, binding, anchor, question, image_root)
        other_box = encode(tuple(another["bbox"]), (another["width"], another["height"]))
        for index, term in enumerate(binding.terms):
            for target, shares in ((box, asked[index]), (other_box, other[index])):
                with torch.no_grad():
                    loss = binding.anchor_losses(
                        hidden[term.layer],
                        torch.tensor([[position]]),
                        image_positions[None],
                        patch_mask(target, binding.grid)[None, None],
                        term=index,
                    )
                shares.append(float(torch.exp(-loss[0, 0])))
    return [
        {
            "questions": len(on_asked),
            "asked_share": round(statistics.mean(on_asked), 4),
            "other_share": round(statistics.mean(on_other), 4),
            "asked_higher": round(sum(a > o for a, o in zip(on_asked, on_other, strict=True)) / len(on_asked), 3),
        }
        for on_asked, on_other in zip(asked, other, strict=True)
    ]


def box_readability(model, processor, binding, anchor, questions, image_root, limit) -> dict:
    """Per layer input, the anchor state's unexplained share of the asked box and of the other object's box."""
    anchor_states, boxes = [], {"asked": [], "other": []}
    for question, another in pairs(questions)[:limit]:
        hidden, position, box, _ = states(model, processor, binding, anchor, question, image_root)
        anchor_states.append(torch.stack([h[0, position] for h in hidden]))
        boxes["asked"].append(box)
        boxes["other"].append(encode(tuple(another["bbox"]), (another["width"], another["height"])))
    stacked = torch.stack(anchor_states)  # (questions, layers + 1, hidden)
    # standardised per dimension: the ridge penalty scales with the mean variance, which a residual stream's few
    # large dimensions would otherwise set, shrinking the small ones that may hold the box
    stacked = (stacked - stacked.mean(dim=0)) / (stacked.std(dim=0) + 1e-5)
    halves = torch.arange(len(stacked)) % 2 == 0
    result: dict = {"questions": len(stacked)}
    for name, rows in boxes.items():
        targets = torch.tensor(rows, dtype=torch.float32)  # a linear fit's unexplained share is scale-free
        result[name] = [
            round(float(cross_fitted_unexplained(stacked[:, layer], targets, halves)), 3)
            for layer in range(stacked.shape[1])
        ]
    return result


def linear_accuracy(features: torch.Tensor, labels: torch.Tensor, train: int) -> float:
    """Held-out accuracy (%) of a multinomial logistic regression fitted on the first ``train`` rows."""
    torch.manual_seed(0)
    x = (features - features[:train].mean(0)) / (features[:train].std(0) + 1e-5)
    classes = int(labels.max()) + 1
    weight = torch.zeros(x.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        logits = x[:train] @ weight + bias
        loss = torch.nn.functional.cross_entropy(logits, labels[:train]) + 1e-3 * weight.pow(2).sum()
        loss.backward()
        optimizer.step()
    predicted = (x[train:] @ weight + bias).argmax(dim=1)
    return round(float((predicted == labels[train:]).float().mean()) * 100, 1)


def colour_readability(model, processor, binding, anchor, questions, image_root, limit) -> dict:
    named = [q for q in questions if q.get("category") == "synth_name"][: limit * 2]
    patch_states, anchor_states, colours = [], [], []
    for question in named:
        hidden, position, box, image_positions = states(model, processor, binding, anchor, question, image_root)
        patch = image_positions[centre_patch(box, binding.grid)]
        patch_states.append(torch.stack([h[0, patch] for h in hidden]))
        anchor_states.append(torch.stack([h[0, position] for h in hidden]))
        colours.append(question["text"][len(PREFIX) :].split()[0])
    names = sorted(set(colours))
    labels = torch.tensor([names.index(colour) for colour in colours])
    train = int(len(labels) * 0.7)
    result: dict = {"questions": len(labels), "colours": len(names)}
    for kind, rows in (("patch", patch_states), ("anchor", anchor_states)):
        stacked = torch.stack(rows)
        result[kind] = [linear_accuracy(stacked[:, layer], labels, train) for layer in range(stacked.shape[1])]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--questions", type=Path, required=True, help="grounding_eval.jsonl")
    parser.add_argument("--image-root", type=Path, required=True)
    parser.add_argument("--layer", type=int, default=-2, help="the head's layer (negative from the last)")
    parser.add_argument("--head", type=int, default=0)
    parser.add_argument("--anchor", choices=("first", "name"), default="first")
    parser.add_argument(
        "--limit", type=int, default=200, help="questions for the attention and box probes (twice: colours)"
    )
    parser.add_argument(
        "--every-head",
        action="store_true",
        help="also the attention shares of every head of every layer (attention_by_head)",
    )
    args = parser.parse_args(argv)
    questions = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    for number, question in enumerate(questions, 1):
        if not question["text"].startswith(PREFIX):
            raise SystemExit(f"{args.questions}: line {number} does not use the grounding prompt {PREFIX!r}")
    model, processor = load(args.model)
    model.eval()
    text = model.config.text_config
    layers = text.num_hidden_layers
    if not -layers <= args.layer < layers:
        raise SystemExit(f"--layer {args.layer} is not a layer of a {layers}-layer model")
    chosen = (args.layer % layers, args.head)
    heads = [chosen]
    if args.every_head:  # the chosen head once, first
        every = [(layer, head) for layer in range(layers) for head in range(text.num_attention_heads)]
        heads += [pair for pair in every if pair != chosen]
    terms = [BindingTerm(args.anchor, layer, head) for layer, head in heads]
    binding = BindingLoss(model, processor.tokenizer, weight=1.0, terms=terms)
    probe = (model, processor, binding, args.anchor, questions, args.image_root, args.limit)
    shares = attention_shares(*probe)
    by_term = sorted(zip(binding.terms, shares, strict=True), key=lambda pair: (pair[0].layer, pair[0].head))
    by_head = {f"{term.layer}:{term.head}": share for term, share in by_term}
    result = {
        "model": args.model,
        "layer": binding.terms[0].layer,
        "head": args.head,
        "anchor": args.anchor,
        "attention": shares[0],
        **({"attention_by_head": by_head} if args.every_head else {}),
        "box_readable": box_readability(*probe),
        "colour_readable": colour_readability(*probe),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
