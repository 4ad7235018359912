"""Image preprocessing: pad-to-square against hand-computed pixels, mode conversion, bad images."""

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from allseeing.data.image import (
    CLIP_MEAN,
    CLIP_STD,
    ImageError,
    expand_to_square,
    load_image,
    pad_colour,
    preprocess,
    size_limit,
)

PAD = (122, 116, 104)


def test_pad_colour_is_the_truncated_clip_mean():
    assert pad_colour() == PAD  # int(0.48145466 * 255) = 122, int(0.4578275 * 255) = 116, int(0.40821073 * 255) = 104


@pytest.mark.parametrize(
    ("size", "offset"),
    [((5, 8), (1, 0)), ((6, 8), (1, 0)), ((8, 5), (0, 1)), ((8, 6), (0, 1)), ((4, 9), (2, 0))],
)
def test_expand_to_square_hand_computed(size, offset):
    """(H - W) // 2 on the left (portrait) or (W - H) // 2 on top (landscape); the larger pad on the right/bottom."""
    width, height = size
    square = np.asarray(expand_to_square(Image.new("RGB", size, (255, 0, 0)), PAD))
    side = max(size)
    assert square.shape == (side, side, 3)
    expected = np.empty((side, side, 3), dtype=np.uint8)
    expected[:] = PAD
    dx, dy = offset
    expected[dy : dy + height, dx : dx + width] = (255, 0, 0)
    assert (square == expected).all()


def test_square_images_are_untouched():
    image = Image.new("RGB", (7, 7), (1, 2, 3))
    assert expand_to_square(image, PAD) is image


def test_preprocess_normalises_the_padded_square():
    pixels = preprocess(Image.new("RGB", (2, 4), (255, 255, 255)), size=4)
    assert pixels.shape == (3, 4, 4) and pixels.dtype == np.float32
    white = (1.0 - np.asarray(CLIP_MEAN)) / np.asarray(CLIP_STD)
    pad = (np.asarray(PAD) / 255.0 - np.asarray(CLIP_MEAN)) / np.asarray(CLIP_STD)
    assert pixels[:, 1, 2] == pytest.approx(white, abs=1e-5)  # the image sits at x = 1..2
    assert pixels[:, 1, 0] == pytest.approx(pad, abs=1e-5)


def test_square_mode_crops_the_centre_without_padding():
    image = Image.new("RGB", (8, 4), (0, 0, 0))
    image.paste((255, 255, 255), (2, 0, 6, 4))  # a white centre band
    pixels = preprocess(image, size=4, aspect="square")
    white = (1.0 - np.asarray(CLIP_MEAN)) / np.asarray(CLIP_STD)
    assert pixels[:, 2, 2] == pytest.approx(white, abs=1e-4)
    with pytest.raises(ValueError, match="unknown image aspect mode"):
        preprocess(image, size=4, aspect="stretch")


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "LA", "I;16"])
def test_every_mode_loads_as_rgb(tmp_path, mode):
    path = tmp_path / ("x.tiff" if mode in ("CMYK", "I;16") else "x.png")
    Image.new(mode, (6, 4)).save(path)
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (6, 4)


def test_transparent_pixels_become_white(tmp_path):
    Image.new("RGBA", (2, 2), (255, 0, 0, 0)).save(tmp_path / "t.png")
    assert load_image(tmp_path / "t.png").getpixel((0, 0)) == (255, 255, 255)


def test_bad_images_fail_with_the_path(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ImageError, match="bad.png is not in an image format Pillow can read"):
        load_image(tmp_path / "bad.png")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, format="PNG")
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[:60])
    with pytest.raises(ImageError, match="cut.png cannot be read"):
        load_image(tmp_path / "cut.png")
    Image.new("RGB", (300, 200)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="300x200 = 60,000 pixels, over the limit 50,000"):
        load_image(tmp_path / "big.png", max_pixels=50_000)


def test_evaluation_reads_transparent_pixels_as_upstream_did_and_users_get_white():
    """Upstream's evaluation loaders discarded the alpha channel (the colour stored under transparent pixels);
    user images composite on white. Pixels of the upstream fixture image, as upstream's loader made them."""
    import torch

    from tests import upstream

    path = upstream.FIXTURES / "images" / "alpha.png"
    expected = upstream.tensors()["pixels/alpha"]
    assert torch.equal(torch.from_numpy(preprocess(load_image(path, transparency="discard"), 32)), expected)
    assert not torch.equal(torch.from_numpy(preprocess(load_image(path), 32)), expected)
    assert load_image(path).getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(ValueError, match="unknown transparency mode 'black'"):
        load_image(path, transparency="black")


@pytest.mark.parametrize("size", [(33, 1), (1, 40), (3300, 100)])
def test_a_strip_is_refused_with_its_sides(tmp_path, size):
    path = tmp_path / "strip.png"
    Image.new("RGB", size).save(path)
    with pytest.raises(ImageError, match=rf"strip.png is {size[0]}x{size[1]}: its sides differ by more than 32"):
        load_image(path)


def test_size_limit_names_the_limit_an_image_breaks():
    assert size_limit(3200, 100) is None and size_limit(100, 3200) is None  # sides 32 times apart: allowed
    assert size_limit(3201, 100) == size_limit(1, 33) == "aspect"
    assert size_limit(300, 200, max_pixels=59_999) == "pixels" and size_limit(300, 200, max_pixels=60_000) is None
    assert size_limit(100_000, 1_000) == "pixels"  # over both: the pixels are checked first


def test_padding_a_long_image_keeps_memory_bounded():
    # 32000x1000 (aspect 32, allowed): padded as it is, the square alone would be 3 GB of RGB.
    code = (
        "import resource; from PIL import Image; from allseeing.data.image import preprocess;"
        "pixels = preprocess(Image.new('RGB', (32000, 1000), (200, 10, 10)), 336);"
        "print(pixels.shape, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[:3] == ["(3,", "336,", "336)"]
    assert int(out[3]) < 1_000_000  # peak resident memory, KiB: under 1 GB
