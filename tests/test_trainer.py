"""Losses against NumPy, the shared training loop, checkpoints, final weights and resume."""
import numpy as np
import pytest
import tensorflow as tf

import ner  # noqa: F401
from ner.config import HeadConfig, ModelConfig, EncoderConfig
from ner.models import build_model
from ner.trainers.losses import masked_cross_entropy, token_counts
from ner.trainers.trainer import Trainer, load_weights
from ner.utils import set_seed

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
    assert history[-1]["val_accuracy"] > max(0.9, before["accuracy"])
    assert (tmp_path / "history.csv").read_text().startswith("epoch,loss,accuracy,accuracy_without_o,val_loss")
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
