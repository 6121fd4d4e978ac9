"""Mahalanobis distance score (Lee et al. 2018; Vazhentsev et al., ACL 2022): how far a word's feature
vector lies from the nearest class, under one covariance shared by the classes.

Fitted on the labelled words' features (the head's latent layer, or encoder word vectors): a mean μ_c
per class present there, and the pooled covariance Σ = 1/n Σ_i (x_i − μ_{y_i})(x_i − μ_{y_i})ᵀ. A word's
score is min_c sqrt((x − μ_c)ᵀ Σ⁺ (x − μ_c)), with Σ⁺ the pseudo-inverse (a latent layer after ReLU may
leave Σ singular). A higher score is more doubtful, as for every score of `ner.uncertainty.metrics`.
NumPy only.
"""
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class MahalanobisScorer:
    """Class means and the shared precision matrix of a fitted scorer.

    Attributes:
        classes: int [K], the label ids seen in the fit (a class without words has no mean).
        means: float64 [K, D], the mean feature vector of each of those classes.
        precision: float64 [D, D], the pseudo-inverse of the pooled covariance.
    """

    classes: np.ndarray
    means: np.ndarray
    precision: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray) -> "MahalanobisScorer":
        """Fits the means and shared covariance on features [n, D] with gold label ids int [n]."""
        features = _as_features(features)
        labels = np.asarray(labels)
        if labels.shape != features.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers of shape {features.shape[:1]}, "
                             f"got {labels.dtype} {labels.shape}")
        classes, index = np.unique(labels, return_inverse=True)
        means = np.stack([features[index == k].mean(axis=0) for k in range(classes.size)])  # [K, D]
        centred = features - means[index]  # [n, D]
        covariance = centred.T @ centred / features.shape[0]
        return cls(classes, means, np.linalg.pinv(covariance, hermitian=True))

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each vector to each class mean: float64 [n, K] from features [n, D]."""
        features = _as_features(features, self.means.shape[1])
        # (x − μ)ᵀ P (x − μ) = xᵀPx − 2 xᵀPμ + μᵀPμ: memory [n, K], not [n, K, D].
        projected = features @ self.precision  # [n, D]
        squared = (np.sum(projected * features, axis=1)[:, None] - 2.0 * projected @ self.means.T
                   + np.sum((self.means @ self.precision) * self.means, axis=1)[None])
        return np.sqrt(np.maximum(squared, 0.0))  # rounding may leave a tiny negative

    def score(self, features: np.ndarray) -> np.ndarray:
        """min over classes of the distance: float64 [n] from features [n, D]."""
        return self.distances(features).min(axis=1)


def _as_features(features: np.ndarray, dim: int = 0) -> np.ndarray:
    """features as float64 [n, D], n >= 1 (and D == dim when dim is given); ValueError otherwise."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] == 0 or (dim and features.shape[1] != dim):
        expected = f"[n, {dim}]" if dim else "[n, D]"
        raise ValueError(f"features must be a non-empty {expected} array, got shape {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("features hold non-finite values")
    return features
