"""Self-training with uncertainty on top of a trained bert_crf run (issue #13): the run is the teacher, its
most confident pseudo-labelled sentences train the student (config/bert_crf_self_training.yaml).

    python -m examples.example_train_bert_crf                      # the teacher, once
    python -m examples.example_train_bert_crf_self_training
    python -m examples.example_train_bert_crf_self_training --config config/bert_crf_self_training_control.yaml
    python -m examples.example_evaluate_model --run bert_crf_self_training
"""
from examples.common import train_main

if __name__ == "__main__":
    train_main("config/bert_crf_self_training.yaml")
