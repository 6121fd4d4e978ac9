"""Semi-supervised stage: BERT NER + data-distribution KL, started from the trained `bert_ner` run.

    python -m examples.example_train_bert_ner              # first, the supervised stage
    python -m examples.example_train_bert_data_dist_kl
    python -m examples.example_evaluate_model --run bert_data_dist_kl
"""
from examples.common import train_main

if __name__ == "__main__":
    train_main("config/bert_data_dist_kl.yaml")
