"""ReC parser: a tokenizer and a state machine, in three modes.

Grammar (docs/upstream.md, "ReC grammar and tags"; the ``rec parse`` contract in docs/formats.md)::

    object    := "<ref>" PHRASE "</ref>" BOX+
    relation  := "<pred>" PHRASE "</pred>" BOX BOX        (subject boxes, then object boxes)
    BOX       := "<box>" "[[x1, y1, x2, y2], ...]" "</box>"

Everything else is text, including ``<image>``, ``</s>``, other angle-bracket text and newlines.

Modes:
    ``strict``: our own data. The first problem raises :class:`ReCParseError` with its offset. Tags must be
        adjacent (``</ref><box>``), phrases non-empty, every box four numbers inside the frame.
    ``lenient``: model output. Never raises; every problem becomes an :class:`Issue` in ``errors`` and the
        parser recovers (whitespace between a phrase and its boxes is accepted, a flat ``[x1, y1, x2, y2]`` is
        read as one box, a ``<ref>`` closed by ``</pred>`` is accepted, an unclosed ``<box>`` keeps the box list
        that starts its content). Out-of-range or inverted boxes are reported and kept as written, never clamped.
    ``compat``: upstream ``eval_psg.py`` extraction, quirks included (see :mod:`allseeing.rec.compat`).

A ``<pred>`` pairs its own two box lists only: 1 subject with n objects broadcasts, n with 1 broadcasts, equal
counts zip, anything else is an error (lenient pairs the first min(n, m)). A triplet's name is the phrase of the
``<ref>`` mention listing a numerically equal box: the nearest before the predicate, else the nearest after.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from enum import Enum
from typing import Literal, NamedTuple

from allseeing.rec import boxes as box_frames
from allseeing.rec import tags
from allseeing.rec.boxes import Box, Frame
from allseeing.rec.compat import extract
from allseeing.rec.document import Issue, ObjectMention, ReCDocument, RelationMention, Triplet

Mode = Literal["strict", "lenient", "compat"]
MODES: tuple[Mode, ...] = ("strict", "lenient", "compat")


class ReCParseError(ValueError):
    """A strict-mode syntax error; ``str()`` reads ``offset N: message``."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"offset {offset}: {message}")
        self.message = message
        self.offset = offset


class TokenKind(Enum):
    TEXT = "text"
    REF_OPEN = tags.REF_OPEN
    REF_CLOSE = tags.REF_CLOSE
    PRED_OPEN = tags.PRED_OPEN
    PRED_CLOSE = tags.PRED_CLOSE
    BOX_OPEN = tags.BOX_OPEN
    BOX_CLOSE = tags.BOX_CLOSE


class Token(NamedTuple):
    kind: TokenKind
    start: int
    end: int


_TAG_KINDS = {kind.value: kind for kind in TokenKind if kind is not TokenKind.TEXT}
# Splitting on a capturing group yields text, tag, text, tag, ..., text (re.split does the scan in C).
_TAG_SPLIT = re.compile("(" + "|".join(re.escape(tag) for tag in tags.ALL_TAGS) + ")")
_CLOSER_OF = {TokenKind.REF_OPEN: TokenKind.REF_CLOSE, TokenKind.PRED_OPEN: TokenKind.PRED_CLOSE}


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into ReC tags and the text between them (never empty text tokens)."""
    tokens: list[Token] = []
    position = 0
    for index, part in enumerate(_TAG_SPLIT.split(text)):
        if part:
            end = position + len(part)
            tokens.append(Token(_TAG_KINDS[part] if index % 2 else TokenKind.TEXT, position, end))
            position = end
    return tokens


def pair_boxes(subjects: tuple[Box, ...], objects: tuple[Box, ...]) -> tuple[list[tuple[Box, Box]], str | None]:
    """Pair one predicate's subject and object boxes; returns the pairs and a problem, if any."""
    n, m = len(subjects), len(objects)
    if n == m:
        return list(zip(subjects, objects, strict=True)), None
    if n == 1:
        return [(subjects[0], obj) for obj in objects], None
    if m == 1:
        return [(subj, objects[0]) for subj in subjects], None
    problem = f"{n} subject boxes cannot pair with {m} object boxes (counts must be equal or one of them 1)"
    return list(zip(subjects, objects, strict=False)), problem


def parse_box_list(content: str, lenient: bool) -> tuple[list[list], str | None]:
    """Read the inside of ``<box>...</box>``: a JSON list of [x1, y1, x2, y2] lists.

    Returns the raw box lists (not yet validated) and a problem. In lenient mode a flat list of four numbers
    is read as one box (with a problem noted).
    """
    try:
        value = json.loads(content)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return [], f"box list {content.strip()[:60]!r} is not valid JSON"
    if isinstance(value, list) and all(isinstance(item, list) for item in value):
        return value, None
    if lenient and box_frames.is_box(value):
        return [value], f"box list {content.strip()!r} is a single box, not a list of boxes"
    return [], f"box list {content.strip()[:60]!r} is not a list of [x1, y1, x2, y2] lists"


class _Parser:
    """One pass over the tokens of one text; collects mentions, caption pieces and issues."""

    def __init__(self, text: str, lenient: bool, frame: Frame) -> None:
        self.text = text
        self.lenient = lenient
        self.frame = frame
        self.tokens = tokenize(text)
        self.caption: list[str] = []
        self.caption_length = 0
        self.objects: list[ObjectMention] = []
        self.relations: list[RelationMention] = []
        self.pairs: list[list[tuple[Box, Box]]] = []  # one list per relation, in order
        self.issues: list[Issue] = []

    def problem(self, message: str, offset: int) -> None:
        if not self.lenient:
            raise ReCParseError(message, offset)
        self.issues.append(Issue(message, offset))

    def emit_caption(self, piece: str) -> int:
        start = self.caption_length
        self.caption.append(piece)
        self.caption_length += len(piece)
        return start

    def kind(self, index: int) -> TokenKind | None:
        return self.tokens[index].kind if index < len(self.tokens) else None

    def source(self, token: Token) -> str:
        return self.text[token.start : token.end]

    def run(self) -> None:
        index = 0
        while index < len(self.tokens):
            token = self.tokens[index]
            if token.kind is TokenKind.TEXT:
                self.emit_caption(self.source(token))
                index += 1
            elif token.kind in _CLOSER_OF:
                index = self.mention(index)
            elif token.kind is TokenKind.BOX_OPEN:
                self.problem(f"{tags.BOX_OPEN} must follow a {tags.REF_CLOSE} or {tags.PRED_CLOSE}", token.start)
                _, index, _ = self.box_group(index)
            else:
                self.problem(f"unexpected {token.kind.value} without its opening tag", token.start)
                index += 1

    def mention(self, index: int) -> int:
        """Parse a ``<ref>`` or ``<pred>`` mention starting at ``index``; returns the next token index."""
        opener = self.tokens[index]
        is_ref = opener.kind is TokenKind.REF_OPEN
        after = index + 1
        phrase = ""
        if self.kind(after) is TokenKind.TEXT:
            phrase = self.source(self.tokens[after])
            after += 1
        closer_kind = self.kind(after)
        if closer_kind is not _CLOSER_OF[opener.kind]:
            if closer_kind in (TokenKind.REF_CLOSE, TokenKind.PRED_CLOSE):
                self.problem(f"{opener.kind.value} closed by {closer_kind.value}", self.tokens[after].start)
            else:
                # Unclosed: drop the opening tag; its text is read again as ordinary text.
                self.problem(f"{opener.kind.value} is not closed by {_CLOSER_OF[opener.kind].value}", opener.start)
                return index + 1
        if not phrase.strip():
            self.problem(f"empty phrase in {opener.kind.value}", opener.start)
        end = self.tokens[after].end
        caption_start = self.emit_caption(phrase)
        groups: list[tuple[Box, ...]] = []
        index = after + 1
        while is_ref or len(groups) < 2:
            box_index = self.next_box(index)
            if box_index is None:
                break
            group, index, end = self.box_group(box_index)
            groups.append(group)
        if is_ref:
            if not groups:
                self.problem(f"expected {tags.BOX_OPEN} right after {tags.REF_CLOSE}", self.tokens[after].start)
            boxes = tuple(box for group in groups for box in group)
            self.objects.append(ObjectMention(phrase, boxes, opener.start, end, caption_start))
        else:
            if len(groups) < 2:
                message = f"{tags.PRED_OPEN} needs two box lists (subjects, objects), found {len(groups)}"
                self.problem(message, opener.start)
                groups += [()] * (2 - len(groups))
            relation = RelationMention(phrase, groups[0], groups[1], opener.start, end, caption_start)
            pairs, problem = pair_boxes(relation.subjects, relation.objects)
            if problem:
                self.problem(f"{tags.PRED_OPEN}{phrase}{tags.PRED_CLOSE}: {problem}", opener.start)
            self.relations.append(relation)
            self.pairs.append(pairs)
        return index

    def next_box(self, index: int) -> int | None:
        """Index of the ``<box>`` that continues a mention at ``index`` (lenient mode skips whitespace)."""
        kind = self.kind(index)
        if kind is TokenKind.BOX_OPEN:
            return index
        if (
            self.lenient
            and kind is TokenKind.TEXT
            and not self.source(self.tokens[index]).strip()
            and self.kind(index + 1) is TokenKind.BOX_OPEN
        ):
            return index + 1
        return None

    def box_group(self, index: int) -> tuple[tuple[Box, ...], int, int]:
        """Parse ``<box>...</box>`` at ``index``; returns the valid boxes, the next index and the end offset."""
        opener = self.tokens[index]
        has_content = self.kind(index + 1) is TokenKind.TEXT
        closer = index + 1 + has_content
        content_end = self.tokens[index + 1].end if has_content else opener.end
        if self.kind(closer) is TokenKind.BOX_CLOSE:
            content, next_index, end = self.text[opener.end : content_end], closer + 1, self.tokens[closer].end
        else:
            self.problem(f"{tags.BOX_OPEN} is not closed by {tags.BOX_CLOSE}", opener.start)
            content, end = self.recover_unclosed(opener, content_end)
            next_index = index + 1
            if has_content:
                # What follows the recovered box list is ordinary text: shorten the content token to it.
                self.tokens[index + 1] = Token(TokenKind.TEXT, end, content_end)
                next_index += end == content_end
            if not content:
                return (), next_index, end
        raw_boxes, problem = parse_box_list(content, self.lenient)
        if problem:
            self.problem(problem, opener.start)
        return tuple(self.checked_boxes(raw_boxes, opener.start)), next_index, end

    def recover_unclosed(self, opener: Token, content_end: int) -> tuple[str, int]:
        """Content and end offset of an unclosed ``<box>``: the JSON value that starts its content, if any."""
        rest = self.text[opener.end : content_end]
        stripped = rest.lstrip()
        try:
            _, consumed = json.JSONDecoder().raw_decode(stripped)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            return "", opener.end
        end = opener.end + (len(rest) - len(stripped)) + consumed
        return self.text[opener.end : end], end

    def checked_boxes(self, raw_boxes: list, offset: int) -> Iterator[Box]:
        for raw in raw_boxes:
            try:
                yield box_frames.validate(raw, self.frame)
            except box_frames.MalformedBoxError as error:
                self.problem(str(error), offset)  # not a box: nothing to keep
            except box_frames.BoxError as error:
                self.problem(str(error), offset)
                yield tuple(raw)  # reported, kept as written: never clamped

    def triplets(self) -> list[Triplet]:
        """Name every paired box after a ``<ref>`` mention listing it (run after the whole text is read)."""
        # Numerically equal boxes are equal keys: 1 == 1.0 and hash(1) == hash(1.0).
        by_box: dict[Box, list[ObjectMention]] = {}
        for mention in self.objects:
            for box in mention.boxes:
                by_box.setdefault(box, []).append(mention)
        result = []
        for relation, pairs in zip(self.relations, self.pairs, strict=True):
            names: dict[Box, str | None] = {}
            for box in dict.fromkeys(box for pair in pairs for box in pair):
                names[box] = _name(by_box.get(box, []), relation.start)
                if names[box] is None:
                    self.problem(
                        f"box {list(box)} of {tags.PRED_OPEN}{relation.predicate}{tags.PRED_CLOSE} "
                        f"is listed by no {tags.REF_OPEN}",
                        relation.start,
                    )
            for subject_box, object_box in pairs:
                result.append(
                    Triplet(names[subject_box], subject_box, relation.predicate, names[object_box], object_box)
                )
        return result


def _name(mentions: list[ObjectMention], offset: int) -> str | None:
    """Phrase of the nearest mention before ``offset``, else the nearest after (mentions are in text order)."""
    if not mentions:
        return None
    position = bisect.bisect_left([m.start for m in mentions], offset)
    return mentions[position - 1].phrase if position > 0 else mentions[position].phrase


def parse(text: str, mode: Mode = "lenient", frame: str | Frame = box_frames.DEFAULT_FRAME) -> ReCDocument:
    """Parse ReC text.

    Args:
        text: the ReC text (a model answer, a training target, a prompt).
        mode: ``strict``, ``lenient`` or ``compat`` (module docstring).
        frame: the box frame, which sets the valid coordinate range.

    Raises:
        ReCParseError: in strict mode, at the first problem.
    """
    if mode == "compat":
        return extract(text).to_document()
    if mode not in MODES:
        raise ValueError(f"unknown parse mode {mode!r}; choose one of {', '.join(MODES)}")
    parser = _Parser(text, lenient=mode == "lenient", frame=box_frames.get_frame(frame))
    parser.run()
    triplets = parser.triplets()
    return ReCDocument(
        caption="".join(parser.caption),
        objects=tuple(parser.objects),
        relations=tuple(parser.relations),
        triplets=tuple(triplets),
        errors=tuple(sorted(parser.issues, key=lambda issue: issue.offset)),
    )
