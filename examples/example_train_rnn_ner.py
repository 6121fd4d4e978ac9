"""Trains the word-piece RNN tagger (BiLSTM by default) on the GMB seed-001 protocol.

    python -m examples.example_train_rnn_ner [--set model.rnn.cell=gru] [--set model.rnn.num_layers=2]
"""
from examples.common import train_main

if __name__ == "__main__":
    train_main("config/rnn_ner.yaml")
