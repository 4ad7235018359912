"""allseeing: the All-Seeing Project V2 (ReC format, ASMv2, CRPE) on the modern stack."""

__version__ = "0.1.0"
