"""Trains BERT + BiLSTM + CRF (encoder fine-tuned, CRF over the words) on the GMB seed-001 protocol.

    python -m examples.example_train_bert_bilstm_crf [--set data.tag_scheme=biluo] [--set model.crf_constraints=false]
"""
from examples.common import train_main

if __name__ == "__main__":
    train_main("config/bert_bilstm_crf.yaml")
