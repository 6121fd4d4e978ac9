"""Trains the baseline (word-piece embedding + MLP head) on the GMB seed-001 protocol.

    python -m examples.example_train_ner_baseline [--set training.epochs=2]
"""
from examples.common import train_main

if __name__ == "__main__":
    train_main("config/ner_baseline.yaml")
