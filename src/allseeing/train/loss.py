"""The language-modelling loss of a micro-batch, summed so that a global batch's mean does not depend on its split."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch

from allseeing.data.tokenize import IGNORE_INDEX

if TYPE_CHECKING:
    from allseeing.train.binding import BindingLoss


def trained_token_count(labels: torch.Tensor) -> int:
    """Tokens a batch trains: labels after the first position (they shift by one) that are not IGNORE_INDEX."""
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


def loss_units(labels: torch.Tensor, weighting: str) -> int:
    """What the loss averages over: trained tokens (``token``), or samples with a trained token (``sample``)."""
    if weighting == "token":
        return trained_token_count(labels)
    return int((labels[:, 1:] != IGNORE_INDEX).any(dim=1).sum())


class LossSum(NamedTuple):
    """A micro-batch's loss summed over its units, their count, and the binding loss's own sums, its attention terms'
    and its readout's (None when off)."""

    total: torch.Tensor
    units: int
    binding: tuple[torch.Tensor, torch.Tensor] | None = None


def summed_loss(model, batch: dict, weighting: str = "token", binding: BindingLoss | None = None) -> LossSum:
    """A micro-batch's next-token cross-entropy summed over its units (:func:`loss_units`), and their count.

    ``token``: the sum over trained tokens, so every token of the global batch weighs the same (a 1,000-token scene
    graph outweighs a 20-token box fifty times). ``sample``: the sum over samples of each one's mean token loss, so
    every sample weighs the same. With ``binding`` (:mod:`allseeing.train.binding`), its loss, counted in the same
    units and times its weight, is added to the total.
    """
    labels = batch.pop("labels")
    outputs = model(**batch, output_hidden_states=binding is not None)
    logits = outputs.logits.float()
    shifted = labels[:, 1:]
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), shifted.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none"
    ).view(shifted.shape)  # zero where ignored
    if weighting == "sample":
        losses = losses / (shifted != IGNORE_INDEX).sum(dim=1, keepdim=True).clamp(min=1)
    total, units = losses.sum(), loss_units(labels, weighting)
    if binding is None:
        return LossSum(total, units)
    tied = binding.summed_parts({**batch, "labels": labels}, outputs.hidden_states, weighting)
    return LossSum(total + binding.weight * sum(tied), units, tied)
