"""The ReC markup strings. This module is the only place they are written."""

REF_OPEN = "<ref>"
REF_CLOSE = "</ref>"
PRED_OPEN = "<pred>"
PRED_CLOSE = "</pred>"
BOX_OPEN = "<box>"
BOX_CLOSE = "</box>"

# Markers that appear in model prompts and outputs but are not ReC markup.
IMAGE = "<image>"
EOS = "</s>"

ALL_TAGS = (REF_OPEN, REF_CLOSE, PRED_OPEN, PRED_CLOSE, BOX_OPEN, BOX_CLOSE)
