"""Reading boxes that other model families write, into pixels of the original image (``--box-format``).

A box format is a frame of :mod:`allseeing.rec.boxes` (``square999`` for ASMv2, ``raw1000`` for InternVL and
Qwen2-VL, ``raw999``, ``raw100``, ``unit``, ``pixel``) or ``qwen2.5-vl``: absolute pixels of the image after
Qwen2.5-VL's ``smart_resize`` (each side rounded to a multiple of 28, the area kept between 56x56 and
28x28x1280 pixels, the defaults of its processor), scaled back to the original size.
"""

from __future__ import annotations

import math

from allseeing.rec import boxes as box_frames
from allseeing.rec.boxes import Box, Size

QWEN25 = "qwen2.5-vl"
BOX_FORMATS = (*box_frames.FRAMES, QWEN25)
_FACTOR, _MIN_PIXELS, _MAX_PIXELS = 28, 56 * 56, 28 * 28 * 1280


def smart_resize(width: int, height: int) -> tuple[int, int]:
    """The size Qwen2.5-VL's processor resizes an image to (its default pixel bounds)."""
    h = max(_FACTOR, round(height / _FACTOR) * _FACTOR)
    w = max(_FACTOR, round(width / _FACTOR) * _FACTOR)
    if h * w > _MAX_PIXELS:
        beta = math.sqrt(height * width / _MAX_PIXELS)
        h = math.floor(height / beta / _FACTOR) * _FACTOR
        w = math.floor(width / beta / _FACTOR) * _FACTOR
    elif h * w < _MIN_PIXELS:
        beta = math.sqrt(_MIN_PIXELS / (height * width))
        h = math.ceil(height * beta / _FACTOR) * _FACTOR
        w = math.ceil(width * beta / _FACTOR) * _FACTOR
    return w, h


def to_pixels(box: Box, size: Size, box_format: str, check_range: bool = True) -> tuple[float, float, float, float]:
    """A predicted box in ``box_format`` as pixels of the original image (not clamped).

    ``check_range=False`` accepts inverted or out-of-range boxes (upstream's scorers checked nothing).

    Raises:
        BoxError: for an unknown format, a malformed box, or (when checking) a box outside its format's range.
    """
    if box_format == QWEN25:
        resized_w, resized_h = smart_resize(*size)
        x1, y1, x2, y2 = (
            box_frames.validate(box, "pixel") if check_range else box_frames.decode(box, size, "pixel", False)
        )
        sx, sy = size[0] / resized_w, size[1] / resized_h
        return x1 * sx, y1 * sy, x2 * sx, y2 * sy
    return box_frames.decode(box, size, box_format, check_range=check_range)
