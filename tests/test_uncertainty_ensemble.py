"""Deep ensemble: the mean, variance and expected entropy of two tiny models' word probabilities."""
import numpy as np
import pytest

import ner  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
import tensorflow as tf

from ner.config import EncoderConfig, HeadConfig, ModelConfig
from ner.models import build_model
from ner.uncertainty.ensemble import ensemble_predictions
from ner.utils import set_seed

VOCAB, LABELS = 20, 3


def _member(seed):
    set_seed(seed)
    config = ModelConfig(type="ner_baseline", embedding_dim=8, head=HeadConfig(hidden_units=(16,), latent_dim=4))
    return build_model(config, EncoderConfig(), num_labels=LABELS, vocab_size=VOCAB)


def _dataset():
    rng = np.random.default_rng(0)
    ids = rng.integers(5, VOCAB, size=(3, 5)).astype(np.int32)
    features = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
    labels = np.where(np.arange(5) % 2, -1, 1)[None].repeat(3, 0).astype(np.int32)  # labels at 0, 2, 4
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(2), features


def test_ensemble_averages_the_members_probabilities():
    members = [_member(1), _member(2)]
    dataset, features = _dataset()
    first, statistics = ensemble_predictions(members, dataset)
    # Each member's probabilities at the labelled positions, rows in order: [2, 9, C].
    p = np.stack([model(features, training=False)[1].numpy()[:, ::2].reshape(9, LABELS) for model in members])
    entropy = -(p * np.log(p)).sum(axis=-1)
    np.testing.assert_allclose(first.probabilities, p[0], rtol=1e-6)
    np.testing.assert_allclose(statistics.mean, (p[0] + p[1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(statistics.variance, ((p[0] - p[1]) / 2) ** 2, atol=1e-7)
    np.testing.assert_allclose(statistics.expected_entropy, (entropy[0] + entropy[1]) / 2, rtol=1e-5)
    assert statistics.num_samples == 2
    assert not np.allclose(p[0], p[1])  # the seeds gave different members


def test_an_empty_ensemble_is_rejected():
    with pytest.raises(ValueError, match="at least one member"):
        ensemble_predictions([], _dataset()[0])
