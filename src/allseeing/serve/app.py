"""The demo's application, apart from HTTP: the page's files, the sample images, new sessions from an upload or a
sample, region references and resets. A refusal is a :class:`RequestError`: an HTTP status and a sentence for the
page; ``serve/server.py`` answers the routes with these.
"""

from __future__ import annotations

import io
import math
import threading
from http import HTTPStatus
from importlib.resources import files
from typing import Any

from PIL import Image, UnidentifiedImageError

from allseeing.data.image import MAX_ASPECT, MAX_PIXELS, size_limit, to_rgb
from allseeing.serve.sessions import SessionStore
from allseeing.serve.views import DISPLAY_SIDE, MODES, bounded, data_url, region_reference, thumbnail_url

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
FORMATS = "PNG, JPEG, WebP, GIF or BMP"
DECODING_AT_ONCE = 2


class RequestError(Exception):
    """A refused request: the HTTP status to answer and, as the message, a sentence for the page."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class DemoApp:
    """What the handlers share: the sessions, the sample images, the upload limit.

    Uploads are kept at most ``max_side`` pixels on their longer side (by default the larger of ``DISPLAY_SIDE``
    and the model's input size); ``max_side=0`` keeps them whole. At most ``DECODING_AT_ONCE`` uploads are decoded
    at a time, so that many uploads at once cannot each hold a whole decoded image.
    """

    def __init__(
        self,
        store: SessionStore,
        samples: dict[str, Image.Image],
        max_upload_bytes: int,
        max_side: int | None = None,
    ) -> None:
        self.store, self.max_upload_bytes = store, max_upload_bytes
        self.max_side = max(DISPLAY_SIDE, store.processor.config.image_size) if max_side is None else max_side
        keep = self.max_side or max((max(image.size) for image in samples.values()), default=1)
        self.samples = {name: bounded(image, keep) for name, image in samples.items()}
        # Decoding is CPU-bound and briefly needs the whole image in memory: at most this many at once.
        self._decoding = threading.BoundedSemaphore(DECODING_AT_ONCE)
        self.thumbnails = {name: thumbnail_url(image) for name, image in self.samples.items()}
        self.pages = {route: (files("allseeing.serve").joinpath("static", name).read_bytes(), kind)
                      for route, (name, kind) in STATIC.items()}  # fmt: skip

    def config(self) -> dict[str, Any]:
        return {
            "samples": list(self.samples),
            "thumbnails": self.thumbnails,
            "modes": list(MODES),
            "max_upload_bytes": self.max_upload_bytes,
        }

    def new_session(self, query: dict[str, list[str]], body: bytes | None) -> dict[str, Any]:
        picture_format = "PNG"
        if "sample" in query:
            name = query["sample"][0]
            if name not in self.samples:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no sample named {name!r}")
            image = self.samples[name]
            original = image.size
        elif body:
            with self._decoding:
                image, original, picture_format = read_upload(body, self.max_side)
        else:
            raise RequestError(HTTPStatus.BAD_REQUEST, "send an image as the request body, or ?sample=NAME")
        session = self.store.create(image, picture_format)
        return {
            "session": session.id,
            "width": image.width,
            "height": image.height,
            "original_width": original[0],
            "original_height": original[1],
            "image": data_url(image, picture_format),
        }

    def region(self, payload: dict[str, Any]) -> dict[str, Any]:
        session = self.store.get(payload.get("session"))
        box = payload.get("box")
        if not (
            isinstance(box, list)
            and len(box) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)
        ):
            raise RequestError(HTTPStatus.BAD_REQUEST, "box must be [x1, y1, x2, y2] in image pixels")
        width, height = session.image.size
        x1, x2 = sorted(box[0::2])
        y1, y2 = sorted(box[1::2])
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f"The region {[round(v, 1) for v in box]} lies outside the {width} x {height} image: "
                "draw it on the picture.",
            )
        if min(x2, width) - max(x1, 0) < 1 or min(y2, height) - max(y1, 0) < 1:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                "The region is empty (under one pixel wide or high inside the image): "
                "drag across the part of the picture you mean.",
            )
        return {"text": region_reference(box, session.image.size)}

    def reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.store.reset(self.store.get(payload.get("session")))
        return {"ok": True}


def read_upload(body: bytes, max_side: int = 0) -> tuple[Image.Image, tuple[int, int], str]:
    """The uploaded image as RGB, its size as uploaded and the format of the pictures to show back (JPEG for a
    JPEG, else PNG); or a :class:`RequestError` whose message is a sentence for the page.

    With ``max_side``, the image is at most that large on its longer side: a JPEG is decoded at a reduced scale
    where it can be (1/2 to 1/8, no smaller than ``max_side``), which needs a fraction of the memory and time of
    a full decode, and any image is then scaled down to fit.
    """
    try:
        with Image.open(io.BytesIO(body)) as upload:
            width, height = upload.size
            limit = size_limit(width, height)
            if limit is not None:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"This image is {width} x {height} pixels; {_LIMITS[limit]}")
            if max_side and upload.format == "JPEG":
                upload.draft("RGB", (max_side, max_side))
            upload.load()
            image = to_rgb(upload)
            picture_format = "JPEG" if upload.format == "JPEG" else "PNG"
    except UnidentifiedImageError:
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f"This file is not an image the demo can read. Choose a {FORMATS} image."
        ) from None
    except Image.DecompressionBombError:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"This image has too many pixels to open; {_MEGAPIXELS}") from None
    except (OSError, ValueError, SyntaxError):  # Pillow's plugins raise all three for broken files
        raise RequestError(
            HTTPStatus.BAD_REQUEST, "This image could not be decoded: it looks damaged or cut short."
        ) from None
    return (bounded(image, max_side) if max_side else image), (width, height), picture_format


_MEGAPIXELS = f"the demo takes images of up to {MAX_PIXELS // 10**6} megapixels."
# The data layer's limits (size_limit), worded for the page.
_LIMITS = {
    "pixels": _MEGAPIXELS,
    "aspect": f"its sides differ by more than {MAX_ASPECT} times, so the model would see a line. Crop it closer "
    "to a square.",
}
