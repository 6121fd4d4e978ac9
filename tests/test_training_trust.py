"""Training a user can trust: exact resume, seeded reproducibility, TensorBoard logs, epoch-keyed data order."""
import csv
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import ner  # noqa: F401
from ner.evaluation import evaluate
from ner.experiment import train
from ner.preprocessor import row_order
from ner.trainers.trainer import LOGS_DIR
from tests.helpers import tiny_config


def with_dropout(config, run_name: str, epochs: int, rate: float = 0.3):
    """The tiny config under another run name, with head dropout on (so the random state matters)."""
    head = dataclasses.replace(config.model.head, dropout_rate=rate)
    return dataclasses.replace(config, run_name=run_name, model=dataclasses.replace(config.model, head=head),
                               training=dataclasses.replace(config.training, epochs=epochs))


def history(run_dir) -> list:
    """history.csv's rows without the epoch's wall time, the one value that may differ between equal runs."""
    with open(run_dir / "history.csv", newline="", encoding="utf-8") as handle:
        return [{key: float(value) for key, value in row.items() if key != "train_seconds"}
                for row in csv.DictReader(handle)]


def test_tf_data_reshuffle_restarts_but_the_epoch_keyed_order_does_not():
    """The finding behind `row_order(epoch=...)`: tf.data's seeded reshuffle gives pass k of one dataset
    object the k-th order, so a new object (a resumed process) replays the first order for epoch 3."""
    def passes(dataset, count):
        return [list(dataset.as_numpy_iterator()) for _ in range(count)]

    uninterrupted = passes(row_order(10, shuffle=True, seed=3), 3)
    assert passes(row_order(10, shuffle=True, seed=3), 1)[0] == uninterrupted[0] != uninterrupted[2]

    epoch = tf.Variable(0, dtype=tf.int64)
    keyed = row_order(10, shuffle=True, seed=3, epoch=epoch)
    orders = []
    for k in range(3):
        epoch.assign(k)
        orders.append(list(keyed.as_numpy_iterator()))
    assert len({tuple(order) for order in orders}) == 3 and all(sorted(order) == list(range(10)) for order in orders)
    resumed_epoch = tf.Variable(2, dtype=tf.int64)  # a new process, restored at epoch index 2
    assert list(row_order(10, shuffle=True, seed=3, epoch=resumed_epoch).as_numpy_iterator()) == orders[2]
    other_seed = tf.Variable(2, dtype=tf.int64)
    assert list(row_order(10, shuffle=True, seed=4, epoch=other_seed).as_numpy_iterator()) != orders[2]
    with pytest.raises(ValueError, match="needs a seed"):
        row_order(10, shuffle=True, seed=None, epoch=epoch)


@pytest.mark.parametrize("model_type, group_by_length", [  # feature-cache and live pipelines, batches grouped or not
    ("bert_ner", False), ("ner_baseline", False), ("bert_ner", True), ("ner_baseline", True)])
def test_a_resumed_run_ends_with_the_metrics_of_an_uninterrupted_one(tmp_path, tiny_encoder_handle, model_type,
                                                                      group_by_length):
    base = tiny_config(tmp_path, tiny_encoder_handle, model_type, epochs=4)
    base = dataclasses.replace(base, training=dataclasses.replace(base.training, group_by_length=group_by_length))
    uninterrupted = history(train(with_dropout(base, "whole", epochs=4), verbose=False))

    interrupted = train(with_dropout(base, "cut", epochs=2), verbose=False)  # stops after its 2nd checkpoint
    assert [row["epoch"] for row in history(interrupted)] == [1, 2]
    resumed = history(train(with_dropout(base, "cut", epochs=4), resume=True, verbose=False))

    assert [row["epoch"] for row in resumed] == [1, 2, 3, 4]
    for whole_row, resumed_row in zip(uninterrupted, resumed):
        assert whole_row.keys() == resumed_row.keys()
        for key in whole_row:
            assert resumed_row[key] == pytest.approx(whole_row[key], abs=5e-5), (whole_row["epoch"], key)
    assert uninterrupted[2]["loss"] != uninterrupted[3]["loss"]  # the epochs did differ


def test_seeded_runs_are_reproducible(tmp_path, tiny_encoder_handle):
    base = tiny_config(tmp_path, tiny_encoder_handle, "bert_ner", epochs=3)
    first, second = (train(with_dropout(base, name, epochs=3), verbose=False) for name in ("first", "second"))
    np.testing.assert_allclose([list(row.values()) for row in history(first)],
                               [list(row.values()) for row in history(second)], atol=5e-5)
    summaries = [evaluate(str(run), verbose=False).report.summary_row() for run in (first, second)]
    assert summaries[0].keys() == summaries[1].keys()
    for key in summaries[0]:
        assert round(summaries[0][key], 4) == round(summaries[1][key], 4), key


def test_training_writes_tensorboard_scalars_per_epoch(tmp_path, tiny_encoder_handle):
    run_dir = train(tiny_config(tmp_path, tiny_encoder_handle, "ner_baseline", epochs=2), verbose=False)
    scalars = {}
    for event_file in (run_dir / LOGS_DIR).iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "scalars"
                scalars.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    assert set(scalars) == {"loss", "accuracy", "accuracy_without_o", "train_seconds", "val_loss", "val_accuracy",
                            "val_accuracy_without_o"}
    for row in history(run_dir):
        for key, value in row.items():
            if key != "epoch":
                assert scalars[key][int(row["epoch"])] == pytest.approx(value, rel=1e-6)


@pytest.mark.parametrize("model_type", ["bert_ner", "bert_crf"])  # cached, live CRF
def test_length_buckets_pad_batches_without_changing_what_is_learned(tmp_path, tiny_encoder_handle, model_type):
    """Padding every batch to a bucket width adds masked positions only: the same history and test metrics
    as batches trimmed to their longest row (up to float32 summation order)."""
    base = tiny_config(tmp_path, tiny_encoder_handle, model_type, epochs=3)
    runs = []
    for name, buckets in (("trimmed", None), ("bucketed", (8, 12, 16))):
        training = dataclasses.replace(base.training, length_buckets=buckets, group_by_length=True)
        runs.append(train(dataclasses.replace(base, run_name=name, training=training), verbose=False))
    trimmed, bucketed = (history(run) for run in runs)
    for trimmed_row, bucketed_row in zip(trimmed, bucketed):
        for key in trimmed_row:
            assert bucketed_row[key] == pytest.approx(trimmed_row[key], abs=1e-5), (trimmed_row["epoch"], key)
    summaries = [evaluate(str(run), verbose=False).report.summary_row() for run in runs]
    assert summaries[0] == pytest.approx(summaries[1], abs=1e-6)
