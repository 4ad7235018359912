"""The Relation Conversation (ReC) format: tags, box frames, parsing, writing, scene graphs, drawing.

Pure Python: only the standard library, plus Pillow in ``draw.py``.
"""
