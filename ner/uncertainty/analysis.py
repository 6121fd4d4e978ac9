"""The uncertainty study of a trained model, as numbers: calibration, error detection and OOD detection.

Inputs are per-row word arrays (a row is one featurized sentence, or part of a long one), taken at each
word's first piece, so the functions do not care whether predictions came through the live encoder or
the feature cache.
"""
import dataclasses
from typing import Dict, List, Sequence

import numpy as np
from seqeval.scheme import IOB2, Entities

from ner.uncertainty.metrics import (REJECTION_RATES, AccuracyRejection, Calibration, RocCurve,
                                     accuracy_rejection_curve, error_detection, expected_calibration_error,
                                     ood_detection, sentence_scores, span_uncertainties, token_scores)

SENTENCE_REDUCTIONS = ("max", "mean")
OOD_SCORES = ("smp", "entropy", "mutual_information")


@dataclasses.dataclass(frozen=True)
class WordPredictions:
    """Per-row word-level predictions of one data set.

    Attributes:
      deterministic: [n, C] probabilities with dropout off, rows' words concatenated.
      mc_mean: [n, C] mean of the T dropout samples.
      expected_entropy: [n] E_t[H(p_t)].
      labels: [n] gold label ids (meaningless for out-of-domain data).
      row_lengths: [R] words per row; they sum to n.
    """

    deterministic: np.ndarray
    mc_mean: np.ndarray
    expected_entropy: np.ndarray
    labels: np.ndarray
    row_lengths: np.ndarray

    def per_row(self, values: np.ndarray) -> List[np.ndarray]:
        """Splits a word array [n, ...] into one array per row."""
        return np.split(values, np.cumsum(self.row_lengths)[:-1])

    def scores(self) -> Dict[str, np.ndarray]:
        """Token scores [n] with MC dropout (SMP, entropy, expected entropy, MI) and the softmax's own
        `1 − max p` with dropout off (the baseline every MC score is compared with)."""
        mc = token_scores(self.mc_mean, self.expected_entropy).as_dict()
        return {"softmax (MC off)": 1.0 - self.deterministic.max(-1), **{f"{k} (MC)": v for k, v in mc.items()}}


@dataclasses.dataclass(frozen=True, eq=False)
class UncertaintyAnalysis:
    """Every number of the uncertainty study.

    Attributes:
      accuracy: token accuracy with MC dropout off and on.
      calibration: ECE and reliability data, MC dropout off and on.
      token_errors: ROC of each score for detecting misclassified tokens (MC-on predictions; the
        softmax score for the MC-off ones).
      span_errors: ROC of each score (max over the span's words) for detecting wrong predicted spans.
      rejection: accuracy–rejection curves per score.
      ood: ROC of each sentence score (`<score> (<reduction>)`) for telling OOD sentences from in-domain.
      ood_scores: the in-domain and OOD sentence scores behind each `ood` curve.
    """

    accuracy: Dict[str, float]
    calibration: Dict[str, Calibration]
    token_errors: Dict[str, RocCurve]
    span_errors: Dict[str, RocCurve]
    rejection: Dict[str, AccuracyRejection]
    ood: Dict[str, RocCurve]
    ood_scores: Dict[str, tuple]


def analyse(test: WordPredictions, gold_tags: Sequence[Sequence[str]], to_bio, out_of_domain: WordPredictions,
            label_names: Sequence[str]) -> UncertaintyAnalysis:
    """Computes the whole study.

    Args:
      test: in-domain predictions with gold labels.
      gold_tags: the gold IOB2 tags of each test row (for span errors).
      to_bio: maps a row's predicted label names to IOB2 tags (`LabelMap.to_bio`).
      out_of_domain: predictions on out-of-domain rows (labels unused).
      label_names: label name of each id.
    """
    correct_off = test.deterministic.argmax(-1) == test.labels
    correct_on = test.mc_mean.argmax(-1) == test.labels
    scores = test.scores()
    correctness = {name: (correct_off if name.startswith("softmax") else correct_on) for name in scores}
    token_errors = {name: error_detection({name: values}, correctness[name])[name] for name, values in scores.items()}
    rejection = {name: accuracy_rejection_curve(values, correctness[name], REJECTION_RATES)
                 for name, values in scores.items()}
    calibration = {"MC dropout off": expected_calibration_error(test.deterministic.max(-1), correct_off),
                   "MC dropout on": expected_calibration_error(test.mc_mean.max(-1), correct_on)}
    span_errors = {name: _span_error_roc(test, gold_tags, to_bio, label_names, values,
                                         use_mc=not name.startswith("softmax"))
                   for name, values in scores.items()}
    in_scores, out_scores = test.scores(), out_of_domain.scores()
    ood, ood_scores = {}, {}
    for score in OOD_SCORES:
        for reduction in SENTENCE_REDUCTIONS:
            key = f"{score} ({reduction})"
            pair = (sentence_scores(test.per_row(in_scores[f"{score} (MC)"]), reduction),
                    sentence_scores(out_of_domain.per_row(out_scores[f"{score} (MC)"]), reduction))
            ood[key], ood_scores[key] = ood_detection(*pair), pair
    accuracy = {"MC dropout off": float(correct_off.mean()), "MC dropout on": float(correct_on.mean())}
    return UncertaintyAnalysis(accuracy, calibration, token_errors, span_errors, rejection, ood, ood_scores)


def _span_error_roc(test: WordPredictions, gold_tags: Sequence[Sequence[str]], to_bio, label_names: Sequence[str],
                    word_scores: np.ndarray, use_mc: bool) -> RocCurve:
    """ROC of a span's max word score for detecting predicted spans that are not exactly a gold span."""
    probabilities = test.mc_mean if use_mc else test.deterministic
    predicted = [to_bio([label_names[i] for i in row.argmax(-1)]) for row in test.per_row(probabilities)]
    spans = span_uncertainties(predicted, test.per_row(word_scores))
    gold = {(entity.sent_id, entity.start, entity.end, entity.tag)
            for sentence in Entities([list(tags) for tags in gold_tags], IOB2, suffix=False).entities
            for entity in sentence}
    wrong = np.array([(s.sentence, s.start, s.end, s.type) not in gold for s in spans], dtype=bool)
    return error_detection({"span": np.array([s.max_score for s in spans])}, ~wrong)["span"]
