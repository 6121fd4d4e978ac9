"""Temperature scaling (Guo et al. 2017): one scalar T > 0 that divides the logits, fitted on held-out words.

The logits are the log of the word probabilities: `log p` [n, C]. For a softmax model softmax(log p / T)
equals softmax(z / T) of its logits z exactly (log p and z differ by a per-word constant); for a CRF
model `log p` is the log of its per-word marginals (forward-backward), so T rescales those marginals as
if they were a softmax, not the CRF's emission and transition scores. One function then serves every
model, and saved probabilities are enough. T never changes a word's argmax. NumPy and SciPy only.
"""
import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

# log T is searched in [-LOG_T_BOUND, LOG_T_BOUND]: T from 0.0067 to 148.
LOG_T_BOUND = 5.0
_PROBABILITY_FLOOR = 1e-12  # log of a probability that underflowed to 0 stays finite


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """float64 [n, C] log p, with p floored at 1e-12, from probabilities [n, C]."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] == 0:
        raise ValueError(f"probabilities must be a non-empty [n, C] array, got shape {probabilities.shape}")
    return np.log(np.maximum(probabilities, _PROBABILITY_FLOOR))


def scaled_probabilities(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): float64 [n, C] from probabilities [n, C] and T > 0."""
    if not temperature > 0.0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return np.exp(log_softmax(log_probabilities(probabilities) / temperature, axis=-1))


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean −log softmax(logits / T)[label] over the n words: logits [n, C], labels int [n]."""
    log_p = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=-1)
    return float(-np.mean(log_p[np.arange(len(labels)), labels]))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the mean negative log-likelihood of the labels under softmax(log p / T).

    The NLL is convex in 1 / T, so its one minimum is found by a bounded scalar search over log T
    (Brent's method, to 1e-8 in log T).

    Args:
        probabilities: [n, C] word probabilities with dropout off (a CRF model's marginals), normally of
            the validation part.
        labels: int [n] gold label ids in [0, C).

    Raises:
        ValueError: shapes that do not match, or labels outside [0, C).
    """
    logits = log_probabilities(probabilities)
    labels = np.asarray(labels)
    if labels.shape != logits.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape {logits.shape[:1]}, got {labels.dtype} {labels.shape}")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got [{labels.min()}, {labels.max()}]")
    result = minimize_scalar(lambda log_t: negative_log_likelihood(logits, labels, np.exp(log_t)),
                             bounds=(-LOG_T_BOUND, LOG_T_BOUND), method="bounded", options={"xatol": 1e-8})
    return float(np.exp(result.x))
