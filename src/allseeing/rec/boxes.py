"""Box frames: the one definition of how ReC coordinates map to image pixels.

ASMv2 writes boxes as integers 0..999 on the image padded to a square (``square999``): the original image of
size W x H is pasted on an S x S canvas (S = max(W, H)) at the floor-centred offset, and a pixel coordinate
``x`` becomes ``int((x + dx) / S * 999)`` (floor; docs/upstream.md, "Box frame"). Other model families use other frames;
each is a :class:`Frame` in :data:`FRAMES`, chosen by name.

Conventions: a box is ``(x1, y1, x2, y2)``, top-left and bottom-right corners; a size is ``(width, height)`` of
the original image; pixel boxes are floats in the original (unpadded) image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Number = int | float
Box = tuple[Number, Number, Number, Number]
Size = tuple[int, int]

BOX_SCALE = 999
"""Upstream's divisor for the square-padded frame: 999 maps to the far edge of the padded canvas."""


class BoxError(ValueError):
    """A box that is malformed, out of order or out of its frame's range."""


class MalformedBoxError(BoxError):
    """Not a box at all: not four finite numbers."""


@dataclass(frozen=True)
class Frame:
    """A coordinate convention for boxes written in text.

    Attributes:
        name: registry key, e.g. ``square999``.
        scale: the value that stands for the far image edge; ``None`` for pixels.
        padded: coordinates are relative to the image padded to a square (floor-centred offset).
        integer: coordinates are written as integers, encoded by truncation (upstream's ``int()``).
        used_by: who writes boxes this way.
    """

    name: str
    scale: int | None
    padded: bool
    integer: bool
    used_by: str


FRAMES: dict[str, Frame] = {
    frame.name: frame
    for frame in (
        Frame("square999", BOX_SCALE, padded=True, integer=True, used_by="ASMv2 (ReC), the default"),
        Frame("raw1000", 1000, padded=False, integer=True, used_by="InternVL, Qwen-VL, Qwen2-VL, Ferret"),
        Frame("raw999", 999, padded=False, integer=True, used_by="CogVLM, DeepSeek-VL2"),
        Frame("raw100", 100, padded=False, integer=True, used_by="MiniGPT-v2"),
        Frame("unit", 1, padded=False, integer=False, used_by="Shikra, lmms-eval (floats 0..1)"),
        Frame("pixel", None, padded=False, integer=False, used_by="pixels of the original image"),
    )
}
DEFAULT_FRAME = "square999"


def get_frame(frame: str | Frame) -> Frame:
    """Look a frame up by name (a :class:`Frame` passes through)."""
    if isinstance(frame, Frame):
        return frame
    try:
        return FRAMES[frame]
    except KeyError:
        raise BoxError(f"unknown box frame {frame!r}; known frames: {', '.join(FRAMES)}") from None


def pad_offset(width: int, height: int) -> tuple[int, int]:
    """Where the original image sits on its square canvas: ``(dx, dy)``, floor-centred (upstream expand2square)."""
    _check_size((width, height))
    if width > height:
        return 0, (width - height) // 2
    return (height - width) // 2, 0


def _canvas(frame: Frame, size: Size) -> tuple[int, int, int, int]:
    """``(dx, dy, sx, sy)``: offset of the image on the frame's canvas and the canvas width and height in pixels."""
    width, height = _check_size(size)
    if frame.padded:
        dx, dy = pad_offset(width, height)
        side = max(width, height)
        return dx, dy, side, side
    return 0, 0, width, height


def _check_size(size: Size) -> Size:
    width, height = size
    if not (isinstance(width, int) and isinstance(height, int)) or width <= 0 or height <= 0:
        raise BoxError(f"image size must be two positive integers (width, height), got {size!r}")
    return width, height


def _is_coordinate(value: object) -> bool:
    kind = type(value)  # exact types: bool is not a coordinate
    return kind is int or (kind is float and math.isfinite(value))


def is_box(value: object) -> bool:
    """Whether ``value`` has the shape of a box: a list or tuple of four finite numbers (any order or range)."""
    return isinstance(value, (list, tuple)) and len(value) == 4 and all(_is_coordinate(v) for v in value)


def validate(box: object, frame: str | Frame = DEFAULT_FRAME) -> Box:
    """Check that ``box`` is four finite numbers with x1 <= x2, y1 <= y2, inside the frame's range.

    Pixel boxes are not range-checked: decoding a valid ``square999`` box can land a fraction of a pixel
    outside the image (floor quantisation of the padded canvas), and such boxes must survive a round trip.

    Returns:
        The box as a tuple.

    Raises:
        BoxError: naming the box and the problem.
    """
    frame = get_frame(frame)
    if not is_box(box):
        if not isinstance(box, (list, tuple)) or len(box) != 4:
            raise MalformedBoxError(f"a box must be 4 numbers [x1, y1, x2, y2], got {box!r}")
        value = next(v for v in box if not _is_coordinate(v))
        raise MalformedBoxError(f"box {list(box)} holds {value!r}, not a finite number")
    x1, y1, x2, y2 = box
    if x1 > x2 or y1 > y2:
        raise BoxError(f"box {list(box)} has x1 > x2 or y1 > y2")
    if frame.scale is not None and (min(box) < 0 or max(box) > frame.scale):
        raise BoxError(f"box {list(box)} is outside the {frame.name} range 0..{frame.scale}")
    return (x1, y1, x2, y2)


def decode(
    box: Box, size: Size, frame: str | Frame = DEFAULT_FRAME, check_range: bool = True
) -> tuple[float, float, float, float]:
    """Box in ``frame`` -> pixel box in the original image (not clamped).

    For ``square999`` this is upstream's ``x = xn / 999 * S - dx`` with the same order of float operations.
    ``check_range=False`` decodes inverted or out-of-range boxes too (only the shape is checked), as upstream's
    scorers did.
    """
    frame = get_frame(frame)
    if not check_range:
        if not is_box(box):
            validate(box, frame)  # raises the shape error
        return _to_pixels(tuple(box), size, frame)
    return _to_pixels(validate(box, frame), size, frame)


def _to_pixels(box: Box, size: Size, frame: Frame) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    if frame.scale is None:
        return float(x1), float(y1), float(x2), float(y2)
    dx, dy, sx, sy = _canvas(frame, size)
    scale = frame.scale
    return (x1 / scale * sx - dx, y1 / scale * sy - dy, x2 / scale * sx - dx, y2 / scale * sy - dy)


def encode(pixel_box: Box, size: Size, frame: str | Frame = DEFAULT_FRAME) -> Box:
    """Pixel box in the original image -> box in ``frame``.

    Integer frames truncate as upstream's encoder does: ``int((x + dx) / S * 999)`` for ``square999``.

    Raises:
        BoxError: when the result falls outside the frame's range.
    """
    frame = get_frame(frame)
    x1, y1, x2, y2 = validate(pixel_box, "pixel")
    if frame.scale is None:
        return float(x1), float(y1), float(x2), float(y2)
    dx, dy, sx, sy = _canvas(frame, size)
    scale = frame.scale
    values = ((x1 + dx) / sx * scale, (y1 + dy) / sy * scale, (x2 + dx) / sx * scale, (y2 + dy) / sy * scale)
    encoded = tuple(int(v) for v in values) if frame.integer else values
    try:
        return validate(encoded, frame)
    except BoxError as error:
        raise BoxError(f"pixel box {list(pixel_box)} on a {size[0]}x{size[1]} image: {error}") from None


def convert(box: Box, size: Size, source: str | Frame, target: str | Frame) -> Box:
    """Re-express a box given in ``source`` in ``target``, through the original image's pixels.

    A decoded box can stick out of the image by up to one ``source`` unit (truncation on the padded canvas: the
    sky box of the worked example starts at y = -0.22). Before encoding into a frame with a range, that much is
    snapped to the image edge; a box further out is an error.
    """
    source, target = get_frame(source), get_frame(target)
    pixels = decode(box, size, source)
    if target.scale is not None and source.integer:
        _, _, sx, sy = _canvas(source, size)
        pixels = _snap_to_image(pixels, size, sx / source.scale, sy / source.scale)
    return encode(pixels, size, target)


def _snap_to_image(
    pixels: tuple[float, float, float, float], size: Size, tolerance_x: float, tolerance_y: float
) -> tuple[float, float, float, float]:
    def snap(value: float, limit: int, tolerance: float) -> float:
        if -tolerance <= value < 0:
            return 0.0
        if limit < value <= limit + tolerance:
            return float(limit)
        return value

    width, height = size
    x1, y1, x2, y2 = pixels
    return (
        snap(x1, width, tolerance_x),
        snap(y1, height, tolerance_y),
        snap(x2, width, tolerance_x),
        snap(y2, height, tolerance_y),
    )


def flip(box: Box, size: Size, frame: str | Frame = DEFAULT_FRAME) -> Box:
    """Mirror a box left-right, as if the ORIGINAL image were flipped, and re-encode it in ``frame``.

    Flipping the padded canvas is wrong when S - W is odd (the right pad is one pixel wider than the left;
    docs/upstream.md, "Horizontal flip"). Decoding, mirroring ``x -> W - x`` in pixels and encoding by truncation
    gives, in exact arithmetic, ``x' = K - x`` with the integer ``K = floor(scale * (2 dx + W) / S)``: K is computed
    with integers so the float error of a decode/encode trip cannot creep in, and the map is its own inverse.
    """
    frame = get_frame(frame)
    x1, y1, x2, y2 = validate(box, frame)
    width, _ = _check_size(size)
    if frame.scale is None:
        axis: Number = width
    elif frame.integer:
        dx, _, sx, _ = _canvas(frame, size)
        axis = frame.scale * (2 * dx + width) // sx
    else:
        axis = frame.scale
    flipped = (axis - x2, y1, axis - x1, y2)
    try:
        return validate(flipped, frame)
    except BoxError as error:
        raise BoxError(f"flipping {list(box)} on a {width}-pixel-wide image: {error}") from None


def area(box: Box) -> float:
    """Area of a box (zero for a degenerate one)."""
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes in the same frame, continuous coordinates (no +1).

    The definition every metric uses. Two zero-area boxes have IoU 0.
    """
    inter_w = min(a[2], b[2]) - max(a[0], b[0])
    inter_h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, inter_w) * max(0.0, inter_h)
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def drawable(box: Box, size: Size, frame: str | Frame = DEFAULT_FRAME) -> tuple[float, float, float, float]:
    """Pixel rectangle to draw for a box, even an invalid one: corners ordered, clipped to the image.

    The only place boxes are clamped (overlays, and the demo's boxes a user drags); data and metrics always see
    boxes as written.
    """
    width, height = _check_size(size)
    ordered = (min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3]))
    x1, y1, x2, y2 = _to_pixels(ordered, size, get_frame(frame))
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))
