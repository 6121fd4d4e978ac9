"""Trains bert_crf (frozen TF-Hub encoder + MLP head + casing and lexical features + CRF) on the GMB
seed-001 protocol; the model results/taggers.md compares with the feature-CRF reference.

    python -m examples.example_train_bert_crf [--set training.epochs=2]
    python -m examples.example_evaluate_model --run bert_crf
"""
from examples.common import train_main

if __name__ == "__main__":
    train_main("config/bert_crf.yaml")
