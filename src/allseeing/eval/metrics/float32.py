"""Upstream's box arithmetic, bit for bit: its scorers decode boxes and compute IoU in float32 torch tensors.

In float64 an IoU that upstream computes as exactly 0.5 can come out as 0.5000000000000002 (grounding counts
IoU > 0.5, PSG IoU >= 0.5), so ``official`` repeats upstream's float32 operations in its order, each rounded to
float32. A float32 sum, difference, product or quotient of float32 values is the float64 result rounded once to
float32 (float64 carries more than twice float32's precision), so rounding after each operation is exact.
"""

from __future__ import annotations

import struct

from allseeing.eval.metrics.boxformat import to_pixels
from allseeing.rec.boxes import Box, BoxError, Size, get_frame, is_box, pad_offset

PixelBox = tuple[float, float, float, float]
_FLOAT = struct.Struct("f")


def f32(value: float) -> float:
    """``value`` rounded to float32 (as ``torch.tensor(value, dtype=torch.float32)``)."""
    return _FLOAT.unpack(_FLOAT.pack(value))[0]


def box32(box: Box) -> PixelBox:
    x1, y1, x2, y2 = (f32(v) for v in box)
    return x1, y1, x2, y2


def pixels32(box: Box, size: Size, box_format: str) -> PixelBox:
    """A predicted box as pixels the way upstream's scorers decode it, unchecked: ``box / 999 * S`` and the pad
    offset subtracted on the padded axis (``square999``); other formats decode as ``to_pixels`` does, then round."""
    frame = get_frame(box_format) if box_format != "qwen2.5-vl" else None
    if frame is None or not frame.padded or frame.scale is None:
        return box32(to_pixels(box, size, box_format, check_range=False))
    if not is_box(box):
        raise BoxError(f"box {box!r} is not four numbers")
    side = f32(max(size))
    dx, dy = pad_offset(*size)
    x1, y1, x2, y2 = (f32(f32(f32(v) / frame.scale) * side) for v in box)
    return f32(x1 - dx), f32(y1 - dy), f32(x2 - dx), f32(y2 - dy)


def _area(box: PixelBox) -> float:
    # torchvision's box_area: no clamp, so an inverted box has a negative area.
    return f32(f32(box[2] - box[0]) * f32(box[3] - box[1]))


def iou32(a: PixelBox, b: PixelBox) -> float:
    """torchvision's ``box_iou`` of two float32 boxes; 0 where it would be NaN (0 / 0)."""
    width = max(f32(min(a[2], b[2]) - max(a[0], b[0])), 0.0)
    height = max(f32(min(a[3], b[3]) - max(a[1], b[1])), 0.0)
    inter = f32(width * height)
    union = f32(f32(_area(a) + _area(b)) - inter)
    return f32(inter / union) if union else 0.0
