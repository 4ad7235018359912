"""Training: configuration, the training loop, distributed set-up and checkpoints."""
