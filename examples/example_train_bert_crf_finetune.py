"""Trains bert_crf with its encoder fine-tuned (warm-up, then linear decay) on the GMB seed-001
protocol.

    python -m examples.example_train_bert_crf_finetune [--set training.encoder_learning_rate=3.0e-5]
"""
from examples.common import train_main

if __name__ == "__main__":
    train_main("config/bert_crf_finetune.yaml")
