"""Images for the model: loading with checks, pad-to-square (the ONLY copy), resize and normalisation.

Upstream pads every image to a square of the CLIP mean colour, truncated to integers ((122, 116, 104)), with the
original pasted at the floor-centred offset (upstream's ``expand2square`` in ``llava/mm_utils.py``), then the CLIP
processor resizes the square to the tower's input size (its centre crop is then a no-op). Stage-1 pretraining used no
padding: the shorter side is resized to the input size and the centre is cropped (``square``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from PIL import Image, UnidentifiedImageError

from allseeing.rec.boxes import pad_offset

if TYPE_CHECKING:
    import numpy as np

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_PIXELS = 50_000_000
# Beyond this ratio an image is refused: padded to a square and resized, it leaves the model a line of pixels.
MAX_ASPECT = 32
# The longest side padded as it is. Longer images are first shrunk by an integer factor (a box filter), so that the
# padded square stays under 50 MB; up to this side the pixels are exactly upstream's pad-then-resize.
MAX_PADDED_SIDE = 4096
ASPECT_MODES = ("pad", "square")
# How transparent pixels become RGB (see to_rgb): user images composite on white; evaluation discards the alpha
# channel, as upstream's evaluation loaders read every benchmark image.
TRANSPARENCY_MODES = ("white", "discard")


class ImageError(ValueError):
    """An image that cannot be used: missing, unreadable, or too large."""


def pad_colour(mean: tuple[float, ...] = CLIP_MEAN) -> tuple[int, int, int]:
    """The padding colour: the mean times 255, truncated, as upstream computes it."""
    return tuple(int(m * 255) for m in mean)


def size_limit(width: int, height: int, max_pixels: int = MAX_PIXELS) -> Literal["pixels", "aspect"] | None:
    """Which limit an image of this size breaks, read before decoding: ``"pixels"`` (more than ``max_pixels``),
    ``"aspect"`` (a strip: its sides differ by more than ``MAX_ASPECT`` times), or None.

    The one definition of the limits: :func:`size_problem` words a breach for files, the demo for its uploads.
    """
    if width * height > max_pixels:
        return "pixels"
    if max(width, height) > MAX_ASPECT * min(width, height):
        return "aspect"
    return None


def size_problem(name: str, width: int, height: int, max_pixels: int = MAX_PIXELS) -> str | None:
    """Why an image of this size cannot be used (too many pixels, or a strip), or None; read before decoding."""
    limit = size_limit(width, height, max_pixels)
    if limit == "pixels":
        return f"image {name} is {width}x{height} = {width * height:,} pixels, over the limit {max_pixels:,}"
    if limit == "aspect":
        return (
            f"image {name} is {width}x{height}: its sides differ by more than {MAX_ASPECT} times "
            f"(padded to a square, the model would see a line)"
        )
    return None


def load_image(path: str | Path | BinaryIO, max_pixels: int = MAX_PIXELS, transparency: str = "white") -> Image.Image:
    """Open an image file (or an encoded image in memory) as RGB (grayscale, RGBA, CMYK, palette are converted;
    ``transparency`` as in :func:`to_rgb`), refusing huge ones before decoding."""
    name = str(path) if isinstance(path, (str, Path)) else "(in memory)"
    try:
        with Image.open(path) as image:
            problem = size_problem(name, *image.size, max_pixels)
            if problem:
                raise ImageError(problem)
            image.load()
            return to_rgb(image, transparency)
    except FileNotFoundError:
        raise ImageError(f"image {name} does not exist") from None
    except UnidentifiedImageError:
        raise ImageError(f"image {name} is not in an image format Pillow can read") from None
    except (OSError, Image.DecompressionBombError) as error:
        raise ImageError(f"image {name} cannot be read: {error}") from None


def to_rgb(image: Image.Image, transparency: str = "white") -> Image.Image:
    """RGB view of any mode.

    Transparent pixels: ``white`` composites them on white, rather than showing the colour stored under them,
    which is undefined (often black); ``discard`` drops the alpha channel and shows that colour, as upstream's
    evaluation loaders did (``Image.open(path).convert("RGB")``), so that benchmarks read the pixels upstream read.
    """
    if transparency not in TRANSPARENCY_MODES:
        raise ValueError(f"unknown transparency mode {transparency!r}; choose one of {', '.join(TRANSPARENCY_MODES)}")
    if image.mode == "RGB":
        return image
    if transparency == "white" and (
        image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info)
    ):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def expand_to_square(image: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    """Pad to a square of ``colour`` with the image at the floor-centred offset (upstream ``expand2square``)."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), colour)
    canvas.paste(image, pad_offset(width, height))
    return canvas


def centre_crop_square(image: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` (bicubic) and crop the centre (CLIP's default, no padding)."""
    width, height = image.size
    scale = size / min(width, height)
    resized = image.resize(
        (max(size, round(width * scale)), max(size, round(height * scale))), Image.Resampling.BICUBIC
    )
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    return resized.crop((left, top, left + size, top + size))


def _shrunk_to(image: Image.Image, side: int) -> Image.Image:
    """The image shrunk by the smallest integer factor that brings its longest side to ``side`` or less."""
    factor = -(-max(image.size) // side)
    return image if factor == 1 else image.reduce(factor)


def preprocess(
    image: Image.Image,
    size: int,
    aspect: str = "pad",
    mean: tuple[float, ...] = CLIP_MEAN,
    std: tuple[float, ...] = CLIP_STD,
) -> np.ndarray:
    """The vision tower's input: a float32 array (3, size, size), normalised."""
    import numpy as np  # here: opening images (the rec verbs) needs only Pillow, a base dependency

    if aspect == "pad":
        bounded = _shrunk_to(to_rgb(image), MAX_PADDED_SIDE)
        square = expand_to_square(bounded, pad_colour(mean)).resize((size, size), Image.Resampling.BICUBIC)
    elif aspect == "square":
        square = centre_crop_square(to_rgb(image), size)
    else:
        raise ValueError(f"unknown image aspect mode {aspect!r}; choose one of {', '.join(ASPECT_MODES)}")
    pixels = np.asarray(square, dtype=np.float32) / 255.0
    pixels = (pixels - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return pixels.transpose(2, 0, 1).copy()
