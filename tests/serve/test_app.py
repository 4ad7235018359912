"""Reading an upload, without a server or a model: decoding, and the data layer's size limits in the page's words."""

import io

import pytest
from PIL import Image

from allseeing.serve.app import RequestError, read_upload


def encoded(image: Image.Image, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return buffer.getvalue()


def test_an_upload_is_rgb_with_transparent_pixels_on_white():
    image, original, picture_format = read_upload(encoded(Image.new("LA", (30, 20), (7, 0))))
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 255, 255)
    assert (original, picture_format) == ((30, 20), "PNG")
    image, _, _ = read_upload(encoded(Image.new("LA", (30, 20), (7, 255))))
    assert image.getpixel((0, 0)) == (7, 7, 7)


def test_a_large_upload_is_bounded_and_keeps_its_original_size():
    image, original, picture_format = read_upload(encoded(Image.new("RGB", (900, 300)), "JPEG"), max_side=300)
    assert (image.size, original, picture_format) == ((300, 100), (900, 300), "JPEG")


@pytest.mark.parametrize("size", [(3300, 100), (1, 40)])
def test_a_strip_is_refused_in_the_pages_words(size):
    with pytest.raises(RequestError) as refused:
        read_upload(encoded(Image.new("RGB", size)))
    assert (refused.value.status, str(refused.value)) == (
        400,
        f"This image is {size[0]} x {size[1]} pixels; its sides differ by more than 32 times, so the model would "
        "see a line. Crop it closer to a square.",
    )
