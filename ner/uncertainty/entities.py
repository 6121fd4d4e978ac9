"""Entity-level confidence and what it is good for: span marginals of a CRF, entity calibration and
selective prediction. NumPy, SciPy and seqeval only.

An entity is `(row, start, end, type)`, word positions with `end` exclusive, as seqeval reads IOB2 tags
strictly (the spans counted in entity F1). A predicted entity is *correct* when its exact span and type
are a gold entity.

Span marginal of a linear-chain CRF. With emission scores s [W, C] and parameters (transitions [C, C],
start [C], end [C]) a label path y has p(y) = exp(score(y)) / Z (`ner.layers.crf`). The probability
that the path, read as the evaluator reads it, holds the span (a, b, t) is a sum over the paths whose
labels at a few positions lie in given sets (a *pattern*: a bool mask [W, C]):
    io          y_a..y_{b−1} = t, y_{a−1} ≠ t, y_b ≠ t
    bio, iob1   (y_a = I-t and type(y_{a−1}) ≠ t, or y_a = B-t), y_{a+1}..y_{b−1} = I-t, y_b ≠ I-t
                (`to_bio` reads a stray I-t as a span start in both schemes)
    biluo       U-t for one word; else B-t, I-t.., L-t
and each pattern's sum is Z_masked / Z, the forward algorithm run with the masked labels at −inf. The
io, bio and iob1 patterns are exact for any parameters; the biluo ones assume the CRF's constrained
parameters (`CRF.parameters(constrain=True)`, as its decoding uses), under which a path the scheme
forbids has probability 0 (exp(−10⁴)).
"""
import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy.special import logsumexp
from seqeval.scheme import IOB2, Entities

from ner.uncertainty.metrics import accuracy_rejection_curve

# Fractions of the predicted entities set aside as least confident in selective prediction.
SELECTIVE_RATES = (0.1, 0.2, 0.5)

EntitySpan = tuple  # (row, start, end, type)


@dataclasses.dataclass(frozen=True, eq=False)
class SelectivePrediction:
    """Entity precision, recall and F1 on the predicted entities kept after setting aside the least
    confident fraction; each float64 [K], one value per rate.

    Recall and F1 are against all gold entities (set-aside entities count as not predicted).
    """

    rejection_rates: np.ndarray
    kept: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray


def entity_spans(tags: Sequence[Sequence[str]]) -> list[EntitySpan]:
    """The `(row, start, end, type)` of every entity in IOB2 tags (one list [len_i] per row), in row order
    and left to right."""
    return [(entity.sent_id, entity.start, entity.end, entity.tag)
            for row in Entities([list(row_tags) for row_tags in tags], IOB2, suffix=False).entities
            for entity in row]


def entity_correctness(predicted: Sequence[EntitySpan], gold_tags: Sequence[Sequence[str]]) -> np.ndarray:
    """bool [m]: whether each predicted entity's exact span and type is a gold entity of `gold_tags`."""
    gold = set(entity_spans(gold_tags))
    return np.array([span in gold for span in predicted], dtype=bool)


def crf_log_partition(scores: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    """log Z of a linear-chain CRF over one row: scores [W, C] (W >= 1; −inf removes a label at a
    position), transitions [C, C] (label j after label i at [i, j]), start [C], end [C]."""
    alpha = start + scores[0]  # [C]
    for word_scores in scores[1:]:
        alpha = logsumexp(alpha[:, None] + transitions, axis=0) + word_scores
    return float(logsumexp(alpha + end))


def span_patterns(span: tuple, length: int, labels: Sequence[str], scheme: str) -> list[np.ndarray]:
    """The disjoint label patterns (bool [W, C], module docstring) of the span `(start, end, type)` in a row
    of `length` words, for `labels` (a `LabelMap`'s, in id order) of `scheme`."""
    start, end, kind = span
    if not 0 <= start < end <= length:
        raise ValueError(f"span ({start}, {end}) does not fit a row of {length} words")
    if not any(name == kind or name[2:] == kind for name in labels):
        raise ValueError(f"span type {kind!r} has no label among {tuple(labels)}")

    def pattern(fixed: dict) -> np.ndarray:
        """All labels allowed, except at the positions `fixed` maps to (allowed label names, or a
        function of a label name that says whether it is allowed)."""
        mask = np.ones((length, len(labels)), dtype=bool)
        for position, allowed in fixed.items():
            if 0 <= position < length:
                mask[position] = [allowed(name) if callable(allowed) else name in allowed for name in labels]
        return mask

    inside = {position: {f"I-{kind}"} for position in range(start + 1, end)}
    not_continued = {end: lambda name: name != f"I-{kind}"}
    if scheme == "io":
        other = lambda name: name != kind  # noqa: E731
        return [pattern({start - 1: other, **{p: {kind} for p in range(start, end)}, end: other})]
    if scheme in ("bio", "iob1"):
        other_type = lambda name: name not in (f"B-{kind}", f"I-{kind}")  # noqa: E731
        return [pattern({start - 1: other_type, start: {f"I-{kind}"}, **inside, **not_continued}),
                pattern({start: {f"B-{kind}"}, **inside, **not_continued})]
    if scheme == "biluo":
        if end - start == 1:
            return [pattern({start: {f"U-{kind}"}})]
        return [pattern({start: {f"B-{kind}"}, **{p: {f"I-{kind}"} for p in range(start + 1, end - 1)},
                         end - 1: {f"L-{kind}"}})]
    raise ValueError(f"unknown tag scheme {scheme!r}; expected io, bio, iob1 or biluo")


def crf_span_probabilities(scores: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray,
                           spans: Sequence[tuple], labels: Sequence[str], scheme: str) -> np.ndarray:
    """The CRF marginal probability of each span `(start, end, type)` of one row: float64 [len(spans)].

    Args:
        scores: [W, C] emission scores of the row's words.
        transitions, start, end: the CRF's constrained parameters, [C, C], [C], [C].
        spans: the spans to score, e.g. the row's predicted entities.
        labels: the label names in id order; scheme: their tag scheme (module docstring).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] != len(labels):
        raise ValueError(f"scores must be [W, {len(labels)}] with W >= 1, got shape {scores.shape}")
    parameters = [np.asarray(values, dtype=np.float64) for values in (transitions, start, end)]
    log_z = crf_log_partition(scores, *parameters)
    probabilities = []
    for span in spans:
        masked = [crf_log_partition(np.where(mask, scores, -np.inf), *parameters)
                  for mask in span_patterns(span, scores.shape[0], labels, scheme)]
        probabilities.append(float(np.exp(logsumexp(masked) - log_z)))
    return np.array(probabilities, dtype=np.float64)


def selective_prediction(confidence: np.ndarray, correct: np.ndarray, num_gold: int,
                         rejection_rates: Sequence[float] = SELECTIVE_RATES) -> SelectivePrediction:
    """Entity precision, recall and F1 after setting aside the least confident fraction of predicted entities.

    floor(rate · m) of the m predicted entities are set aside; where the cut falls inside tied
    confidences the kept part is credited with the ties' precision (`accuracy_rejection_curve`).

    Args:
        confidence: float [m], each predicted entity's confidence (higher = surer).
        correct: bool [m], `entity_correctness`.
        num_gold: the number of gold entities, for recall.
        rejection_rates: fractions in [0, 1).
    """
    if num_gold < 0:
        raise ValueError(f"num_gold must be non-negative, got {num_gold}")
    curve = accuracy_rejection_curve(-np.asarray(confidence, dtype=np.float64), correct, np.asarray(rejection_rates))
    m = len(correct)
    kept = m - np.floor(np.round(curve.rejection_rates * m, 9))
    true_positives = curve.accuracy * kept
    recall = true_positives / num_gold if num_gold else np.full(kept.shape, np.nan)
    total = curve.accuracy + recall
    f1 = np.divide(2 * curve.accuracy * recall, total, out=np.zeros_like(total), where=total > 0)
    return SelectivePrediction(curve.rejection_rates, kept, curve.accuracy, recall, f1)
