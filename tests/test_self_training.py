"""Self-training (issue #13): pseudo-label selection against hand-computed values, the pool check, the
pseudo-labelled batches, and the stage end to end on a tiny corpus (cached features and a live encoder)."""
import csv
import dataclasses
import math

import numpy as np
import pytest

import ner  # noqa: F401
from ner.config import SemiSupervisedConfig, build_dataclass
from ner.data import ModelInputs, model_for, prepare_data, with_word_labels
from ner.errors import ConfigError, NerError
from ner.evaluation import evaluate
from ner.experiment import SELF_TRAINING_FILE, train
from ner.preprocessor import DataSplit
from ner.self_training import (bald_confidence, check_pool, marginal_confidence, most_confident,
                               select_pseudo_labels, sentence_confidence)
from ner.tagging import IGNORE_LABEL
from tests.helpers import give_run_random_scores, tiny_config


def test_word_and_sentence_confidence():
    probabilities = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    assert marginal_confidence(probabilities, np.array([0, 1, 1])).tolist() == [0.9, 0.7, 0.4]
    # Two samples [1, 0] and [0, 1]: mean [0.5, 0.5], entropy ln 2, each sample's entropy 0 → MI ln 2.
    assert bald_confidence(np.array([[0.5, 0.5]]), np.array([0.0])) == pytest.approx([1 - math.log(2)])
    # Rows of 2, 0 and 3 words: the least sure word of each, 1 for the empty row.
    confidence = sentence_confidence(np.array([0.9, 0.8, 0.7, 0.95, 0.6]), np.array([2, 0, 3]))
    assert confidence.tolist() == [0.8, 1.0, 0.6]
    assert sentence_confidence(np.array([0.5]), np.array([1, 0])).tolist() == [0.5, 1.0]


def test_most_confident_keeps_the_top_fraction_in_pool_order():
    assert most_confident(np.array([0.2, 0.9, 0.5, 0.9, 0.1]), 0.5).tolist() == [1, 2, 3]   # ceil(2.5) = 3
    assert most_confident(np.array([0.7, 0.7, 0.7]), 0.34).tolist() == [0, 1]               # ties: earlier rows
    assert most_confident(np.array([0.3, 0.1]), 1.0).tolist() == [0, 1]


def test_select_pseudo_labels_keeps_confident_rows_with_the_teachers_labels():
    rows = np.array([10, 11, 12])
    lengths = np.array([2, 1, 2])
    predicted = np.array([1, 0, 2, 0, 0], np.int32)
    gold = np.array([1, 1, 2, 0, 0], np.int32)
    word_confidence = np.array([0.9, 0.4, 0.99, 0.8, 0.95])
    pseudo = select_pseudo_labels(rows, lengths, predicted, word_confidence, 0.6, gold)  # keeps 2 of 3
    assert pseudo.rows.tolist() == [11, 12]
    assert pseudo.word_labels.tolist() == [2, 0, 0]
    assert pseudo.confidence.tolist() == pytest.approx([0.99, 0.8])
    assert pseudo.kept_accuracy == 1.0 and pseudo.dropped_accuracy == 0.5
    assert pseudo.summary() == {"pool_rows": 3, "kept_rows": 2, "kept_words": 3,
                                "mean_confidence": pytest.approx(0.895), "kept_accuracy": 1.0,
                                "dropped_accuracy": 0.5}


def test_the_pool_may_hold_unlabelled_sentences_only():
    split = DataSplit(test_ids=(1, 2), labelled_ids=(3,), validation_ids=(4,), unlabelled_ids=(5, 6), seed=0)
    check_pool(split, [5, 6])
    with pytest.raises(NerError, match="1 sentences of the self-training pool \\(e.g. id 2\\) are in the test part"):
        check_pool(split, [5, 2])
    with pytest.raises(NerError, match="in the validation part"):
        check_pool(split, [4])


def test_with_word_labels_replaces_first_piece_labels_in_row_order(tmp_path, tiny_encoder_handle):
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_ner")
    data = prepare_data(config, verbose=False)
    encoded = data.encoded("unlabelled")
    first_pieces = encoded.label_ids != IGNORE_LABEL
    pseudo = np.arange(first_pieces.sum(), dtype=np.int32) % 3
    replaced = with_word_labels(encoded, pseudo)
    assert replaced.label_ids[first_pieces].tolist() == pseudo.tolist()
    assert (replaced.label_ids[~first_pieces] == IGNORE_LABEL).all()
    assert (replaced.input_word_ids == encoded.input_word_ids).all()
    with pytest.raises(ValueError, match="word_labels has 2 labels for the"):
        with_word_labels(encoded, pseudo[:2])


@pytest.mark.parametrize("cached", [True, False])
def test_pseudo_labelled_batches_carry_the_given_labels(tmp_path, tiny_encoder_handle, cached):
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_crf")
    if not cached:
        config = dataclasses.replace(config, training=dataclasses.replace(config.training, feature_cache=False))
    data = prepare_data(config, verbose=False)
    inputs = ModelInputs(config, data, model_for(config, data), verbose=False)
    assert (inputs.store is not None) == cached
    rows = data.rows("unlabelled")[[3, 0]]
    words = int((data.encoded_all.label_ids[rows] != IGNORE_LABEL).sum())
    pseudo = (np.arange(words, dtype=np.int32) * 5) % 9
    labels = np.concatenate([batch_labels[batch_labels != IGNORE_LABEL] for _, batch_labels in
                             inputs.rows_dataset(rows, shuffle=False, word_labels=pseudo).as_numpy_iterator()])
    assert labels.tolist() == pseudo.tolist()


def self_training_stage(supervised, **options):
    stage = {"init_run": supervised.run_name, "losses": [], "loss_weights": [], "pairs": 6, "evaluate_every": 2,
             "self_training": {"rounds": 2, "pool_size": 5, "keep_fraction": 0.5, **options}}
    return dataclasses.replace(supervised, run_name="student",
                               semi_supervised=build_dataclass(SemiSupervisedConfig, stage, source="test"))


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("model_type,confidence", [("bert_crf", "marginal"), ("bert_ner", "mc_dropout")])
def test_self_training_stage_learns_from_the_teachers_most_confident_sentences(tmp_path, tiny_encoder_handle,
                                                                                model_type, confidence):
    supervised = tiny_config(tmp_path, tiny_encoder_handle, model_type, epochs=2)
    train(supervised, verbose=False)
    run_dir = train(self_training_stage(supervised, confidence=confidence, mc_samples=3), verbose=False)
    history = read_rows(run_dir / "history.csv")
    assert [row["pair"] for row in history] == ["2", "3", "5", "6"]  # rounds of 3 pairs, records every 2 and at the end
    rounds = read_rows(run_dir / SELF_TRAINING_FILE)
    assert [(r["round"], r["pool_rows"], r["kept_rows"]) for r in rounds] == [("1", "5", "3"), ("2", "5", "3")]
    assert (run_dir / "split.json").read_text() == (supervised.run_dir() / "split.json").read_text()
    assert evaluate(str(run_dir), verbose=False).report.num_sentences == 12


def test_self_training_control_spends_the_steps_on_labelled_batches(tmp_path, tiny_encoder_handle):
    supervised = tiny_config(tmp_path, tiny_encoder_handle, "bert_crf", epochs=1)
    train(supervised, verbose=False)
    run_dir = train(self_training_stage(supervised, control=True), verbose=False)
    assert [row["pair"] for row in read_rows(run_dir / "history.csv")] == ["2", "3", "5", "6"]
    assert not (run_dir / SELF_TRAINING_FILE).exists()


def test_self_training_teachers_tag_the_pool_with_the_model_as_one_crf_ensemble(tmp_path, tiny_encoder_handle):
    """The teacher (random output scores, so that it tags varied labels) joined by itself tags as it does alone:
    the same selection, confidence and pseudo-label accuracy; joined by another run (another casing size and
    initialisation, other random scores) the selection's confidence changes. A teacher of another split is
    refused by name."""
    supervised = tiny_config(tmp_path, tiny_encoder_handle, "bert_crf", epochs=1)
    other = dataclasses.replace(supervised, run_name="other", model=dataclasses.replace(supervised.model, casing_dim=4),
                                training=dataclasses.replace(supervised.training, seed=7))
    give_run_random_scores(train(supervised, verbose=False), seed=1)
    give_run_random_scores(train(other, verbose=False), seed=2)

    def selection(name, **options):
        """The round's line of self_training.csv without its time, and its mean confidence apart."""
        stage = self_training_stage(supervised, rounds=1, **options)
        [row] = read_rows(train(dataclasses.replace(stage, run_name=name), verbose=False) / SELF_TRAINING_FILE)
        confidence = float(row.pop("mean_confidence"))
        return {key: value for key, value in row.items() if key != "seconds"}, confidence

    alone, alone_confidence = selection("alone")
    with_itself, with_itself_confidence = selection("with_itself", teachers=[supervised.run_name])
    assert with_itself == alone and with_itself_confidence == pytest.approx(alone_confidence, abs=1e-6)
    assert selection("with_other", teachers=[str(other.run_dir())])[1] != pytest.approx(alone_confidence, abs=1e-3)

    other_split = dataclasses.replace(other, run_name="other_split", split=dataclasses.replace(other.split, seed=5))
    train(other_split, verbose=False)
    with pytest.raises(NerError, match="ensemble run 'other_split' has another split than run 'refused'"):
        selection("refused", teachers=["other_split"])


@pytest.mark.parametrize("stage,message", [
    ({"losses": [], "loss_weights": []}, "non-empty without self_training"),
    ({"losses": [], "loss_weights": [], "pairs": 1, "self_training": {"rounds": 2}}, "at least self_training.rounds"),
    ({"self_training": {"keep_fraction": 0.0}}, "keep_fraction' must be a number in \\(0, 1\\]"),
    ({"self_training": {"confidence": "entropy"}}, "confidence' must be one of \\('marginal', 'mc_dropout'\\)"),
    ({"self_training": {"teachers": ["a"], "control": True}}, "teachers' must be empty unless confidence is marginal"),
    ({"self_training": {"teachers": ["a"], "confidence": "mc_dropout"}}, "teachers' must be empty unless"),
])
def test_self_training_config_errors(stage, message):
    with pytest.raises(ConfigError, match=message):
        build_dataclass(SemiSupervisedConfig, stage, source="test")
