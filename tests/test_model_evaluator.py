"""Tests for ner.model_evaluator: hand-computed token and entity scores, normalisations, PCA, errors."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from ner import model_evaluator as ev

LABELS = ("O", "geo", "per", "tim")
#            0    1    2    3    4    5    6    7    8    9
TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 0])  # O O O O geo geo geo per per O
PRED = np.array([0, 0, 0, 1, 1, 1, 0, 1, 0, 3])  # O O O geo geo geo O geo O tim
# "per" is never predicted; "tim" never occurs in the truth.


def test_token_metrics_hand_computed():
    m = ev.token_metrics(TRUE, PRED, LABELS)
    # Rows = true, cols = predicted.
    # true O   (tokens 0,1,2,3,9) -> pred O,O,O,geo,tim -> [3, 1, 0, 1]
    # true geo (tokens 4,5,6)     -> pred geo,geo,O     -> [1, 2, 0, 0]
    # true per (tokens 7,8)       -> pred geo,O         -> [1, 1, 0, 0]
    # true tim (none)                                   -> [0, 0, 0, 0]
    np.testing.assert_array_equal(m.confusion, [[3, 1, 0, 1], [1, 2, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(m.support, [5, 3, 2, 0])
    # Predicted counts (column sums): O 5, geo 4, per 0, tim 1.
    # precision: O 3/5, geo 2/4, per 0/0 -> 0 (never predicted), tim 0/1.
    np.testing.assert_allclose(m.precision, [0.6, 0.5, 0.0, 0.0])
    # recall: O 3/5, geo 2/3, per 0/2, tim 0/0 -> 0 (absent from truth).
    np.testing.assert_allclose(m.recall, [0.6, 2 / 3, 0.0, 0.0])
    # F1 geo = 2 * 0.5 * 2/3 / (0.5 + 2/3) = (2/3) / (7/6) = 4/7; O = 0.6; per, tim = 0.
    np.testing.assert_allclose(m.f1, [0.6, 4 / 7, 0.0, 0.0])
    # Mean over all 4 classes: (0.6 + 4/7) / 4.
    assert m.mean_f1 == pytest.approx((0.6 + 4 / 7) / 4)
    # Correct tokens: 0, 1, 2, 4, 5 -> 5/10.
    assert m.accuracy == pytest.approx(0.5)
    # True non-O tokens: 4..8 (5 tokens), correct: 4, 5 -> 2/5.
    assert m.accuracy_without_outside == pytest.approx(0.4)
    assert m.labels == LABELS


def test_precision_and_recall_are_not_swapped():
    m = ev.token_metrics(TRUE, PRED, LABELS)
    geo = LABELS.index("geo")
    # Of 4 tokens predicted geo, 2 are geo; of 3 true geo tokens, 2 are found.
    assert m.precision[geo] == pytest.approx(2 / 4)
    assert m.recall[geo] == pytest.approx(2 / 3)


def test_token_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 5, size=300)
    pred = np.where(rng.random(300) < 0.6, true, rng.integers(0, 5, size=300))
    m = ev.token_metrics(true, pred, ("O", "a", "b", "c", "d"))
    p, r, f, s = precision_recall_fscore_support(true, pred, labels=range(5), zero_division=0)
    np.testing.assert_allclose(m.precision, p)
    np.testing.assert_allclose(m.recall, r)
    np.testing.assert_allclose(m.f1, f)
    np.testing.assert_array_equal(m.support, s)


def test_perfect_predictions_score_one():
    ids = np.array([0, 1, 2, 1, 0, 2])
    m = ev.token_metrics(ids, ids, ("O", "geo", "per"))
    for value in (m.accuracy, m.accuracy_without_outside, m.mean_f1):
        assert value == 1.0
    for array in (m.precision, m.recall, m.f1):
        np.testing.assert_array_equal(array, 1.0)


def test_accuracy_without_outside_is_nan_when_all_true_labels_are_outside():
    m = ev.token_metrics(np.array([0, 0]), np.array([0, 1]), ("O", "geo"))
    assert np.isnan(m.accuracy_without_outside)
    assert m.accuracy == 0.5


def test_normalised_confusions_sum_to_one_and_keep_empty_rows_zero():
    m = ev.token_metrics(TRUE, PRED, LABELS)
    by_true = m.confusion_normalized_by_true()
    np.testing.assert_allclose(by_true.sum(axis=1), [1, 1, 1, 0])  # tim never true
    np.testing.assert_allclose(by_true[1], [1 / 3, 2 / 3, 0, 0])
    by_pred = m.confusion_normalized_by_predicted()
    np.testing.assert_allclose(by_pred.sum(axis=0), [1, 1, 0, 1])  # per never predicted
    np.testing.assert_allclose(by_pred[:, 1], [1 / 4, 2 / 4, 1 / 4, 0])


def test_distributions():
    m = ev.token_metrics(TRUE, PRED, LABELS)
    np.testing.assert_allclose(m.true_distribution(), [0.5, 0.3, 0.2, 0.0])
    np.testing.assert_allclose(m.predicted_distribution(), [0.5, 0.4, 0.0, 0.1])
    np.testing.assert_allclose(ev.label_distribution(PRED, 4), [0.5, 0.4, 0.0, 0.1])


def test_results_are_read_only():
    m = ev.token_metrics(TRUE, PRED, LABELS)
    with pytest.raises(ValueError):
        m.confusion[0, 0] = 7


@pytest.mark.parametrize(
    "true, pred, match",
    [
        (np.array([0, 1]), np.array([0, 1, 1]), "shape"),
        (np.array([0, 4]), np.array([0, 1]), "outside"),
        (np.array([0, -1]), np.array([0, 1]), "outside"),
        (np.array([[0, 1]]), np.array([[0, 1]]), "1-D"),
        (np.array([0.0, 1.0]), np.array([0, 1]), "integer"),
        (np.array([], dtype=int), np.array([], dtype=int), "no tokens"),
    ],
)
def test_token_metrics_rejects_bad_input(true, pred, match):
    with pytest.raises(ValueError, match=match):
        ev.token_metrics(true, pred, LABELS)


def test_token_metrics_requires_outside_label():
    with pytest.raises(ValueError, match="outside label"):
        ev.token_metrics(np.array([0]), np.array([0]), ("geo", "per"))


def test_collapse_to_types_puts_outside_first_then_first_appearance():
    labels = ("B-per", "O", "I-geo", "B-geo", "I-per")
    type_ids, type_labels = ev.collapse_to_types(np.array([0, 1, 2, 3, 4]), labels)
    assert type_labels == ("O", "per", "geo")
    np.testing.assert_array_equal(type_ids, [1, 0, 2, 2, 1])
    with pytest.raises(ValueError, match="outside"):
        ev.collapse_to_types(np.array([5]), labels)


def test_entity_metrics_strict_hand_computed():
    true = [
        ["B-geo", "I-geo", "O"],  # exact match: geo TP
        ["B-per", "I-per", "O"],  # boundary error: true per[0:2] FN, predicted per[0:1] FP
        ["O", "B-org"],  # type error: org FN, geo FP
        ["O", "O"],  # spurious prediction: tim FP
    ]
    pred = [
        ["B-geo", "I-geo", "O"],
        ["B-per", "O", "O"],
        ["O", "B-geo"],
        ["B-tim", "O"],
    ]
    m = ev.entity_metrics(true, pred)
    # 3 true entities, 4 predicted, 1 TP: P = 1/4, R = 1/3, F1 = 2 * (1/12) / (7/12) = 2/7.
    assert m.precision == pytest.approx(1 / 4)
    assert m.recall == pytest.approx(1 / 3)
    assert m.f1 == pytest.approx(2 / 7)
    # geo: 2 predicted, 1 true, 1 TP -> P 1/2, R 1, F1 2/3. per: 1 pred, 1 true, 0 TP.
    # org: never predicted -> P 0 by convention. tim: absent from truth -> R 0, support 0.
    assert set(m.per_type) == {"geo", "org", "per", "tim"}
    assert m.per_type["geo"] == pytest.approx((0.5, 1.0, 2 / 3, 1))
    assert m.per_type["per"] == (0.0, 0.0, 0.0, 1)
    assert m.per_type["org"] == (0.0, 0.0, 0.0, 1)
    assert m.per_type["tim"] == (0.0, 0.0, 0.0, 0)


def test_entity_metrics_strict_ignores_entities_without_begin_tag():
    # Lenient (conlleval) scoring would accept I-geo I-geo as a geo span; strict IOB2 does not.
    m = ev.entity_metrics([["B-geo", "I-geo"]], [["I-geo", "I-geo"]])
    assert (m.precision, m.recall, m.f1) == (0.0, 0.0, 0.0)


def test_entity_metrics_without_any_entity_is_zero():
    m = ev.entity_metrics([["O", "O"]], [["O", "O"]])
    assert (m.precision, m.recall, m.f1, m.per_type) == (0.0, 0.0, 0.0, {})


def test_entity_metrics_rejects_mismatches():
    with pytest.raises(ValueError, match="sentence 1"):
        ev.entity_metrics([["O"], ["B-geo", "O"]], [["O"], ["B-geo"]])
    with pytest.raises(ValueError, match="sentences"):
        ev.entity_metrics([["O"]], [])
    with pytest.raises(ValueError, match="sentence 0: tag 'geo'"):
        ev.entity_metrics([["geo"]], [["O"]])


def test_build_report_scores_types_per_token_and_spans_per_entity():
    true = [["B-geo", "I-geo", "O"], ["B-per", "I-per"]]
    pred = [["B-geo", "I-geo", "O"], ["B-per", "B-per"]]
    report = ev.build_report(true, pred, ("O", "B-geo", "I-geo", "B-per", "I-per"))
    assert report.token.labels == ("O", "geo", "per")
    assert report.token.accuracy == 1.0  # every token has the right type
    # Entities: true geo, per[0:2]; predicted geo, per[0:1], per[1:2] -> TP 1, P 1/3, R 1/2.
    assert report.entity.precision == pytest.approx(1 / 3)
    assert report.entity.recall == pytest.approx(1 / 2)
    assert (report.num_sentences, report.num_tokens) == (2, 5)
    np.testing.assert_allclose(report.true_distribution, [0.2, 0.4, 0.4])
    np.testing.assert_allclose(report.pred_distribution, [0.2, 0.4, 0.4])
    assert set(report.summary_row()) == {"accuracy", "accuracy_without_o", "mean_f1", "entity_f1"}
    assert report.summary_row()["entity_f1"] == pytest.approx(report.entity.f1)


def test_build_report_accepts_io_labels_and_keeps_their_order():
    true = [["O", "B-per", "O", "B-geo"]]
    pred = [["O", "B-per", "O", "O"]]
    report = ev.build_report(true, pred, ("O", "geo", "per", "tim"))
    assert report.token.labels == ("O", "geo", "per", "tim")
    np.testing.assert_array_equal(report.token.support, [2, 1, 1, 0])
    assert report.token.accuracy == pytest.approx(3 / 4)
    assert report.entity.f1 == pytest.approx(2 / 3)  # 1 TP, 2 true, 1 predicted: P 1, R 1/2


def test_build_report_rejects_unknown_types_and_mismatches():
    with pytest.raises(ValueError, match="sentence 1: tag 'B-org'"):
        ev.build_report([["O"], ["B-org"]], [["O"], ["O"]], ("O", "geo"))
    with pytest.raises(ValueError, match="sentence 0"):
        ev.build_report([["O", "O"]], [["O"]], ("O", "geo"))


def test_latent_pca_finds_dominant_direction_deterministically():
    rng = np.random.default_rng(0)
    direction = np.array([1.0, 2.0, 0.0, 0.0, 0.0]) / np.sqrt(5.0)
    latent = rng.normal(size=(500, 5)) + 10.0 * rng.normal(size=(500, 1)) * direction + 3.0
    points = ev.latent_pca(latent)
    assert points.shape == (500, 2)
    along = (latent - latent.mean(axis=0)) @ direction
    assert abs(np.corrcoef(points[:, 0], along)[0, 1]) > 0.99
    assert points[:, 0].var() > 10 * points[:, 1].var()
    np.testing.assert_allclose(points.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_array_equal(points, ev.latent_pca(latent.copy()))


def test_latent_pca_rejects_bad_shapes():
    with pytest.raises(ValueError, match="2-D"):
        ev.latent_pca(np.zeros(5))
    with pytest.raises(ValueError, match="n_components"):
        ev.latent_pca(np.zeros((4, 3)), n_components=4)


def test_importing_evaluation_modules_does_not_import_tensorflow():
    code = "import sys, ner.model_evaluator, ner.reporting; sys.exit('tensorflow' in sys.modules)"
    repo_root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=repo_root, check=False).returncode == 0
