"""Inference: batched generation, option ranking with a shared prefix, chat."""
