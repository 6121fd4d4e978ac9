"""Temperature scaling: the fit recovers the temperature data were drawn with."""
import numpy as np
import pytest
from scipy.special import softmax

from ner.uncertainty.temperature import fit_temperature, negative_log_likelihood, scaled_probabilities


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_fit_recovers_the_temperature_of_the_data(true_temperature):
    """Labels drawn from softmax(z / T0): the model's probabilities softmax(z) are miscalibrated by T0, and
    the maximum-likelihood T is T0 to 1 % (sampling noise, n = 200,000 words)."""
    rng = np.random.default_rng(0)
    logits = 3.0 * rng.standard_normal((200_000, 5))
    true = softmax(logits / true_temperature, axis=-1)
    labels = (rng.random((len(true), 1)) > np.cumsum(true, axis=-1)).sum(axis=-1)  # a draw from each row
    fitted = fit_temperature(softmax(logits, axis=-1), labels)
    assert fitted == pytest.approx(true_temperature, rel=1e-2)


def test_scaled_probabilities_divide_the_log_probabilities():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    expected = probabilities ** 0.5 / (probabilities ** 0.5).sum(axis=1, keepdims=True)  # T = 2
    np.testing.assert_allclose(scaled_probabilities(probabilities, 2.0), expected, rtol=1e-12)
    np.testing.assert_allclose(scaled_probabilities(probabilities, 1.0), probabilities, rtol=1e-12)


def test_fitted_temperature_minimises_the_likelihood():
    """On two words the NLL at the fitted T is below that at T ± 1 %; the hand value at T = 1 is
    −(log 0.7 + log 0.25) / 2."""
    probabilities = np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    labels = np.array([0, 1])
    logits = np.log(probabilities)
    assert negative_log_likelihood(logits, labels, 1.0) == pytest.approx(-(np.log(0.7) + np.log(0.25)) / 2)
    fitted = fit_temperature(probabilities, labels)
    best = negative_log_likelihood(logits, labels, fitted)
    assert best < negative_log_likelihood(logits, labels, 1.01 * fitted)
    assert best < negative_log_likelihood(logits, labels, 0.99 * fitted)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="labels must lie in"):
        fit_temperature(np.full((2, 3), 1 / 3), np.array([0, 3]))
    with pytest.raises(ValueError, match="integers of shape"):
        fit_temperature(np.full((2, 3), 1 / 3), np.array([0]))
    with pytest.raises(ValueError, match="temperature must be positive"):
        scaled_probabilities(np.full((2, 3), 1 / 3), 0.0)
