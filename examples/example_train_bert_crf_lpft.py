"""Fine-tunes the encoder of a trained bert_crf run (linear probing, then fine-tuning) on the GMB seed-001
protocol: train `bert_crf` first (`python -m examples.example_train_bert_crf`).

    python -m examples.example_train_bert_crf_lpft [--set training.init_run=my_bert_crf_run]
"""
from examples.common import train_main

if __name__ == "__main__":
    train_main("config/bert_crf_lpft.yaml")
