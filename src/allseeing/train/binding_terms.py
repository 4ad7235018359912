"""The binding loss's terms (:mod:`allseeing.train.binding`): which anchors of a written box ask which head of which
layer to attend to what. One place parses and checks them, for the training config and for the probes alike.

A term is written ``ANCHOR@LAYER:HEAD->TARGET``, several joined by commas (``binding_terms``)::

    name@1:0->box, first@0:2->name, first@1:0->box

- ``ANCHOR``: ``all`` (every position that predicts a digit of the box), ``first`` (the position predicting its first
  digit, where the model picks the object: later digits can be read off those already written) or ``name`` (the last
  token of the box's ``<ref>``/``<pred>`` name, whose own state holds the name);
- ``LAYER`` (negative from the last) and ``HEAD``: the language-model head whose attention is asked for;
- ``TARGET``: ``box`` (the image tokens inside the box) or, from the digits (``first`` or ``all``), ``name`` (a relay:
  the box's name's last token, whose state holds the name and, after that name's own binding layer, what its head
  found).

The older keys (``binding_anchors``, ``binding_layer``, ``binding_head``, ``binding_first_target``) describe the same
terms in a shorter form, :func:`terms_from_keys`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ANCHORS = ("all", "first", "name")
TARGETS = ("box", "name")
# binding_anchors: one of ANCHORS, or name+first: the name at binding_layer and the first digit one layer later
BINDING_ANCHORS = (*ANCHORS, "name+first")
TERM = re.compile(r"^(\w+)@(-?\d+):(\d+)->(\w+)$")


@dataclass(frozen=True)
class BindingTerm:
    anchor: str  # ANCHORS
    layer: int  # negative from the last layer
    head: int
    target: str = "box"  # TARGETS

    def __post_init__(self) -> None:
        if self.anchor not in ANCHORS:
            raise ValueError(f"binding anchor must be one of {', '.join(ANCHORS)}, got {self.anchor!r}")
        if self.target not in TARGETS:
            raise ValueError(f"binding target must be one of {', '.join(TARGETS)}, got {self.target!r}")
        if self.target == "name" and self.anchor == "name":
            raise ValueError("the name target is a relay from a box's digits, got anchor 'name'")
        if self.head < 0:
            raise ValueError(f"binding head must be >= 0, got {self.head}")

    def __str__(self) -> str:
        return f"{self.anchor}@{self.layer}:{self.head}->{self.target}"


def parse_terms(text: str) -> list[BindingTerm]:
    """``ANCHOR@LAYER:HEAD->TARGET`` terms joined by commas (white space ignored); ValueError naming the bad one."""
    terms = []
    for part in "".join(text.split()).split(","):
        match = TERM.match(part)
        if match is None:
            raise ValueError(f"binding term {part!r} is not ANCHOR@LAYER:HEAD->TARGET (for example name@1:0->box)")
        anchor, layer, head, target = match.groups()
        try:
            terms.append(BindingTerm(anchor, int(layer), int(head), target))
        except ValueError as error:
            raise ValueError(f"binding term {part!r}: {error}") from None
    if len(set(terms)) < len(terms):
        raise ValueError(f"binding terms {text.strip()!r} repeat a term")
    return terms


def terms_from_keys(anchors: str, layer: int, head: int, first_target: str) -> list[BindingTerm]:
    """The terms the shorter keys describe: one term of ``anchors`` at ``layer``, or for ``name+first`` the name's at
    ``layer`` and the first digit's one layer later; the first digit attends to ``first_target``."""
    if anchors not in BINDING_ANCHORS:
        raise ValueError(f"binding_anchors must be one of {', '.join(BINDING_ANCHORS)}, got {anchors!r}")
    if first_target not in TARGETS:
        raise ValueError(f"binding_first_target must be one of {', '.join(TARGETS)}, got {first_target!r}")
    if first_target == "name" and anchors not in ("first", "name+first"):
        raise ValueError(f"binding_first_target name needs first or name+first anchors, got {anchors!r}")
    if anchors != "name+first":
        return [BindingTerm(anchors, layer, head, first_target if anchors == "first" else "box")]
    if layer == -1:
        raise ValueError("binding_anchors name+first needs a layer after binding_layer -1, the last")
    return [BindingTerm("name", layer, head), BindingTerm("first", layer + 1, head, first_target)]
