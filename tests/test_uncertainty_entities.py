"""Entity-level confidence: CRF span marginals against brute-force enumeration of all label paths, entity
correctness, and selective prediction against hand-computed values."""
import itertools

import numpy as np
import pytest

from ner.layers.crf import FORBIDDEN
from ner.tagging import LabelMap
from ner.uncertainty.entities import (crf_log_partition, crf_span_probabilities, entity_correctness, entity_spans,
                                      selective_prediction)


def _random_crf(label_map: LabelMap, seed: int, constrain: bool = True):
    """Random emission scores [4, C] and parameters, with the scheme's forbidden moves at FORBIDDEN when
    `constrain`."""
    rng = np.random.default_rng(seed)
    c = label_map.num_labels
    allowed = label_map.allowed_transitions()
    restrict = lambda values, mask: np.where(np.asarray(mask) | (not constrain), values, FORBIDDEN)  # noqa: E731
    return (rng.standard_normal((4, c)), restrict(rng.standard_normal((c, c)), allowed.transitions),
            restrict(rng.standard_normal(c), allowed.start), restrict(rng.standard_normal(c), allowed.end))


def _brute_force(scores, transitions, start, end, label_map):
    """Span (start, end, type) -> probability, summing p(y) over all C^W label paths, each read as the
    evaluator reads it (`to_bio`, then seqeval's strict IOB2)."""
    length, c = scores.shape
    paths = list(itertools.product(range(c), repeat=length))
    path_scores = np.array([start[y[0]] + end[y[-1]] + sum(scores[t, y[t]] for t in range(length))
                            + sum(transitions[y[t - 1], y[t]] for t in range(1, length)) for y in paths])
    weights = np.exp(path_scores - path_scores.max())
    weights /= weights.sum()
    marginal = {}
    for y, weight in zip(paths, weights):
        for _, a, b, kind in entity_spans([label_map.to_bio([label_map.labels[i] for i in y])]):
            marginal[(a, b, kind)] = marginal.get((a, b, kind), 0.0) + weight
    return marginal


@pytest.mark.parametrize("scheme, types, constrain", [("io", ("a", "b"), False), ("bio", ("a",), True),
                                                      ("bio", ("a",), False), ("iob1", ("a",), True),
                                                      ("biluo", ("a",), True)])
def test_span_marginals_match_brute_force_enumeration(scheme, types, constrain):
    """io: 3 labels (O, a, b); bio and iob1: 3 labels (O, B-a, I-a); biluo: 5; rows of 4 words. Without
    constraints a bio path may start a span with a stray I-a, which the evaluator reads as B-a."""
    label_map = LabelMap.for_scheme(scheme, entity_types=types)
    for seed in range(3):
        scores, transitions, start, end = _random_crf(label_map, seed, constrain)
        expected = _brute_force(scores, transitions, start, end, label_map)
        spans = [(a, b, kind) for a in range(4) for b in range(a + 1, 5) for kind in types]
        got = crf_span_probabilities(scores, transitions, start, end, spans, label_map.labels, scheme)
        np.testing.assert_allclose(got, [expected.get(span, 0.0) for span in spans], atol=1e-12)


def test_log_partition_of_a_one_word_row_and_a_masked_label():
    scores = np.array([[0.0, np.log(3.0)]])
    transitions, start, end = np.zeros((2, 2)), np.array([0.0, 0.0]), np.array([np.log(2.0), 0.0])
    assert crf_log_partition(scores, transitions, start, end) == pytest.approx(np.log(2.0 + 3.0))
    assert crf_log_partition(np.array([[-np.inf, 0.0]]), transitions, start, end) == pytest.approx(0.0)


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


def test_bad_spans_are_rejected():
    labels = LabelMap.for_scheme("bio", entity_types=("a",)).labels
    with pytest.raises(ValueError, match="does not fit a row of 2 words"):
        crf_span_probabilities(np.zeros((2, 3)), np.zeros((3, 3)), np.zeros(3), np.zeros(3), [(1, 3, "a")], labels,
                               "bio")
    with pytest.raises(ValueError, match="span type 'b' has no label"):
        crf_span_probabilities(np.zeros((2, 3)), np.zeros((3, 3)), np.zeros(3), np.zeros(3), [(0, 1, "b")], labels,
                               "bio")


def test_entity_ece_by_hand():
    """Entity ECE is `expected_calibration_error` over predicted entities: confidences 0.9, 0.9, 0.3 with
    correctness T, F, F fill two of 15 bins: (2/3)·|0.5 − 0.9| + (1/3)·|0 − 0.3| = 11/30."""
    from ner.uncertainty.metrics import expected_calibration_error

    gold = [["B-geo", "O", "B-per", "O"]]
    predicted = [(0, 0, 1, "geo"), (0, 2, 4, "per"), (0, 3, 4, "org")]
    correct = entity_correctness(predicted, gold)
    assert expected_calibration_error(np.array([0.9, 0.9, 0.3]), correct).ece == pytest.approx(11 / 30)
