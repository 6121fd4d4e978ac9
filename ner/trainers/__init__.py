"""Trainers own loops, optimisers and checkpoints; models only map tensors to tensors."""
from ner.trainers.trainer import Trainer, load_weights

__all__ = ["Trainer", "load_weights"]
