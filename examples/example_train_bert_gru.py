"""Trains BERT + GRU (encoder fine-tuned end to end) on the GMB seed-001 protocol.

    python -m examples.example_train_bert_gru [--set training.encoder_learning_rate=3e-5]
"""
from examples.common import train_main

if __name__ == "__main__":
    train_main("config/bert_gru.yaml")
