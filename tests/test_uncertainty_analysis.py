"""The uncertainty study on small hand-made predictions."""
import numpy as np
import pytest

import ner  # noqa: F401
from ner.tagging import LabelMap
from ner.uncertainty.analysis import WordPredictions, analyse

LABELS = LabelMap.for_scheme("io", entity_types=("per", "geo"))  # O, per, geo


def predictions(probabilities, labels, row_lengths, expected_entropy=None):
    probabilities = np.asarray(probabilities, dtype=np.float64)
    entropy = np.zeros(len(probabilities)) if expected_entropy is None else np.asarray(expected_entropy)
    return WordPredictions(probabilities, probabilities, entropy, np.asarray(labels), np.asarray(row_lengths))


def test_analysis_numbers():
    # Row 0: "john smith in london": per per O geo; row 1: "paris": geo.
    probs = [[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.4, 0.5, 0.1],   # "london" wrongly per (0.5)
             [0.1, 0.1, 0.8]]
    test = predictions(probs, [1, 1, 0, 2, 2], [4, 1])
    gold = [["B-per", "I-per", "O", "B-geo"], ["B-geo"]]
    # OOD rows are all far less confident than every in-domain row.
    ood = predictions([[0.34, 0.33, 0.33]] * 3, [0, 0, 0], [2, 1])
    result = analyse(test, gold, LABELS.to_bio, ood, LABELS.labels)
    assert result.accuracy["MC dropout off"] == pytest.approx(0.8)
    # The one wrong token has the largest 1 - max p (0.5): a perfect detector.
    assert result.token_errors["softmax (MC off)"].auroc == pytest.approx(1.0)
    # Predicted spans: per 0..2 (right, score 0.2), per 3..4 (wrong, "london", score 0.5), geo in row 1 (right, 0.2).
    assert result.span_errors["softmax (MC off)"].auroc == pytest.approx(1.0)
    assert result.ood["smp (max)"].auroc == pytest.approx(1.0)
    # ECE with MC off: bins of confidence 0.8 (3 tokens, all right: |1-0.8|), 0.9 (right: 0.1), 0.5 (wrong: 0.5).
    assert result.calibration["MC dropout off"].ece == pytest.approx((3 * 0.2 + 0.1 + 0.5) / 5)
