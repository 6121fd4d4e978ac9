"""Entity-level confidence and what it is good for: the predicted entities, their correctness, entity
calibration and selective prediction. NumPy and seqeval only; a CRF model's entity confidence, the span
marginal, comes from the model's own pass (`ner.layers.crf.crf_span_marginals`).

An entity is `(row, start, end, type)`, word positions with `end` exclusive, as seqeval reads IOB2 tags
strictly (the spans counted in entity F1). A predicted entity is *correct* when its exact span and type
are a gold entity.
"""
import dataclasses
from collections.abc import Sequence

import numpy as np
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
