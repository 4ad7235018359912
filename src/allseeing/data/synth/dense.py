"""Dense per-patch targets of a synthetic scene, for training a vision tower on the world's exact truth.

The tower sees the scene padded to a square and resized to its input (``data.image.preprocess``), cut into a
``grid x grid`` of patches. Each patch is labelled with the **top-most object that covers at least a quarter of
it** (visible pixels, from :func:`world.object_map`, so a patch covered by two objects takes the one drawn on top),
or with the background: that object's shape, colour and size class, its box, and where its centre lies from the
patch's centre. Each of the ``CELLS x CELLS`` cells of a patch also says whether an object covers at least half
of it: a coarse mask of the outline inside the patch, which is what tells a circle's edge from a hexagon's.
Geometry is computed on the padded square in the original pixels, so it does not depend on resampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allseeing.data.synth.world import COLOURS, SHAPES, SIZES, Scene, object_map
from allseeing.rec.boxes import BOX_SCALE, pad_offset

COVER = 0.25  # share of a patch an object's visible pixels must cover to label it
CELLS = 4  # a patch's outline mask is CELLS x CELLS cells
CELL_COVER = 0.5  # share of a cell that makes it an object cell
MAX_ITEMS = 254  # object ids are stored in one byte, 0 being the background

# Class 0 of each categorical target is the background.
SHAPE_CLASSES = ("background", *SHAPES)
COLOUR_CLASSES = ("background", *COLOURS)
SIZE_CLASSES = ("background", *SIZES)


@dataclass(frozen=True)
class DenseTargets:
    """Targets of one image, one row per patch in row-major order (``grid * grid`` rows)."""

    shape: np.ndarray  # int64: index into SHAPE_CLASSES
    colour: np.ndarray  # int64: index into COLOUR_CLASSES
    size: np.ndarray  # int64: index into SIZE_CLASSES
    box: np.ndarray  # float32 (P, 4): the object's box on the padded square, 0..1 (zeros for the background)
    centre: np.ndarray  # float32 (P, 2): object centre minus patch centre, in patches (zeros for the background)
    cells: np.ndarray  # float32 (P, CELLS * CELLS): each cell of the patch (row-major) shows an object
    item: np.ndarray  # int64: index into scene.items, -1 for the background

    @property
    def is_object(self) -> np.ndarray:
        return self.item >= 0


def padded_object_map(scene: Scene) -> np.ndarray:
    """:func:`world.object_map` pasted on the padded square at the floor-centred offset (0 = background)."""
    if len(scene.items) > MAX_ITEMS:
        raise ValueError(f"scene {scene.scene_id} has {len(scene.items)} objects; at most {MAX_ITEMS} fit a byte map")
    side = max(scene.size)
    square = np.zeros((side, side), dtype=np.uint8)
    dx, dy = pad_offset(*scene.size)
    square[dy : dy + scene.height, dx : dx + scene.width] = np.asarray(object_map(scene))
    return square


def _coverage(square: np.ndarray, cells: int, ids: int) -> np.ndarray:
    """``(cells * cells, ids)``: share of each cell of a ``cells x cells`` cut of ``square`` showing each id."""
    side = square.shape[0]
    index = np.minimum(np.arange(side) * cells // side, cells - 1)  # the cell of each pixel row (and column)
    cell = index[:, None] * cells + index[None, :]
    counts = np.bincount((cell * ids + square).ravel(), minlength=cells * cells * ids).reshape(cells * cells, ids)
    return counts / counts.sum(axis=1, keepdims=True)


def dense_targets(scene: Scene, grid: int) -> DenseTargets:
    """The per-patch targets of ``scene`` on a ``grid x grid`` patch cut of its padded square."""
    square = padded_object_map(scene)
    ids = len(scene.items) + 1
    share = _coverage(square, grid, ids)[:, 1:]  # (P, items)
    covering = share >= COVER
    # the top-most covering object: the highest item index whose column is True
    top = np.where(covering.any(axis=1), ids - 2 - np.argmax(covering[:, ::-1], axis=1), -1)

    patches = grid * grid
    shape, colour, size = (np.zeros(patches, dtype=np.int64) for _ in range(3))
    box = np.zeros((patches, 4), dtype=np.float32)
    centre = np.zeros((patches, 2), dtype=np.float32)
    rows, columns = np.divmod(np.arange(patches), grid)
    for index, item in enumerate(scene.items):
        where = top == index
        if not where.any():
            continue
        shape[where] = SHAPE_CLASSES.index(item.shape)
        colour[where] = COLOUR_CLASSES.index(item.colour)
        size[where] = SIZE_CLASSES.index(item.size)
        unit = np.asarray(item.box, dtype=np.float32) / BOX_SCALE
        box[where] = unit
        centre[where, 0] = (unit[0] + unit[2]) / 2 * grid - (columns[where] + 0.5)
        centre[where, 1] = (unit[1] + unit[3]) / 2 * grid - (rows[where] + 0.5)

    fine = _coverage(square, CELLS * grid, ids)[:, 0] <= 1 - CELL_COVER  # an object covers half of the cell
    fine = fine.reshape(grid, CELLS, grid, CELLS).transpose(0, 2, 1, 3).reshape(patches, CELLS * CELLS)
    return DenseTargets(shape, colour, size, box, centre, fine.astype(np.float32), top.astype(np.int64))


def visible_items(targets: DenseTargets, count: int) -> np.ndarray:
    """``(count,)`` booleans: which of a scene's ``count`` objects label at least one patch (what the grid sees)."""
    seen = np.zeros(count, dtype=bool)
    seen[targets.item[targets.is_object]] = True
    return seen
