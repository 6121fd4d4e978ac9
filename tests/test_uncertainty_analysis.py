"""The uncertainty study on small hand-made predictions."""
import dataclasses

import numpy as np
import pytest

import ner  # noqa: F401
from ner.tagging import LabelMap
from ner.layers.crf import CrfParameters, crf_span_marginals
from ner.uncertainty.analysis import Baselines, WordPredictions, analyse
from ner.uncertainty.mahalanobis import MahalanobisScorer
from ner.uncertainty.metrics import auroc, expected_calibration_error
from ner.uncertainty.temperature import fit_temperature, scaled_probabilities

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


def _example():
    """The hand-made rows of `test_analysis_numbers`, with latent vectors on the test and OOD words."""
    probs = [[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.4, 0.5, 0.1], [0.1, 0.1, 0.8]]
    rng = np.random.default_rng(0)
    test = dataclasses.replace(predictions(probs, [1, 1, 0, 2, 2], [4, 1]), latent=rng.standard_normal((5, 2)))
    ood = dataclasses.replace(predictions([[0.34, 0.33, 0.33]] * 3, [0, 0, 0], [2, 1]),
                              latent=10.0 + rng.standard_normal((3, 2)))
    gold = [["B-per", "I-per", "O", "B-geo"], ["B-geo"]]
    return test, ood, gold


def test_entity_numbers_by_hand():
    """Predicted entities: per (0, 0-2) right, mean word probability 0.8; per (0, 3-4) wrong, 0.5; geo (1, 0-1)
    right, 0.8; 3 gold entities. ECE: (2·|1 − 0.8| + |0 − 0.5|) / 3 = 0.3. Setting aside 10 % or 20 % of 3
    entities sets aside none (P = R = 2/3); 50 % sets aside the wrong one (P = 1, R = 2/3)."""
    test, ood, gold = _example()
    result = analyse(test, gold, LABELS.to_bio, ood, LABELS.labels)
    assert result.entity_counts == (3, 3)
    assert result.entity_calibration["mean word probability"].ece == pytest.approx(0.3)
    assert result.entity_calibration["min word probability"].ece == pytest.approx(0.3)
    assert result.entity_errors["mean word probability"].auroc == pytest.approx(1.0)
    selective = result.selective["mean word probability"]
    np.testing.assert_allclose(selective.precision, [2 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(selective.recall, [2 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(selective.f1, [2 / 3, 2 / 3, 0.8])


def test_baselines_temperature_mahalanobis_and_crf_span_marginals():
    """The span marginals of a CRF with zero parameters and emission scores log p (`crf_span_marginals`):
    an IO path's probability is the product of its words' p, so span (0, 0-2, per) has 0.8 · 0.8 · (1 − 0.05)
    (word 2 not per), (0, 3-4, per) has (1 − 0.05) · 0.5, and (1, 0-1, geo) has 0.8."""
    test, ood, gold = _example()
    zero = CrfParameters(np.zeros((3, 3)), np.zeros(3), np.zeros(3))
    span_marginals = np.concatenate([
        crf_span_marginals(np.log(p)[None], np.ones((1, len(p)), bool), zero, tags[None], LABELS.span_reading())[0]
        for p, tags in zip(test.per_row(test.deterministic), test.per_row(test.decoded()))])
    marginals = np.array([0.8 * 0.8 * 0.95, 0.95 * 0.5, 0.8])
    np.testing.assert_allclose(span_marginals[[0, 1, 3, 4]], marginals[[0, 0, 1, 2]], rtol=1e-12)
    test = dataclasses.replace(test, span_marginals=span_marginals)
    validation = predictions([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4]], [0, 2, 2], [3])
    labelled = dataclasses.replace(predictions(np.full((6, 3), 1 / 3), [0, 0, 1, 1, 2, 2], [6]),
                                   latent=np.random.default_rng(1).standard_normal((6, 2)))
    result = analyse(test, gold, LABELS.to_bio, ood, LABELS.labels, Baselines(validation, labelled))

    temperature = fit_temperature(validation.deterministic, validation.labels)
    assert result.temperature == pytest.approx(temperature)
    scaled = scaled_probabilities(test.deterministic, temperature)
    correct = scaled.argmax(-1) == test.labels
    assert result.calibration["temperature scaled"].ece == pytest.approx(
        expected_calibration_error(scaled.max(-1), correct).ece)
    scorer = MahalanobisScorer.fit(labelled.latent, labelled.labels)
    distances = scorer.score(test.latent)
    assert result.token_errors["mahalanobis (latent)"].auroc == pytest.approx(auroc(distances, ~correct))
    ood_distances = scorer.score(ood.latent)
    in_max = [distances[:4].max(), distances[4:].max()]
    out_max = [ood_distances[:2].max(), ood_distances[2:].max()]
    assert result.ood["mahalanobis (max)"].auroc == pytest.approx(auroc(np.r_[in_max, out_max], np.r_[0, 0, 1, 1]))

    right = np.array([True, False, True])
    assert result.entity_calibration["span marginal (CRF)"].ece == pytest.approx(
        expected_calibration_error(marginals, right).ece)
    np.testing.assert_allclose(result.selective["span marginal (CRF)"].precision, [2 / 3, 2 / 3, 1.0])
