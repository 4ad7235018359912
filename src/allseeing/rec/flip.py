"""Horizontal flip of ReC text: every box mirrored (see :func:`allseeing.rec.boxes.flip`), lateral words swapped.

Upstream flipped only the images of its grounding data (docs/upstream.md, "Horizontal flip"); a flipped image needs
its text flipped too, or "the man on the left" points at the wrong man.
"""

from __future__ import annotations

import re

from allseeing.rec import boxes as box_frames
from allseeing.rec import tags
from allseeing.rec.boxes import Frame, Size
from allseeing.rec.parse import ReCParseError, TokenKind, parse_box_list, tokenize
from allseeing.rec.write import box_list

_LATERAL_PAIRS = {
    "left": "right",
    "leftmost": "rightmost",
    "leftward": "rightward",
    "leftwards": "rightwards",
    "left-hand": "right-hand",
    "lefthand": "righthand",
}
LATERAL_SWAPS = {**_LATERAL_PAIRS, **{right: left for left, right in _LATERAL_PAIRS.items()}}
# Longest first, so "left-hand" wins over "left"; whole words only ("leftover" stays).
_LATERAL_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(w) for w in sorted(LATERAL_SWAPS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


def _same_case(template: str, word: str) -> str:
    if template.isupper():
        return word.upper()
    if template[0].isupper():
        return word[0].upper() + word[1:]
    return word


def swap_lateral_words(text: str) -> str:
    """Swap left/right words (leftmost/rightmost, left-hand/right-hand, ...), keeping each word's case."""
    return _LATERAL_PATTERN.sub(lambda m: _same_case(m.group(), LATERAL_SWAPS[m.group().lower()]), text)


def flip_text(text: str, size: Size, frame: str | Frame = box_frames.DEFAULT_FRAME) -> str:
    """Flip ReC text for the mirrored image of ``size``: boxes are flipped, lateral words swapped, the rest kept.

    Raises:
        ReCParseError: for a box list that cannot be read or flipped, with its offset.
    """
    frame = box_frames.get_frame(frame)
    tokens = tokenize(text)
    out: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        source = text[token.start : token.end]
        if token.kind is TokenKind.TEXT:
            out.append(swap_lateral_words(source))
        elif token.kind is TokenKind.BOX_OPEN:
            has_content = index + 1 < len(tokens) and tokens[index + 1].kind is TokenKind.TEXT
            closer = index + 1 + has_content
            if closer >= len(tokens) or tokens[closer].kind is not TokenKind.BOX_CLOSE:
                raise ReCParseError(f"{tags.BOX_OPEN} is not closed by {tags.BOX_CLOSE}", token.start)
            content = text[token.end : tokens[closer].start]
            raw_boxes, problem = parse_box_list(content, lenient=False)
            if problem:
                raise ReCParseError(problem, token.start)
            try:
                out.append(box_list(box_frames.flip(box, size, frame) for box in raw_boxes))
            except box_frames.BoxError as error:
                raise ReCParseError(str(error), token.start) from None
            index = closer
        else:
            out.append(source)
        index += 1
    return "".join(out)
