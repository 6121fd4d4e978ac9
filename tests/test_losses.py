"""KL losses and the logit-adjusted cross-entropy against NumPy or hand computations on small batches."""
import numpy as np
import pytest
import tensorflow as tf

import ner  # noqa: F401
from ner.losses import (ConfidenceKL, DataDistributionKL, WeightedSum, confidence_target, label_prior, logit_adjustment,
                        masked_cross_entropy)

RNG = np.random.default_rng(7)
PROBS = RNG.dirichlet(np.ones(3), size=(2, 5)).astype(np.float64)
LABELS = np.array([[-1, 0, 2, -1, 1], [-1, 1, -1, -1, -1]], dtype=np.int32)  # 4 word positions
WORDS = LABELS != -1


def numpy_data_distribution_kl(probs, words, prior):
    q = probs[words].mean(axis=0)
    return float(np.sum(prior * np.log(prior / q)))


def numpy_confidence_kl(probs, words):
    q = probs[words]                      # [n, C]
    f = q.sum(axis=0)                     # [C]
    p = q ** 2 / f
    p = p / p.sum(axis=1, keepdims=True)
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


def test_data_distribution_kl_matches_numpy():
    prior = np.array([0.7, 0.2, 0.1])
    got = float(DataDistributionKL(prior)(LABELS, PROBS))
    assert got == pytest.approx(numpy_data_distribution_kl(PROBS, WORDS, prior), rel=1e-6)


def test_data_distribution_kl_is_zero_when_mean_equals_prior():
    probs = np.array([[[0.5, 0.5, 0.0], [0.9, 0.1, 0.0]], [[0.6, 0.4, 0.0], [0.0, 0.0, 1.0]]])
    labels = np.array([[0, 0], [0, -1]], dtype=np.int32)
    prior = probs[labels != -1].mean(axis=0)          # [2/3, 1/3, 0]
    assert float(DataDistributionKL(prior)(labels, probs)) == pytest.approx(0.0, abs=1e-6)


def test_confidence_kl_matches_numpy_and_target_is_dec():
    got = float(ConfidenceKL()(LABELS, PROBS))
    assert got == pytest.approx(numpy_confidence_kl(PROBS, WORDS), rel=1e-5)
    # Hand-made: two words, q = [[.5,.5],[1,0]] → f = [1.5, .5]; p ∝ q²/f → word 1: [1/6, 1/2] → [.25, .75].
    q = np.array([[[0.5, 0.5], [1.0, 0.0]]])
    target = confidence_target(tf.constant(q), tf.ones([1, 2], tf.float64)).numpy()
    np.testing.assert_allclose(target[0, 0], [0.25, 0.75], atol=1e-6)
    np.testing.assert_allclose(target[0, 1], [1.0, 0.0], atol=1e-6)


def test_confidence_kl_is_zero_for_one_hot_predictions():
    probs = np.eye(3)[[[0, 1, 2]]]
    assert float(ConfidenceKL()(np.zeros((1, 3), np.int32), probs)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("loss", [DataDistributionKL([0.5, 0.3, 0.2]), ConfidenceKL()])
def test_masked_positions_change_nothing(loss):
    changed = PROBS.copy()
    changed[~WORDS] = RNG.dirichlet(np.ones(3), size=(~WORDS).sum())
    assert float(loss(LABELS, changed)) == pytest.approx(float(loss(LABELS, PROBS)), rel=1e-9)
    # Label values on word positions are never read: only the mask matters.
    relabelled = np.where(WORDS, 0, -1).astype(np.int32)
    assert float(loss(relabelled, PROBS)) == pytest.approx(float(loss(LABELS, PROBS)), rel=1e-9)


def test_losses_are_finite_with_zeros_and_empty_batches():
    probs = np.array([[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    labels = np.zeros((1, 2), np.int32)
    assert np.isfinite(float(DataDistributionKL([0.5, 0.25, 0.25])(labels, probs)))
    assert np.isfinite(float(ConfidenceKL()(labels, probs)))
    empty = np.full((1, 2), -1, np.int32)
    assert float(DataDistributionKL([0.5, 0.25, 0.25])(empty, probs)) == 0.0
    assert float(ConfidenceKL()(empty, probs)) == 0.0


def test_confidence_target_is_held_constant_in_the_gradient():
    logits = tf.Variable(RNG.normal(size=(1, 4, 3)))
    labels = np.zeros((1, 4), np.int32)
    with tf.GradientTape() as tape:
        q = tf.nn.softmax(logits)
        loss = ConfidenceKL()(labels, q)
    gradient = tape.gradient(loss, logits).numpy()
    # With p fixed, d/dq of mean_i Σ_j p_ij (log p_ij − log q_ij) is −p_ij / (n q_ij); chain through softmax.
    q_np = tf.nn.softmax(logits).numpy()[0]
    f = q_np.sum(0)
    p = q_np ** 2 / f
    p /= p.sum(1, keepdims=True)
    expected = -(p - q_np) / 4  # softmax Jacobian applied to −p/(n q)
    np.testing.assert_allclose(gradient[0], expected, atol=1e-6)


def test_weighted_sum_and_prior():
    both = WeightedSum([DataDistributionKL([0.5, 0.3, 0.2]), ConfidenceKL()], [1.0, 0.5])
    expected = float(DataDistributionKL([0.5, 0.3, 0.2])(LABELS, PROBS)) + 0.5 * float(ConfidenceKL()(LABELS, PROBS))
    assert float(both(LABELS, PROBS)) == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(label_prior(np.array([[0, 0, -1], [2, 0, -1]]), 4), [0.75, 0, 0.25, 0])
    with pytest.raises(ValueError, match="no labelled positions"):
        label_prior(np.full(3, -1), 2)
    with pytest.raises(ValueError, match="summing to 1"):
        DataDistributionKL([0.5, 0.6])


def test_logit_adjustment_is_tau_log_prior_with_a_floor_for_unseen_labels():
    expected = [2 * np.log(0.5), 2 * np.log(0.5), 2 * np.log(1e-7)]
    np.testing.assert_allclose(logit_adjustment([0.5, 0.5, 0.0], 2.0), expected, rtol=1e-6)


def test_logit_adjusted_cross_entropy_by_hand():
    probabilities = np.array([[[0.5, 0.25, 0.25]]], dtype=np.float32)
    labels = np.array([[1]], dtype=np.int32)
    offset = logit_adjustment([0.5, 0.25, 0.25], 1.0)
    # p · prior = (0.25, 0.0625, 0.0625), normalised (2/3, 1/6, 1/6): label 1 costs log 6 (plain: log 4)
    assert float(masked_cross_entropy(labels, probabilities, offset)) == pytest.approx(np.log(6.0), rel=1e-5)
    assert float(masked_cross_entropy(labels, probabilities, np.zeros(3, np.float32))) == pytest.approx(np.log(4.0))
