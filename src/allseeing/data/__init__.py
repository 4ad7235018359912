"""Data: the synthetic world, manifests and their checks."""
