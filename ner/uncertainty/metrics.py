"""Uncertainty scores and what they are good for: calibration, error detection, out-of-domain detection.

Every function returns numbers; figures are drawn by `ner.uncertainty_reporting`. NumPy and seqeval only,
so saved predictions are scored without TensorFlow.

Conventions:
- A *score* is an uncertainty: higher means more doubtful. Entropies use the natural log, and
  0 · log 0 = 0, so a one-hot distribution has entropy 0.
- Token scores from T probability samples p_1..p_T [C] with mean p̄ (`summarize_samples`, `token_scores`):
    smp                 1 − max_c p̄_c (sampled max probability)
    entropy             H(p̄) = −Σ_c p̄_c log p̄_c (predictive entropy: total uncertainty)
    expected_entropy    E_t[H(p_t)] (aleatoric part)
    mutual_information  H(p̄) − E_t[H(p_t)] (epistemic part: disagreement between the samples)
  A single deterministic pass is the case T = 1: expected entropy = entropy, mutual information = 0.
- ROC curves and AUROC treat *positives* as the events to detect (misclassified tokens,
  out-of-domain sentences) and a higher score as more likely positive. AUROC is rank-based with tied
  scores given their mean rank (midranks), so all-equal scores give 0.5. With no positives or no
  negatives AUROC is undefined and returned as NaN (a warning is not raised: a perfect model on a
  split is a legitimate input).
"""
import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
from seqeval.scheme import IOB2, Entities

SCORE_NAMES = ("smp", "entropy", "expected_entropy", "mutual_information")
SENTENCE_REDUCTIONS = ("max", "mean")
ECE_BINS = 15
# Rejected fractions 0, 1, ..., 99 % of the accuracy-rejection curve.
REJECTION_RATES = np.arange(100) / 100.0


@dataclasses.dataclass(frozen=True, eq=False)
class MCStatistics:
    """What the uncertainty scores need from T probability samples, per token.

    Attributes:
        mean: [..., C] p̄, the mean of the samples (same dtype as the samples).
        variance: [..., C] the variance of each class probability over the samples (same dtype).
        expected_entropy: float64 [...], E_t[H(p_t)].
        num_samples: T.
    """

    mean: np.ndarray
    variance: np.ndarray
    expected_entropy: np.ndarray
    num_samples: int


@dataclasses.dataclass(frozen=True, eq=False)
class TokenScores:
    """The four token uncertainty scores of the module docstring; each a float64 array [...]."""

    smp: np.ndarray
    entropy: np.ndarray
    expected_entropy: np.ndarray
    mutual_information: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        """Score name (`SCORE_NAMES` order) -> array."""
        return {name: getattr(self, name) for name in SCORE_NAMES}


@dataclasses.dataclass(frozen=True, eq=False)
class Calibration:
    """Expected calibration error and the per-bin data of a reliability diagram.

    Bin b holds the tokens whose confidence lies in (edges[b], edges[b + 1]]; bin 0 also holds
    confidence 0.

    Attributes:
        ece: Σ_b (n_b / N) |accuracy_b − confidence_b| over non-empty bins.
        bin_edges: float64 [M + 1], equal-width edges from 0 to 1.
        counts: int64 [M], tokens per bin.
        accuracy: float64 [M], fraction correct per bin; NaN for an empty bin.
        confidence: float64 [M], mean confidence per bin; NaN for an empty bin.
    """

    ece: float
    bin_edges: np.ndarray
    counts: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class RocCurve:
    """ROC curve of a score for detecting positives, one point per distinct score.

    Point i classifies as positive every item with score >= thresholds[i]; thresholds[0] is +inf, so
    the curve starts at (0, 0) and ends at (1, 1). `fpr` is NaN throughout without negatives and `tpr`
    without positives.

    Attributes:
        fpr, tpr, thresholds: float64 [K + 1] for K distinct scores; thresholds decrease.
        auroc: area under the curve (`auroc`); NaN when undefined.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auroc: float


@dataclasses.dataclass(frozen=True, eq=False)
class AccuracyRejection:
    """Accuracy on the tokens kept after setting aside the most uncertain fraction.

    Attributes:
        rejection_rates: float64 [K] in [0, 1), fraction of tokens set aside.
        accuracy: float64 [K], accuracy of the kept tokens.
    """

    rejection_rates: np.ndarray
    accuracy: np.ndarray


@dataclasses.dataclass(frozen=True)
class SpanUncertainty:
    """A predicted entity span and the uncertainty of its words.

    Attributes:
        sentence: index of the sentence in the input.
        start, end: word positions, end exclusive.
        type: entity type, e.g. "geo".
        max_score: the largest word score: the span is as doubtful as its most doubtful word (the
            primary aggregate: one confused word is enough to get the span wrong under strict scoring).
        mean_score: the mean word score.
    """

    sentence: int
    start: int
    end: int
    type: str
    max_score: float
    mean_score: float


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """−Σ_c p_c log p_c over the last axis, with 0 · log 0 = 0: [..., C] -> float64 [...]."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim < 1:
        raise ValueError(f"probabilities must have a class axis [..., C], got shape {p.shape}")
    return -np.sum(p * np.log(np.where(p > 0.0, p, 1.0)), axis=-1)


def summarize_samples(samples: np.ndarray) -> MCStatistics:
    """Mean, variance and expected entropy of T probability samples.

    Args:
        samples: [T, ..., C] probabilities, T >= 1 (e.g. [T, B, L, C] from `MCDropoutPredictor`).
    """
    samples = np.asarray(samples)
    if samples.ndim < 2 or samples.shape[0] < 1:
        raise ValueError(f"samples must be [T, ..., C] with T >= 1, got shape {samples.shape}")
    as64 = samples.astype(np.float64)
    return MCStatistics(
        mean=as64.mean(axis=0).astype(samples.dtype),
        variance=as64.var(axis=0).astype(samples.dtype),
        expected_entropy=entropy(as64).mean(axis=0),
        num_samples=int(samples.shape[0]),
    )


def token_scores(mean: np.ndarray, expected_entropy: np.ndarray | None = None) -> TokenScores:
    """The four token scores from mean probabilities.

    Args:
        mean: [..., C] p̄ (or a single pass's probabilities).
        expected_entropy: [...] E_t[H(p_t)] (`MCStatistics.expected_entropy`); None for a single
            deterministic pass, which is T = 1: expected entropy = entropy, mutual information = 0.

    Mutual information is clipped at 0: it is never negative in exact arithmetic (Jensen), and the
    clip only removes rounding error.
    """
    mean = np.asarray(mean, dtype=np.float64)
    predictive = entropy(mean)
    expected = predictive if expected_entropy is None else np.asarray(expected_entropy, dtype=np.float64)
    if expected.shape != predictive.shape:
        raise ValueError(f"expected_entropy has shape {expected.shape}, expected {predictive.shape}")
    return TokenScores(
        smp=1.0 - mean.max(axis=-1),
        entropy=predictive,
        expected_entropy=expected,
        mutual_information=np.maximum(predictive - expected, 0.0),
    )


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, num_bins: int = ECE_BINS) -> Calibration:
    """ECE over equal-width confidence bins, with the per-bin data of a reliability diagram.

    Args:
        confidence: float [n] in [0, 1], normally max_c p̄_c.
        correct: bool [n], whether the prediction (argmax p̄) is right.
        num_bins: M, the number of bins (15 by default).
    """
    confidence, correct = _check_pair(confidence, correct, "confidence", "correct")
    if confidence.min() < 0.0 or confidence.max() > 1.0:
        raise ValueError(f"confidence must lie in [0, 1], got [{confidence.min()}, {confidence.max()}]")
    if num_bins < 1:
        raise ValueError(f"num_bins must be at least 1, got {num_bins}")
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    bins = np.digitize(confidence, edges[1:-1], right=True)  # [n] in [0, M): (edges[b], edges[b + 1]]
    counts = np.bincount(bins, minlength=num_bins)
    filled = counts > 0
    accuracy = np.full(num_bins, np.nan)
    mean_confidence = np.full(num_bins, np.nan)
    accuracy[filled] = np.bincount(bins, weights=correct, minlength=num_bins)[filled] / counts[filled]
    mean_confidence[filled] = np.bincount(bins, weights=confidence, minlength=num_bins)[filled] / counts[filled]
    gaps = np.abs(accuracy[filled] - mean_confidence[filled])
    return Calibration(
        ece=float(np.sum(counts[filled] / confidence.size * gaps)),
        bin_edges=edges,
        counts=counts,
        accuracy=accuracy,
        confidence=mean_confidence,
    )


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random negative.

    Computed from ranks (Mann-Whitney U): (R₊ − n₊(n₊ + 1)/2) / (n₊ n₋), where R₊ is the sum of the
    positives' ranks and tied scores share their mean rank, so a tie counts one half.

    Args:
        scores: float [n], higher = more likely positive.
        positives: bool [n].

    Returns:
        AUROC in [0, 1]; NaN when there are no positives or no negatives.
    """
    scores, positives = _check_pair(scores, positives, "scores", "positives")
    num_positive = int(positives.sum())
    num_negative = positives.size - num_positive
    if num_positive == 0 or num_negative == 0:
        return float("nan")
    rank_sum = _midranks(scores)[positives].sum()
    return float((rank_sum - num_positive * (num_positive + 1) / 2.0) / (num_positive * num_negative))


def roc_curve(scores: np.ndarray, positives: np.ndarray) -> RocCurve:
    """The ROC curve of `scores` [n] for detecting `positives` (bool [n]), and its AUROC."""
    scores, positives = _check_pair(scores, positives, "scores", "positives")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_positives = scores[order], positives[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), scores.size - 1]  # [K]
    true_positives = np.cumsum(sorted_positives)[last_of_tie]
    false_positives = last_of_tie + 1 - true_positives
    num_positive = int(positives.sum())
    num_negative = positives.size - num_positive
    return RocCurve(
        fpr=_rate(np.r_[0, false_positives], num_negative),
        tpr=_rate(np.r_[0, true_positives], num_positive),
        thresholds=np.r_[np.inf, sorted_scores[last_of_tie]],
        auroc=auroc(scores, positives),
    )


def error_detection(scores: Mapping[str, np.ndarray], correct: np.ndarray) -> dict[str, RocCurve]:
    """ROC curve and AUROC of each score for finding misclassified tokens (positive = wrong).

    Args:
        scores: name -> float [n], e.g. `TokenScores.as_dict()` over the labelled tokens.
        correct: bool [n].
    """
    wrong = ~_as_bool(np.asarray(correct), "correct")
    return {name: roc_curve(values, wrong) for name, values in scores.items()}


def accuracy_rejection_curve(
    scores: np.ndarray, correct: np.ndarray, rejection_rates: np.ndarray = REJECTION_RATES
) -> AccuracyRejection:
    """Accuracy of the kept tokens when the most uncertain fraction x is set aside, for each x.

    floor(x · n) tokens are set aside, so at least one is kept. Where the cut falls inside a group of
    tied scores, the kept part of the group is credited with the group's accuracy (the expectation over
    random tie-breaking), so all-equal scores give a flat curve at the overall accuracy.

    Args:
        scores: float [n], higher = more uncertain.
        correct: bool [n].
        rejection_rates: float [K] in [0, 1); 0, 0.01, ..., 0.99 by default.
    """
    scores, correct = _check_pair(scores, correct, "scores", "correct")
    rates = np.asarray(rejection_rates, dtype=np.float64)
    if rates.ndim != 1 or rates.size == 0 or rates.min() < 0.0 or rates.max() >= 1.0:
        raise ValueError(f"rejection_rates must be a non-empty 1-D array in [0, 1), got {rates}")
    n = scores.size
    order = np.argsort(scores, kind="stable")  # most certain first
    sorted_scores = scores[order]
    cumulative = np.r_[0.0, np.cumsum(correct[order])]  # [n + 1]: correct among the first i
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]  # first position of each tie group
    ends = np.r_[starts[1:], n]
    kept = n - np.floor(np.round(rates * n, 9)).astype(np.int64)  # [K] in [1, n]
    group = np.searchsorted(starts, kept - 1, side="right") - 1  # the tie group of the last kept token
    group_start, group_end = starts[group], ends[group]
    group_accuracy = (cumulative[group_end] - cumulative[group_start]) / (group_end - group_start)
    kept_correct = cumulative[group_start] + (kept - group_start) * group_accuracy
    return AccuracyRejection(rejection_rates=rates, accuracy=kept_correct / kept)


def span_uncertainties(
    pred_tags: Sequence[Sequence[str]], word_scores: Sequence[np.ndarray]
) -> list[SpanUncertainty]:
    """The max and mean word score of every predicted entity span.

    Spans are read as the evaluator scores them (seqeval strict IOB2: an entity starts with `B-x`, and a
    stray `I-x` starts none), so they are the spans counted in entity F1.

    Args:
        pred_tags: one list of predicted IOB2 tags [len_i] per sentence (IO predictions are turned into
            IOB2 first, e.g. `LabelMap.to_bio`).
        word_scores: one float array [len_i] per sentence, e.g. a `TokenScores` field at each word's
            first piece.

    Returns:
        The spans in sentence order, then left to right.
    """
    if len(pred_tags) != len(word_scores):
        raise ValueError(f"{len(pred_tags)} tagged sentences but {len(word_scores)} score arrays")
    scores = [np.asarray(values, dtype=np.float64) for values in word_scores]
    for index, (tags, values) in enumerate(zip(pred_tags, scores)):
        if values.shape != (len(tags),):
            raise ValueError(f"sentence {index}: {len(tags)} tags but scores of shape {values.shape}")
    spans = []
    for sentence_entities in Entities([list(tags) for tags in pred_tags], IOB2, suffix=False).entities:
        for entity in sentence_entities:
            values = scores[entity.sent_id][entity.start:entity.end]
            spans.append(SpanUncertainty(sentence=entity.sent_id, start=entity.start, end=entity.end,
                                         type=entity.tag, max_score=float(values.max()),
                                         mean_score=float(values.mean())))
    return spans


def sentence_scores(token_scores_per_sentence: Sequence[np.ndarray], reduction: str = "max") -> np.ndarray:
    """One score per sentence: the max or the mean of its token scores.

    Args:
        token_scores_per_sentence: one float array [len_i] per sentence (labelled tokens only), each
            non-empty.
        reduction: "max" (a sentence is as unusual as its most doubtful token) or "mean".

    Returns:
        float64 [S].
    """
    if reduction not in SENTENCE_REDUCTIONS:
        raise ValueError(f"reduction must be one of {SENTENCE_REDUCTIONS}, got {reduction!r}")
    reduce = np.max if reduction == "max" else np.mean
    out = np.empty(len(token_scores_per_sentence), dtype=np.float64)
    for index, values in enumerate(token_scores_per_sentence):
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"sentence {index}: expected a non-empty 1-D score array, got shape {values.shape}")
        out[index] = reduce(values)
    return out


def ood_detection(in_domain: np.ndarray, out_of_domain: np.ndarray) -> RocCurve:
    """ROC curve and AUROC for telling out-of-domain sentences (positive) from in-domain ones.

    Args:
        in_domain: float [S_in] sentence scores (`sentence_scores`) of the in-domain test set.
        out_of_domain: float [S_out] sentence scores of the out-of-domain set.
    """
    in_domain = np.asarray(in_domain, dtype=np.float64).ravel()
    out_of_domain = np.asarray(out_of_domain, dtype=np.float64).ravel()
    scores = np.concatenate([in_domain, out_of_domain])
    positives = np.r_[np.zeros(in_domain.size, dtype=bool), np.ones(out_of_domain.size, dtype=bool)]
    return roc_curve(scores, positives)


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values` [n] in ascending order; tied values share the mean of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # rank of the last member of each group of equal values
    return ((last - counts + 1 + last) / 2.0)[inverse.ravel()]


def _rate(counts: np.ndarray, total: int) -> np.ndarray:
    """counts / total as float64; all NaN when total is 0."""
    counts = counts.astype(np.float64)
    return counts / total if total else np.full(counts.shape, np.nan)


def _check_pair(values: np.ndarray, flags: np.ndarray, values_name: str, flags_name: str):
    """Returns (float64 [n], bool [n]); raises ValueError unless both are 1-D, equally long, non-empty
    and the values are finite."""
    values = np.asarray(values, dtype=np.float64)
    flags = _as_bool(np.asarray(flags), flags_name)
    if values.ndim != 1 or flags.shape != values.shape:
        raise ValueError(f"{values_name} and {flags_name} must be 1-D of equal length, "
                         f"got shapes {values.shape} and {flags.shape}")
    if values.size == 0:
        raise ValueError(f"{values_name} is empty")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{values_name} holds {int(np.sum(~np.isfinite(values)))} non-finite values")
    return values, flags


def _as_bool(flags: np.ndarray, name: str) -> np.ndarray:
    """`flags` as a bool array; integers must be 0 or 1."""
    if flags.dtype == bool:
        return flags
    if not np.issubdtype(flags.dtype, np.integer) or (flags.size and not np.isin(flags, (0, 1)).all()):
        raise ValueError(f"{name} must be boolean (or 0/1 integers), got dtype {flags.dtype}")
    return flags.astype(bool)
