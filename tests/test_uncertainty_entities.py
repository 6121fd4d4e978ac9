"""Entity-level confidence: entity correctness and selective prediction against hand-computed values (a CRF
model's span marginals are checked against brute-force enumeration in tests/test_crf.py)."""
import numpy as np
import pytest

from ner.uncertainty.entities import entity_correctness, entity_spans, selective_prediction


def test_entity_correctness_needs_exact_span_and_type():
    gold = [["B-geo", "I-geo", "O"], ["B-per", "O", "B-org"]]
    predicted = [(0, 0, 2, "geo"), (0, 0, 1, "geo"), (1, 0, 1, "org"), (1, 2, 3, "org")]
    assert entity_correctness(predicted, gold).tolist() == [True, False, False, True]
    assert entity_spans(gold) == [(0, 0, 2, "geo"), (1, 0, 1, "per"), (1, 2, 3, "org")]


def test_selective_prediction_by_hand():
    """10 predicted entities, 6 correct, 8 gold. Most confident first: C C C W C C W W C W.
    Set aside 10 % (1: the last W): kept 9, 6 correct: P 6/9, R 6/8. 20 % (2): kept 8, 5 correct:
    P 5/8, R 5/8. 50 % (5): kept 5, 4 correct: P 4/5, R 4/8."""
    confidence = np.linspace(1.0, 0.1, 10)
    correct = np.array([1, 1, 1, 0, 1, 1, 0, 0, 1, 0], dtype=bool)
    result = selective_prediction(confidence, correct, num_gold=8)
    precision = np.array([6 / 9, 5 / 8, 4 / 5])
    recall = np.array([6 / 8, 5 / 8, 4 / 8])
    np.testing.assert_allclose(result.kept, [9, 8, 5])
    np.testing.assert_allclose(result.precision, precision)
    np.testing.assert_allclose(result.recall, recall)
    np.testing.assert_allclose(result.f1, 2 * precision * recall / (precision + recall))


def test_entity_ece_by_hand():
    """Entity ECE is `expected_calibration_error` over predicted entities: confidences 0.9, 0.9, 0.3 with
    correctness T, F, F fill two of 15 bins: (2/3)·|0.5 − 0.9| + (1/3)·|0 − 0.3| = 11/30."""
    from ner.uncertainty.metrics import expected_calibration_error

    gold = [["B-geo", "O", "B-per", "O"]]
    predicted = [(0, 0, 1, "geo"), (0, 2, 4, "per"), (0, 3, 4, "org")]
    correct = entity_correctness(predicted, gold)
    assert expected_calibration_error(np.array([0.9, 0.9, 0.3]), correct).ece == pytest.approx(11 / 30)
