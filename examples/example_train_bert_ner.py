"""Trains BERT NER (frozen TF-Hub encoder + MLP head) on the GMB seed-001 protocol.

    python -m examples.example_train_bert_ner [--set training.epochs=2] [--set encoder.trainable=true]
"""
from examples.common import train_main

if __name__ == "__main__":
    train_main("config/bert_ner.yaml")
