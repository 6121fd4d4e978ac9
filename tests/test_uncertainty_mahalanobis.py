"""Mahalanobis distance score against a direct NumPy computation and a hand-computed case."""
import numpy as np
import pytest

from ner.uncertainty.mahalanobis import MahalanobisScorer


def test_scores_match_a_direct_numpy_computation():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=200)
    features = rng.standard_normal((200, 4)) + 2.0 * labels[:, None]
    queries = rng.standard_normal((7, 4))
    scorer = MahalanobisScorer.fit(features, labels)

    means = np.stack([features[labels == c].mean(axis=0) for c in range(3)])
    covariance = sum(np.outer(x - means[y], x - means[y]) for x, y in zip(features, labels)) / len(labels)
    inverse = np.linalg.inv(covariance)
    expected = [min(np.sqrt((q - m) @ inverse @ (q - m)) for m in means) for q in queries]
    np.testing.assert_allclose(scorer.means, means, rtol=1e-12)
    np.testing.assert_allclose(scorer.score(queries), expected, rtol=1e-9)


def test_hand_computed_distances():
    """Class 0 at (±1, 0), class 2 at (5 ± 1, 0): means (0, 0) and (5, 0), covariance diag(1, 0), so the
    second coordinate is ignored (pseudo-inverse) and distances are |x − 0| and |x − 5|; label 1 is absent."""
    features = np.array([[-1.0, 0.0], [1.0, 0.0], [4.0, 0.0], [6.0, 0.0]])
    scorer = MahalanobisScorer.fit(features, np.array([0, 0, 2, 2]))
    assert scorer.classes.tolist() == [0, 2]
    np.testing.assert_allclose(scorer.distances(np.array([[2.0, 3.0], [10.0, 0.0]])), [[2.0, 3.0], [10.0, 5.0]])
    np.testing.assert_allclose(scorer.score(np.array([[2.0, 3.0], [10.0, 0.0]])), [2.0, 5.0])


def test_bad_input_is_rejected():
    scorer = MahalanobisScorer.fit(np.eye(3), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=r"non-empty \[n, 3\] array, got shape \(2, 2\)"):
        scorer.score(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="labels must be integers of shape"):
        MahalanobisScorer.fit(np.eye(3), np.array([0, 1]))
