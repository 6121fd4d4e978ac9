"""Trains bert_crf_bilstm (bert_crf with a BiLSTM over the words under its head; frozen encoder, cached
features) on the GMB seed-001 protocol; results/taggers.md and results/benchmarks.md compare it with
bert_crf and the feature-CRF reference.

    python -m examples.example_train_bert_crf_bilstm [--set training.epochs=2]
    python -m examples.example_evaluate_model --run bert_crf_bilstm
"""
from examples.common import train_main

if __name__ == "__main__":
    train_main("config/bert_crf_bilstm.yaml")
