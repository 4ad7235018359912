"""Sampling scenes: object counts, attributes and placements, with occlusion kept in check.

Objects are placed either at random or anchored to an earlier object so that a chosen relation holds
(inside, on top of, next to): random placement alone almost never produces contact or containment.
A scene can be asked to contain one triplet (subject shape, predicate, object shape) and to avoid others;
that is how rare triplets are kept out of the training split.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from allseeing.data.synth.relations import PREDICATES, scene_graph
from allseeing.data.synth.world import (
    COLOURS,
    SHAPES,
    SIZES,
    Item,
    Scene,
    content_range,
    make_item,
    sample_background,
    sample_canvas,
    side_in_codes,
    size_class_of,
)
from allseeing.rec.boxes import area

Triplet = tuple[str, str, str]  # (subject shape, predicate, object shape)
ANCHORED = ("inside", "on top of", "next to")
MAX_OBJECTS = 8
MAX_OCCLUSION = 0.5  # an object may lose at most this share of its box to objects drawn over it
_TRIES = 40


def _fits(box: tuple[int, int, int, int], limits: tuple[int, int, int, int]) -> bool:
    return limits[0] <= box[0] and limits[1] <= box[1] and box[2] <= limits[2] and box[3] <= limits[3]


def _occlusion_ok(items: list[Item], new: Item) -> bool:
    """Drawing ``new`` last must leave every earlier object mostly visible."""
    for item in items:
        covered = 0.0
        for later in [*items[items.index(item) + 1 :], new]:
            w = min(item.pixel_box[2], later.pixel_box[2]) - max(item.pixel_box[0], later.pixel_box[0])
            h = min(item.pixel_box[3], later.pixel_box[3]) - max(item.pixel_box[1], later.pixel_box[1])
            if w > 0 and h > 0:
                covered += w * h
        if covered > MAX_OCCLUSION * area(item.pixel_box):
            return False
    return True


def _random_box(rng: random.Random, side: int, limits: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
    x_lo, y_lo, x_hi, y_hi = limits
    if x_hi - x_lo < side or y_hi - y_lo < side:
        return None
    x1, y1 = rng.randint(x_lo, x_hi - side), rng.randint(y_lo, y_hi - side)
    return (x1, y1, x1 + side, y1 + side)


def _anchored_box(rng: random.Random, predicate: str, anchor: Item, side: int) -> tuple[int, int, int, int] | None:
    """A box of ``side`` codes for which ``predicate`` should hold against ``anchor`` (checked by the caller)."""
    ax1, ay1, ax2, ay2 = anchor.box
    anchor_side = ax2 - ax1
    if predicate == "inside":
        side = min(side, int(anchor_side * rng.uniform(0.35, 0.6)))
        if side < 2:
            return None
        x1, y1 = rng.randint(ax1, ax2 - side), rng.randint(ay1, ay2 - side)
    elif predicate == "on top of":
        x1 = rng.randint(ax1 - side // 2, ax2 - side // 2)
        y1 = ay1 - side
    elif predicate == "next to":
        gap = int(rng.uniform(0.0, 0.3) * min(side, anchor_side))
        x1 = ax2 + gap if rng.random() < 0.5 else ax1 - gap - side
        y1 = (ay1 + ay2) // 2 - side // 2 + rng.randint(-side // 6, side // 6)
    else:
        raise ValueError(f"cannot anchor an object with {predicate!r}")
    return (x1, y1, x1 + side, y1 + side)


def _place(
    rng: random.Random,
    items: list[Item],
    size: tuple[int, int],
    shape: str,
    anchor: tuple[str, int] | None,
) -> Item | None:
    """Try to add one object of ``shape`` (at random, or with ``anchor`` = (predicate, index)) to ``items``."""
    limits = content_range(size)
    for _ in range(_TRIES):
        colour, size_class = rng.choice(list(COLOURS)), rng.choice(list(SIZES))
        side = side_in_codes(size_class, size, rng)
        box = (
            _random_box(rng, side, limits) if anchor is None else _anchored_box(rng, anchor[0], items[anchor[1]], side)
        )
        if box is None or not _fits(box, limits):
            continue
        # An object placed inside another is shrunk to fit it: name its size by what is drawn, so that "large"
        # never describes an object smaller than a "small" one.
        item = make_item(shape, colour, size_class_of(box[2] - box[0], size), box, size)
        if anchor is not None and not PREDICATES[anchor[0]].holds(item, items[anchor[1]]):
            continue
        if _occlusion_ok(items, item):
            return item
    return None


def sample_scene(
    rng: random.Random, scene_id: str, required: Triplet | None = None, forbidden: frozenset[Triplet] = frozenset()
) -> Scene | None:
    """One scene, or ``None`` when the constraints could not be met with these draws (draw again).

    Args:
        required: a triplet the scene must contain (its two objects are placed first).
        forbidden: triplets the scene must not contain (checked on the full scene graph).
    """
    size = sample_canvas(rng)
    items: list[Item] = []
    count = rng.randint(2 if required else 1, MAX_OBJECTS)
    if required:
        subject_shape, predicate, object_shape = required
        target = _place(rng, items, size, object_shape, None)
        if target is None:
            return None
        items.append(target)
        subject = _place(rng, items, size, subject_shape, (predicate, 0))
        if subject is None:
            return None
        items.append(subject)
    while len(items) < count:
        anchor = None
        if items and rng.random() < 0.4:
            anchor = (rng.choice(ANCHORED), rng.randrange(len(items)))
        item = _place(rng, items, size, rng.choice(SHAPES), anchor)
        if item is None:
            break  # the canvas is full enough
        items.append(item)
    scene = Scene(scene_id, size[0], size[1], sample_background(rng), tuple(items))
    if forbidden and forbidden & triplets_of(scene):
        return None
    return scene


def sample_scenes(seed: int | str, name: str, count: int) -> Iterator[Scene]:
    """``count`` unconstrained scenes ``{name}_{index}``, each from its own random stream (redrawn until one fits)."""
    for index in range(count):
        scene = None
        attempt = 0
        while scene is None:
            scene = sample_scene(random.Random(f"{seed}/{name}/{index}/{attempt}"), f"{name}_{index}")
            attempt += 1
        yield scene


def triplets_of(scene: Scene) -> set[Triplet]:
    """The (subject shape, predicate, object shape) triplets of the full scene graph."""
    return {(scene.items[r.subject].shape, r.predicate, scene.items[r.object].shape) for r in scene_graph(scene)}


def choose_rare_triplets(rng: random.Random, count: int) -> list[Triplet]:
    """Triplets that only the test split will show (anchorable predicates, distinct shapes)."""
    candidates = [(s, p, o) for p in ANCHORED for s in SHAPES for o in SHAPES if s != o]
    return sorted(rng.sample(candidates, count))
