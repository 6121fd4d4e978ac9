"""Losses against NumPy, the shared training loop, checkpoints, final weights and resume."""
import math

import numpy as np
import pytest
import tensorflow as tf

import ner  # noqa: F401
import tf_keras as keras
from ner.config import HeadConfig, ModelConfig, EncoderConfig
from ner.models import BaselineNER, MLPHead, build_model
from ner.losses import logit_adjustment, masked_cross_entropy, token_counts
from ner.errors import NerError
from ner.trainers.trainer import Trainer, load_weights, read_history, reseed_dropout
from ner.utils import set_seed
from tests.model_test_utils import LABEL_MAP, VOCAB as MODEL_VOCAB, batch_spec, features_for, model_config, toy_batch

VOCAB, LABELS, LENGTH = 20, 3, 6


def test_masked_cross_entropy_matches_numpy_and_ignores_masked_positions():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(LABELS), size=(2, 4)).astype(np.float32)
    labels = np.array([[0, 2, -1, -1], [1, -1, 1, 0]], dtype=np.int32)
    keep = labels >= 0
    expected = -np.mean(np.log(probabilities[keep, labels[keep]]))
    assert float(masked_cross_entropy(labels, probabilities)) == pytest.approx(expected, rel=1e-5)
    changed = probabilities.copy()
    changed[~keep] = np.array([1.0, 0.0, 0.0])
    assert float(masked_cross_entropy(labels, changed)) == pytest.approx(expected, rel=1e-5)
    assert float(masked_cross_entropy(np.full((1, 2), -1, np.int32), probabilities[:1, :2])) == 0.0


def test_trainer_evaluates_the_logit_adjusted_loss_and_reports_plain_accuracy(tmp_path):
    set_seed(0)
    model = _baseline()
    offset = logit_adjustment([0.6, 0.3, 0.1], 1.0)
    plain = Trainer(model, tmp_path, outside_id=0, verbose=False).evaluate(_toy_data())
    adjusted = Trainer(model, tmp_path, outside_id=0, verbose=False, score_offset=offset).evaluate(_toy_data())
    features, labels = zip(*_toy_data())
    probabilities = [model(batch, training=False)[1] for batch in features]
    words = [float(np.sum(batch >= 0)) for batch in labels]
    expected = sum(w * float(masked_cross_entropy(y, p, offset)) for w, y, p in zip(words, labels, probabilities))
    assert adjusted["loss"] == pytest.approx(expected / sum(words), rel=1e-5)
    assert adjusted["loss"] != pytest.approx(plain["loss"], rel=1e-3)
    assert adjusted["accuracy"] == plain["accuracy"]


def test_token_counts():
    probabilities = np.eye(LABELS, dtype=np.float32)[[[0, 1, 2, 1]]]  # predicts 0, 1, 2, 1
    labels = np.array([[0, 2, 2, -1]], dtype=np.int32)
    counts = {key: float(value) for key, value in token_counts(labels, probabilities, outside_id=0).items()}
    assert counts == {"tokens": 3.0, "correct": 2.0, "entity_tokens": 2.0, "entity_correct": 1.0}


def _toy_data(n=64, seed=0):
    """Label = word id mod 3 on every position but padding: learnable from the embedding alone."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, size=(n, LENGTH)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[:, -2:] = 0
    ids[mask == 0] = 0
    labels = np.where(mask == 1, ids % LABELS, -1).astype(np.int32)
    features = {"input_word_ids": ids, "input_mask": mask, "input_type_ids": np.zeros_like(ids)}
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(16)


def _baseline():
    config = ModelConfig(type="ner_baseline", embedding_dim=8,
                         head=HeadConfig(hidden_units=(16,), latent_dim=4, dropout_rate=0.0))
    return build_model(config, EncoderConfig(), num_labels=LABELS, vocab_size=VOCAB)


def test_fit_learns_checkpoints_and_saves_weights(tmp_path):
    set_seed(0)
    model = _baseline()
    trainer = Trainer(model, tmp_path, outside_id=0, verbose=False)
    before = trainer.evaluate(_toy_data())
    history = trainer.fit(_toy_data(), epochs=12, learning_rate=0.05, validation_data=_toy_data(seed=1))
    assert [row["epoch"] for row in history] == list(range(1, 13))
    assert history[-1]["loss"] < history[0]["loss"]
    assert all(row["train_seconds"] > 0 for row in history)
    assert history[-1]["val_accuracy"] > max(0.9, before["accuracy"])
    assert (tmp_path / "history.csv").read_text().startswith("epoch,loss,accuracy,accuracy_without_o,train_seconds,val_loss")
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-12")

    reloaded = _baseline()
    load_weights(reloaded, tmp_path)
    features, _ = next(iter(_toy_data()))
    np.testing.assert_allclose(reloaded(features)[1].numpy(), model(features)[1].numpy(), atol=1e-6)


def test_resume_continues_from_the_last_checkpoint(tmp_path):
    set_seed(0)
    first = Trainer(_baseline(), tmp_path, outside_id=0, verbose=False)
    first.fit(_toy_data(), epochs=2, learning_rate=0.05)
    resumed = Trainer(_baseline(), tmp_path, outside_id=0, verbose=False)
    history = resumed.fit(_toy_data(), epochs=4, learning_rate=0.05, resume=True)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert int(resumed.epoch) == 4


def test_reseeded_dropout_repeats_its_masks_in_one_trace():
    head = MLPHead(hidden_units=(8, 8), latent_dim=2, num_labels=3, dropout_rate=0.5)
    features = tf.ones([2, 5, 4])
    head(features)
    sample = tf.function(lambda x: head(x, training=True)[0])
    reseed_dropout(head, 7)
    first, second = sample(features).numpy(), sample(features).numpy()
    reseed_dropout(head, 7)
    again = sample(features).numpy()
    reseed_dropout(head, 8)
    other = sample(features).numpy()
    np.testing.assert_array_equal(again, first)  # the same seed restarts the same stream
    assert not np.array_equal(second, first) and not np.array_equal(other, first)
    assert sample.experimental_get_tracing_count() == 1


def _head_kernels(model):
    head = model.head
    return [layer.kernel for layer in head.hidden_layers + [head.latent_layer, head.output_layer]]


def _baseline_l2(l2):
    config = ModelConfig(type="ner_baseline", embedding_dim=8,
                         head=HeadConfig(hidden_units=(16,), latent_dim=4, dropout_rate=0.0, l2=l2))
    return build_model(config, EncoderConfig(), num_labels=LABELS, vocab_size=VOCAB)


def test_head_l2_gives_one_regularisation_loss_per_kernel_and_zero_gives_none(tmp_path):
    set_seed(0)
    model = _baseline_l2(0.01)
    kernels = _head_kernels(model)
    assert len(model.losses) == len(kernels) == 3
    expected = 0.01 * sum(float(tf.reduce_sum(tf.square(k))) for k in kernels)
    regularisation = Trainer(model, tmp_path, outside_id=0, verbose=False).regularisation_loss()
    assert float(regularisation) == pytest.approx(expected, rel=1e-5)
    assert model.head.get_config()["kernel_l2"] == 0.01
    plain = _baseline_l2(0.0)
    assert plain.losses == [] and Trainer(plain, tmp_path, outside_id=0, verbose=False).regularisation_loss() is None
    assert plain.head.get_config()["kernel_l2"] == 0.0


class _OwnLossNER(BaselineNER):
    """The baseline with a model-owned loss (like the CRF tagger's `forward_loss`): twice the cross-entropy."""

    def forward_loss(self, features, labels, training=None, score_offset=None):
        _, probabilities = self(features, training=training)
        return 2.0 * masked_cross_entropy(labels, probabilities, score_offset), probabilities


@pytest.mark.parametrize("path", ["supervised", "alternating", "forward_loss"])
def test_training_step_differentiates_data_loss_plus_l2_and_reports_the_data_loss(tmp_path, path):
    """One SGD step at learning rate 1 moves each variable by exactly the gradient of loss + l2·Σw²."""
    set_seed(0)
    l2 = 0.05
    features, labels = next(iter(_toy_data()))
    if path == "forward_loss":
        model = _OwnLossNER(VOCAB, 8, MLPHead((16,), 4, LABELS, dropout_rate=0.0, kernel_l2=l2))
        model(features)
    else:
        model = _baseline_l2(l2)
    trainer = Trainer(model, tmp_path, outside_id=0, verbose=False)
    loss_fn = (lambda y, p, input_mask: 3.0 * masked_cross_entropy(y, p)) if path == "alternating" else None
    data_loss = {"supervised": lambda p: masked_cross_entropy(labels, p),
                 "alternating": lambda p: 3.0 * masked_cross_entropy(labels, p),
                 "forward_loss": lambda p: 2.0 * masked_cross_entropy(labels, p)}[path]
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        loss = data_loss(model(features, training=True)[1])
        objective = loss + l2 * tf.add_n([tf.reduce_sum(tf.square(k)) for k in _head_kernels(model)])
    expected = [tf.convert_to_tensor(g).numpy() for g in tape.gradient(objective, variables)]  # embedding: sparse
    data_only = [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, variables)]
    before = [v.numpy() for v in variables]
    step = trainer.make_step(loss_fn, keras.optimizers.SGD(learning_rate=1.0), _toy_data().element_spec)
    stats = step(features, labels)
    assert float(stats["loss"]) == pytest.approx(float(loss), rel=1e-5)  # the data loss alone
    for start, variable, gradient in zip(before, variables, expected):
        np.testing.assert_allclose(start - variable.numpy(), gradient, atol=1e-5)
    assert max(np.abs(e - d).max() for e, d in zip(expected, data_only)) > 1e-3  # the L2 term is not negligible


def test_xla_compiled_steps_train_like_plain_ones(tmp_path):
    """`jit_compile` changes how the step runs, not what it computes (dropout is off in this model)."""
    histories = []
    for jit_compile in (False, True):
        set_seed(0)
        trainer = Trainer(_baseline(), tmp_path / str(jit_compile), outside_id=0, verbose=False,
                          jit_compile=jit_compile)
        histories.append(trainer.fit(_toy_data(), epochs=3, learning_rate=0.05))
    plain, xla = ([row["loss"] for row in history] for history in histories)
    np.testing.assert_allclose(xla, plain, rtol=1e-4)
    assert xla[-1] < xla[0]


@pytest.mark.parametrize("trainable", [False, True])
def test_the_step_differentiates_the_encoder_only_when_it_is_fine_tuned(tmp_path, tiny_encoder_handle, trainable):
    """A frozen TF-Hub encoder's variables are trainable to TensorFlow; a tape that watched them made the step
    differentiate the SavedModel's function (its `__backward_` functions in the step's graph), which XLA
    then recompiled for the values of every batch. The tape watches the model's trainable variables only."""
    model = build_model(model_config("bert_ner"), EncoderConfig(handle=tiny_encoder_handle, trainable=trainable),
                        LABEL_MAP.num_labels, MODEL_VOCAB)
    features, _ = toy_batch()
    step = Trainer(model, tmp_path, outside_id=0, verbose=False).make_step(
        None, keras.optimizers.Adam(1e-3), batch_spec(features_for("bert_ner", features)))
    library = step.get_concrete_function().graph.as_graph_def().library.function
    backward = [f.signature.name for f in library if "__backward_" in f.signature.name]
    assert bool(backward) == trainable


def _script_validation(trainer, values, monitor="val_loss"):
    """Makes `trainer.evaluate` give `values[k - 1]` as `monitor` (the other metrics fixed) for epoch k, the
    one after `trainer.epoch`, and keep the model's weights at that moment; returns {epoch: weights}."""
    weights_at = {}

    def evaluate(data):
        epoch = int(trainer.epoch) + 1
        weights_at[epoch] = trainer.model.get_weights()
        metrics = {"loss": 1.0, "accuracy": 0.5, "accuracy_without_o": 0.5}
        metrics[monitor[len("val_"):]] = values[epoch - 1]
        return metrics

    trainer.evaluate = evaluate
    return weights_at


def _checkpoint_tensors(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def _best_dirs(run_dir):
    return sorted(p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith("best-"))


def _assert_weights_equal(actual, expected):
    assert len(actual) == len(expected) and len(actual) > 0
    for a, e in zip(actual, expected):
        np.testing.assert_array_equal(a, e)


def test_early_stopping_stops_after_patience_and_keeps_the_best_epochs_weights(tmp_path, capsys):
    set_seed(0)
    trainer = Trainer(_baseline(), tmp_path, outside_id=0, verbose=True)
    val_loss = [0.9, 0.7, 0.5, 0.6, 0.55, 0.8, 0.4, 0.3, 0.2, 0.1]  # best at 3, then 3 epochs without a better one
    weights_at = _script_validation(trainer, val_loss)
    history = trainer.fit(_toy_data(), epochs=10, learning_rate=0.05, validation_data=_toy_data(seed=1),
                          early_stopping_patience=3)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    assert [row["val_loss"] for row in history] == val_loss[:6]
    assert [row["epoch"] for row in read_history(tmp_path)] == [1, 2, 3, 4, 5, 6] and int(trainer.epoch) == 6
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-6")
    assert _best_dirs(tmp_path) == ["best-3"]
    final = _checkpoint_tensors(tmp_path / "weights" / "model")
    best = _checkpoint_tensors(tmp_path / "checkpoints" / "best-3" / "model")
    assert final.keys() == best.keys()
    for name, value in best.items():
        np.testing.assert_array_equal(final[name], value, err_msg=name)
    reloaded = _baseline()
    load_weights(reloaded, tmp_path)
    _assert_weights_equal(reloaded.get_weights(), weights_at[3])
    _assert_weights_equal(trainer.model.get_weights(), weights_at[3])  # the model ends with them too
    assert not np.array_equal(weights_at[6][0], weights_at[3][0])  # training went on after epoch 3
    assert ("Early stopping after epoch 6: val_loss has not improved for 3 epochs; final weights from epoch 3 "
            "(val_loss 0.5000)\n") in capsys.readouterr().out


def test_early_stopping_on_a_higher_is_better_monitor_skips_nan_and_keeps_the_first_of_equals(tmp_path):
    set_seed(0)
    trainer = Trainer(_baseline(), tmp_path, outside_id=0, verbose=False)
    values = [math.nan, 0.2, 0.5, 0.5, 0.4, 0.9]
    weights_at = _script_validation(trainer, values, monitor="val_accuracy_without_o")
    history = trainer.fit(_toy_data(), epochs=6, learning_rate=0.05, validation_data=_toy_data(seed=1),
                          early_stopping_patience=2, early_stopping_monitor="val_accuracy_without_o")
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5]
    assert _best_dirs(tmp_path) == ["best-3"]
    reloaded = _baseline()
    load_weights(reloaded, tmp_path)
    _assert_weights_equal(reloaded.get_weights(), weights_at[3])


def test_early_stopping_restores_the_best_epoch_also_when_every_epoch_ran(tmp_path, capsys):
    set_seed(0)
    trainer = Trainer(_baseline(), tmp_path, outside_id=0, verbose=True)
    weights_at = _script_validation(trainer, [0.5, 0.4, 0.45])
    history = trainer.fit(_toy_data(), epochs=3, learning_rate=0.05, validation_data=_toy_data(seed=1),
                          early_stopping_patience=5)
    assert [row["epoch"] for row in history] == [1, 2, 3]
    reloaded = _baseline()
    load_weights(reloaded, tmp_path)
    _assert_weights_equal(reloaded.get_weights(), weights_at[2])
    assert "Early stopping: trained 3 epochs; final weights from epoch 2 (val_loss 0.4000)\n" in capsys.readouterr().out


class _Killed(Exception):
    pass


def test_early_stopping_resumes_exactly_after_a_kill_between_the_best_weights_and_the_checkpoint(tmp_path,
                                                                                                  monkeypatch):
    """Killed after epoch 5's best weights were written but before its checkpoint: the resumed run starts
    from epoch 4, whose best (epoch 3) is still on disk, redoes epoch 5, and ends as an uninterrupted run."""
    val_loss = [0.9, 0.7, 0.5, 0.6, 0.4, 0.45, 0.5, 0.6, 0.1]  # best at 5; epochs 6-8 worse: stop after 8
    set_seed(0)
    whole = Trainer(_baseline(), tmp_path / "whole", outside_id=0, verbose=False)
    _script_validation(whole, val_loss)
    expected = whole.fit(_toy_data(), epochs=9, learning_rate=0.05, validation_data=_toy_data(seed=1),
                         early_stopping_patience=3)
    assert [row["epoch"] for row in expected] == list(range(1, 9))

    save = tf.train.CheckpointManager.save

    def save_or_die(manager, checkpoint_number=None, **kwargs):
        if checkpoint_number == 5:
            raise _Killed()
        return save(manager, checkpoint_number=checkpoint_number, **kwargs)

    set_seed(0)
    cut = Trainer(_baseline(), tmp_path / "cut", outside_id=0, verbose=False)
    _script_validation(cut, val_loss)
    monkeypatch.setattr(tf.train.CheckpointManager, "save", save_or_die)
    with pytest.raises(_Killed):
        cut.fit(_toy_data(), epochs=9, learning_rate=0.05, validation_data=_toy_data(seed=1),
                early_stopping_patience=3)
    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
    assert _best_dirs(tmp_path / "cut") == ["best-3", "best-5"]
    assert tf.train.latest_checkpoint(str(tmp_path / "cut" / "checkpoints")).endswith("ckpt-4")

    resumed = Trainer(_baseline(), tmp_path / "cut", outside_id=0, verbose=False)
    _script_validation(resumed, val_loss)
    history = resumed.fit(_toy_data(), epochs=9, learning_rate=0.05, validation_data=_toy_data(seed=1),
                          resume=True, early_stopping_patience=3)
    drop_time = lambda rows: [{k: v for k, v in row.items() if k != "train_seconds"} for row in rows]  # noqa: E731
    assert drop_time(history) == drop_time(expected)
    assert _best_dirs(tmp_path / "cut") == ["best-5"]
    resumed_weights = _checkpoint_tensors(tmp_path / "cut" / "weights" / "model")
    whole_weights = _checkpoint_tensors(tmp_path / "whole" / "weights" / "model")
    assert resumed_weights.keys() == whole_weights.keys()
    for name, value in whole_weights.items():
        np.testing.assert_array_equal(resumed_weights[name], value, err_msg=name)

    again = Trainer(_baseline(), tmp_path / "cut", outside_id=0, verbose=False)  # a finished run: nothing to train
    _script_validation(again, val_loss)
    assert len(again.fit(_toy_data(), epochs=9, learning_rate=0.05, validation_data=_toy_data(seed=1),
                         resume=True, early_stopping_patience=3)) == 8
    assert _checkpoint_tensors(tmp_path / "cut" / "weights" / "model").keys() == whole_weights.keys()
    for name, value in _checkpoint_tensors(tmp_path / "cut" / "weights" / "model").items():
        np.testing.assert_array_equal(value, whole_weights[name], err_msg=name)


def test_early_stopping_needs_validation_data_and_the_best_epochs_weights(tmp_path):
    trainer = Trainer(_baseline(), tmp_path, outside_id=0, verbose=False)
    with pytest.raises(ValueError, match="early_stopping_patience=2 needs validation_data: early stopping monitors "
                                         "val_loss on it"):
        trainer.fit(_toy_data(), epochs=2, learning_rate=0.05, early_stopping_patience=2)
    _script_validation(trainer, [0.5, 0.4])
    trainer.fit(_toy_data(), epochs=2, learning_rate=0.05, validation_data=_toy_data(seed=1))  # no early stopping
    resumed = Trainer(_baseline(), tmp_path, outside_id=0, verbose=False)
    with pytest.raises(NerError, match=r"best-2: not found; expected the weights of epoch 2, the best of the run's "
                                       r"history\.csv"):
        resumed.fit(_toy_data(), epochs=4, learning_rate=0.05, validation_data=_toy_data(seed=1), resume=True,
                    early_stopping_patience=2)
