"""An auxiliary training signal that ties each box the model writes to the image patches of its object.

Trained only through the next-token loss, the small language model learns to write a lone object's box but not to
pick one object among several by its name (docs/model-card.md): every grounding answer of an image is the same box,
whatever was asked. ``binding_weight > 0`` adds a second loss that asks for exactly that step. Each of its terms
(:mod:`allseeing.train.binding_terms`) asks one attention head of one language-model layer, at every anchor of a box
in a trained reply, to put its attention on the image tokens inside that box:

    loss(anchor) = -log sum_{p in box} attention(anchor -> image token p)

The head is the layer's own (its ``q_proj``/``k_proj`` and rotary positions, recomputed from the layer's input
exactly as the layer computes them), so the saved model stays a stock ``LlavaForConditionalGeneration``: nothing is
added, and after training the head looks where the answer's object is. What the head reads there (the stage-0
tower's patch features, which hold their object's box) reaches the later layers that write the digits. The anchors:
``all`` positions that predict the box's digits, the ``first`` of them (where the model picks its object), or the
``name``'s last token (``<ref>red star</ref>`` before ``<box>``), whose own state holds the name. A digit's term
(``first`` or ``all``) may instead target its box's name (the name's last token): a relay, so that the position that
picks the object reads the name, and what the name's own head found in the image. Where a head looks does not
make it carry what it finds: with ``readout_weight`` each head that looks at a box has its output at its anchors also
asked to hold the anchor's box (:func:`cross_fitted_unexplained`).

Boxes are found in the trained tokens by their text, ``[x1, y1, x2, y2]`` in upstream's ``square999`` frame (on the
image padded to a square, which is the tower's input with ``image_aspect: pad``); an image token is inside a box
when its patch's centre is, and a box smaller than a patch takes the patch under its centre.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from allseeing.data.tokenize import IGNORE_INDEX
from allseeing.model.build import patch_grid
from allseeing.rec.boxes import BOX_SCALE
from allseeing.train.binding_terms import BindingTerm
from allseeing.train.loss import loss_units

# Four integers in brackets: a box of a ReC answer, alone (``[[a, b, c, d]]``) or in a list (``[[...], [...]]``).
BOX = re.compile(r"\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\]")

Box = tuple[int, int, int, int]
# The readout's ridge penalty, relative to the mean diagonal of the centred Gram matrix, and the fewest rows with
# anchors per half it is fitted on
READOUT_RIDGE = 0.1
READOUT_MIN_ROWS = 4
Anchor = tuple[list[int], tuple[Box, ...]]  # positions, and the boxes whose image tokens they should attend to
# A name and its boxes: ``<ref>red star</ref><box>[[...]]</box>`` (a scene graph's ``<pred>`` phrases too).
NAMED_BOXES = re.compile(r"<(?:ref|pred)>([^<]+)</(?:ref|pred)><box>(.*?)</box>")


def token_strings(tokenizer) -> list[str]:
    """Each id's text on its own. Byte-level BPE and SentencePiece both give digits, brackets, commas and tags as
    themselves, which is all the anchors read (a lost leading space does not matter to the patterns)."""
    return [tokenizer.decode([index]) for index in range(len(tokenizer))]


def _text(input_ids: Sequence[int], strings: Sequence[str]) -> tuple[str, list[int]]:
    """The ids' text, and the character where each token's text begins."""
    starts, length = [], 0
    for token in input_ids:
        starts.append(length)
        length += len(strings[token])
    return "".join(strings[token] for token in input_ids), starts


def _box(match: re.Match) -> Box:
    return tuple(int(match.group(k)) for k in range(1, 5))


def _digit_tokens(starts: list[int], box: re.Match, offset: int = 0) -> range:
    """The tokens holding the characters of ``box``'s four numbers, from the first digit of ``x1`` to the last of
    ``y2`` (``box`` matched ``BOX`` in the text from character ``offset`` on)."""
    first = bisect_right(starts, offset + box.start(1)) - 1
    last = bisect_right(starts, offset + box.end(4) - 1) - 1
    return range(first, last + 1)


def box_anchors(input_ids: Sequence[int], labels: Sequence[int], strings: Sequence[str]) -> list[Anchor]:
    """(positions that predict the box's digits, (the box,)) for each box written in a trained token.

    A position ``t`` predicts token ``t + 1``; the positions kept are those whose next token is trained and holds a
    character of the box's four numbers (from the first digit of ``x1`` to the last of ``y2``).
    """
    text, starts = _text(input_ids, strings)
    anchors = []
    for match in BOX.finditer(text):
        positions = [index - 1 for index in _digit_tokens(starts, match) if index > 0 and labels[index] != IGNORE_INDEX]
        if positions:
            anchors.append((positions, (_box(match),)))
    return anchors


def name_anchors(input_ids: Sequence[int], labels: Sequence[int], strings: Sequence[str]) -> list[Anchor]:
    """([the position of a written name's last token], its boxes) for each ``<ref>``/``<pred>`` name followed by
    boxes: that position's own state holds the name, so its attention can find the object without first learning
    to carry the name to where the digits are written."""
    text, starts = _text(input_ids, strings)
    anchors = []
    for match in NAMED_BOXES.finditer(text):
        position = bisect_right(starts, match.end(1) - 1) - 1
        boxes = tuple(_box(box) for box in BOX.finditer(match.group(2)))
        if boxes and labels[position] != IGNORE_INDEX:
            anchors.append(([position], boxes))
    return anchors


def relay_anchors(
    input_ids: Sequence[int], labels: Sequence[int], strings: Sequence[str]
) -> list[tuple[list[int], int]]:
    """(the positions that predict a named box's digits, the position of its name's last token) for each
    ``<ref>``/``<pred>`` name written in the reply whose first box's first digit is trained and predicted after the
    name (a name sharing its token with ``[[`` has nothing to relay); its other digits are kept where trained."""
    text, starts = _text(input_ids, strings)
    relays = []
    for match in NAMED_BOXES.finditer(text):
        box = BOX.search(match.group(2))
        if box is None:
            continue
        name = bisect_right(starts, match.end(1) - 1) - 1
        digits = _digit_tokens(starts, box, offset=match.start(2))
        if labels[name] != IGNORE_INDEX and labels[digits[0]] != IGNORE_INDEX and digits[0] - 1 > name:
            positions = [index - 1 for index in digits if labels[index] != IGNORE_INDEX]
            relays.append((positions, name))
    return relays


def centre_patch(box: Box, grid: int) -> int:
    """The row-major index of the patch under ``box``'s centre (``square999``)."""
    x1, y1, x2, y2 = box
    column = min(int((x1 + x2) / 2 / BOX_SCALE * grid), grid - 1)
    row = min(int((y1 + y2) / 2 / BOX_SCALE * grid), grid - 1)
    return row * grid + column


def patch_mask(box: Box, grid: int) -> torch.Tensor:
    """``(grid * grid,)`` bool, row-major: the patches whose centre lies inside ``box`` (``square999``), or the
    patch under the box's centre when no centre does."""
    centres = (torch.arange(grid, dtype=torch.float64) + 0.5) / grid * BOX_SCALE
    x1, y1, x2, y2 = box
    inside_x = (centres >= x1) & (centres <= x2)
    inside_y = (centres >= y1) & (centres <= y2)
    mask = (inside_y[:, None] & inside_x[None, :]).flatten()
    if not mask.any():
        mask[centre_patch(box, grid)] = True
    return mask


@dataclass
class RowAnchors:
    """One row's anchors of one term: their positions, the positions they may attend to (``keys``: the image tokens,
    or the names), which keys are each anchor's target, and each anchor's box (its first, for the readout; box targets
    only)."""

    row: int
    keys: list[int]
    positions: list[int] = field(default_factory=list)
    targets: list[torch.Tensor] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)


def cross_fitted_unexplained(features: torch.Tensor, targets: torch.Tensor, halves: torch.Tensor) -> torch.Tensor:
    """How much of ``targets`` (n, k) a linear map of ``features`` (n, d) leaves unexplained, fitted on one half of
    the rows (``halves``, bool) and measured on the other, both ways: the squared error of both predictions over the
    targets' total variance around their pooled mean (0: the features hold the targets linearly; about 1 or more: not
    at all; pooled, so a half whose rows share one box does not divide by zero). Ridge regression with an intercept,
    its penalty ``READOUT_RIDGE`` times the mean diagonal of the centred Gram matrix, solved in closed form in float32
    (outside autocast) so that the loss's gradient reaches the features and nothing is learned but them."""
    with torch.autocast(features.device.type, enabled=False):
        features, targets = features.float(), targets.float()
        error = features.new_zeros(())
        for fit in (halves, ~halves):
            x, y = features[fit], targets[fit]
            mean_x, mean_y = x.mean(dim=0), y.mean(dim=0)
            x, y = x - mean_x, y - mean_y
            gram = x.T @ x
            penalty = READOUT_RIDGE * gram.diagonal().mean() + 1e-6
            weights = torch.linalg.solve(gram + penalty * torch.eye(gram.shape[0], device=gram.device), x.T @ y)
            predicted = (features[~fit] - mean_x) @ weights + mean_y
            error = error + (predicted - targets[~fit]).pow(2).sum()
        return error / (targets - targets.mean(dim=0)).pow(2).sum().clamp(min=1e-6)


class BindingLoss:
    """The auxiliary loss of ``terms`` (:mod:`allseeing.train.binding_terms`: which anchors ask which head of which
    language-model layer to attend to what) of ``model`` (not wrapped by DDP: its layers are called directly; a LoRA
    model's base is used), and its ``weight`` in the training loss; ``readout_weight`` adds, per term with a box target,
    how much of the anchors' boxes the head's output leaves linearly unexplained (:func:`cross_fitted_unexplained`)."""

    def __init__(
        self, model, tokenizer, *, weight: float, terms: Sequence[BindingTerm], readout_weight: float = 0.0
    ) -> None:
        if hasattr(model, "get_base_model"):  # peft
            model = model.get_base_model()
        self.text = text = model.model.language_model
        self.weight = weight
        self.readout_weight = readout_weight
        layers, heads = len(text.layers), text.config.num_attention_heads
        for term in terms:
            if not -layers <= term.layer < layers:
                raise ValueError(f"binding term {term}: layer {term.layer} is not a layer of a {layers}-layer model")
            if term.head >= heads:
                raise ValueError(f"binding term {term}: head {term.head} is not a head of a {heads}-head layer")
        if not terms:
            raise ValueError("the binding loss needs at least one term")
        # each term with its layer counted from the first
        self.terms = [BindingTerm(t.anchor, t.layer % layers, t.head, t.target) for t in terms]
        if len(set(self.terms)) < len(self.terms):
            written = ", ".join(map(str, terms))
            raise ValueError(f"binding terms {written} repeat a term of a {layers}-layer model (layer -1 is the last)")
        self.heads_per_kv = heads // text.config.num_key_value_heads
        self.grid = patch_grid(model.config.vision_config)
        self.image_token = model.config.image_token_id
        self.strings = token_strings(tokenizer)

    def summed(self, batch: dict, hidden_states: Sequence[torch.Tensor], weighting: str) -> torch.Tensor:
        """The attention terms and the readout together (:meth:`summed_parts`)."""
        return sum(self.summed_parts(batch, hidden_states, weighting))

    def summed_parts(
        self, batch: dict, hidden_states: Sequence[torch.Tensor], weighting: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention terms' loss and the readout's, each summed over a micro-batch's units: per sample the mean
        over its anchors (``sample``), or every anchor as one unit (``token``), as the next-token loss counts them.
        Zero when no trained box is found. Each term is counted so, and the terms are added. The readout
        (``readout_weight``), one number per micro-batch and term, is counted once per unit of the micro-batch.

        The anchors are found on the host from one copy of the ids and labels; the head's scores are then computed
        for every anchor of the batch at once (rows padded to the most anchors of a row), so a GPU step waits on no
        per-row work."""
        ids, labels = batch["input_ids"].tolist(), batch["labels"].tolist()
        units = loss_units(batch["labels"], weighting) if self.readout_weight else 0  # once for every term
        attention = readout = hidden_states[0].new_zeros((), dtype=torch.float32)
        for term in self.terms:
            found = self._find(term.anchor, term.target, ids, labels)
            if found:
                term_attention, term_readout = self._term(found, hidden_states[term.layer], term, weighting, units)
                attention, readout = attention + term_attention, readout + term_readout
        return attention, readout

    def _term(
        self, found: list[RowAnchors], hidden: torch.Tensor, term: BindingTerm, weighting: str, units: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(found_row.positions) for found_row in found)
        keys = max(len(found_row.keys) for found_row in found)
        device = hidden.device

        def padded(values: list, length: int) -> list:  # repeats the first: finite losses, so no NaN gradient
            return values + values[:1] * (length - len(values))

        # padded anchors are dropped by ``valid``; padded keys are no anchor's target
        anchor_at = torch.tensor([padded(r.positions, width) for r in found], device=device)  # (rows, width)
        valid = torch.tensor([[k < len(r.positions) for k in range(width)] for r in found], device=device)
        key_at = torch.tensor([padded(r.keys, keys) for r in found], device=device)  # (rows, keys)
        targets = torch.stack(
            [torch.nn.functional.pad(torch.stack(padded(r.targets, width)), (0, keys - len(r.keys))) for r in found]
        ).to(device)  # (rows, width, keys)
        length = max(max(r.positions) for r in found) + 1  # the keys the last anchor sees (counted on the host)
        rows = [r.row for r in found]
        log_attention, values = self._attention(hidden[rows, :length], anchor_at, term)
        losses = self._target_losses(log_attention, key_at, targets).masked_fill(~valid, 0.0).sum(dim=1)
        if weighting == "sample":
            losses = losses / valid.sum(dim=1)
        readout = losses.new_zeros(())
        # the readout: the rows with anchors alternate between the halves, each half needing a few rows (its anchors'
        # boxes repeat within a row)
        # (boxes only: a relay's head reads a name, whose state need not hold the box)
        if self.readout_weight and term.target == "box" and len(found) >= 2 * READOUT_MIN_ROWS:
            halves = torch.tensor([k % 2 == 0 for k, r in enumerate(found) for _ in r.positions], device=device)
            with torch.autocast(device.type, enabled=False):
                outputs = (log_attention.exp() @ values)[valid]  # the head's output at each anchor, (anchors, dim)
            boxes = torch.tensor([padded(r.boxes, width) for r in found], device=device)[valid] / BOX_SCALE
            readout = self.readout_weight * units * cross_fitted_unexplained(outputs, boxes, halves)
        return losses.sum(), readout

    def _find(self, kind: str, target: str, ids: list[list[int]], labels: list[list[int]]) -> list[RowAnchors]:
        """Each row of a micro-batch with a whole image before its anchors of ``kind``, and those anchors: attending
        to the image tokens inside their boxes (``target`` box) or to their names (``target`` name)."""
        found = []
        for row, (row_ids, row_labels) in enumerate(zip(ids, labels, strict=True)):
            image = [index for index, token in enumerate(row_ids) if token == self.image_token]
            if len(image) != self.grid * self.grid:
                continue
            if target == "name":
                relays = relay_anchors(row_ids, row_labels, self.strings)
                if not relays or image[-1] > relays[0][1]:
                    continue
                found_row = RowAnchors(row, keys=[name for _, name in relays])
                for own, (positions, _) in zip(torch.eye(len(relays), dtype=torch.bool), relays, strict=True):
                    positions = positions[:1] if kind == "first" else positions
                    found_row.positions += positions
                    found_row.targets += [own] * len(positions)  # each anchor's target is its own name
                found.append(found_row)
                continue
            anchors = (name_anchors if kind == "name" else box_anchors)(row_ids, row_labels, self.strings)
            if kind == "first":
                anchors = [(positions[:1], boxes) for positions, boxes in anchors]
            # the anchors' keys end at the last anchor of the batch, so the image must precede every anchor
            if not anchors or image[-1] > anchors[0][0][0]:
                continue
            found_row = RowAnchors(row, keys=image)
            for anchor_positions, boxes in anchors:
                mask = torch.stack([patch_mask(box, self.grid) for box in boxes]).any(dim=0)
                found_row.positions += anchor_positions
                found_row.targets += [mask] * len(anchor_positions)
                found_row.boxes += [boxes[0]] * len(anchor_positions)
            found.append(found_row)
        return found

    def _attention(self, hidden, anchor_at, term: BindingTerm) -> tuple[torch.Tensor, torch.Tensor]:
        """``term``'s head's log-attention from each anchor over the keys up to it, ``(rows, anchors, length)``, and
        its values, ``(rows, length, dim)``, recomputed from ``hidden``, the input of the term's layer."""
        decoder = self.text.layers[term.layer]
        attention = decoder.self_attn
        length = hidden.shape[1]
        x = decoder.input_layernorm(hidden)
        dim, head, kv_head = attention.head_dim, term.head, term.head // self.heads_per_kv
        query = attention.q_proj(x)[..., head * dim : (head + 1) * dim]
        key = attention.k_proj(x)[..., kv_head * dim : (kv_head + 1) * dim]
        values = attention.v_proj(x)[..., kv_head * dim : (kv_head + 1) * dim]
        cos, sin = self.text.rotary_emb(x, torch.arange(length, device=x.device)[None])
        query, key = apply_rotary_pos_emb(query[:, None], key[:, None], cos, sin)  # (rows, 1, length, dim)
        query = query[:, 0].gather(1, anchor_at[..., None].expand(-1, -1, dim))  # (rows, anchors, dim)
        scores = (query @ key[:, 0].transpose(1, 2)) * attention.scaling  # (rows, anchors, length)
        causal = torch.arange(length, device=x.device)[None, None, :] > anchor_at[..., None]
        return scores.float().masked_fill(causal, float("-inf")).log_softmax(dim=-1), values.float()

    @staticmethod
    def _target_losses(log_attention, key_at, targets) -> torch.Tensor:
        on_keys = log_attention.gather(2, key_at[:, None, :].expand(-1, log_attention.shape[1], -1))
        return -on_keys.masked_fill(~targets, float("-inf")).logsumexp(dim=-1)

    def anchor_losses(self, hidden, anchor_at, key_at, targets, term: int = 0) -> torch.Tensor:
        """-log of the attention mass of term ``term``'s head (an index into :attr:`terms`) on each anchor's targets,
        ``(rows, anchors)``: ``hidden`` is the input of that term's layer for the rows, up to at least the last anchor
        (keys after an anchor are masked), ``anchor_at`` the anchors' positions, ``key_at`` the positions they may be
        asked to attend to (the image tokens, or names) and ``targets`` which of those are the anchor's."""
        log_attention, _ = self._attention(hidden, anchor_at, self.terms[term])
        return self._target_losses(log_attention, key_at, targets)
