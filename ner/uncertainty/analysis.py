"""The uncertainty study of a trained model, as numbers: calibration, error detection and OOD detection,
for MC dropout and the methods it is compared with.

Inputs are per-row word arrays (a row is one featurized sentence, or part of a long one), taken at each
word's first piece, so the functions do not care whether predictions came through the live encoder or
the feature cache.

Methods, each a row group of the study's table:
- softmax (MC off): the model's own probabilities with dropout off (a CRF model's marginals);
- MC dropout: the mean of T dropout samples (`ner.uncertainty.mc_dropout`);
- temperature scaled: softmax(log p / T), T fitted on the validation words (`ner.uncertainty.temperature`);
- Mahalanobis: the min distance of a word's latent vector to the labelled words' class means
  (`ner.uncertainty.mahalanobis`); it scores, the MC-off prediction is scored;
- ensemble: the mean of M runs' probabilities (`ner.uncertainty.ensemble`), when given.
Entity-level numbers (`ner.uncertainty.entities`) are over the model's decoded entities (a CRF model's
Viterbi path), whose confidence is the mean or min probability of the decoded label over the span's
words, or a CRF model's span marginal (`WordPredictions.span_marginals`, from the model's own pass).
"""
import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ner.uncertainty.entities import (EntitySpan, SelectivePrediction, entity_correctness, entity_spans,
                                      selective_prediction)
from ner.uncertainty.mahalanobis import MahalanobisScorer
from ner.uncertainty.metrics import (REJECTION_RATES, AccuracyRejection, Calibration, RocCurve,
                                     accuracy_rejection_curve, expected_calibration_error, ood_detection, roc_curve,
                                     sentence_scores, token_scores)
from ner.uncertainty.temperature import fit_temperature, scaled_probabilities

SENTENCE_REDUCTIONS = ("max", "mean")
OOD_SCORES = ("smp", "entropy", "mutual_information")


@dataclasses.dataclass(frozen=True)
class WordPredictions:
    """Per-row word-level predictions of one data set.

    Attributes:
      deterministic: [n, C] probabilities with dropout off, rows' words concatenated.
      mc_mean: [n, C] mean of the T dropout samples (of the M members, for an ensemble).
      expected_entropy: [n] E_t[H(p_t)].
      labels: [n] gold label ids (meaningless for out-of-domain data).
      row_lengths: [R] words per row; they sum to n.
      label_ids: [n] the model's decoded labels (a CRF model's Viterbi path); None: the argmax of
        `deterministic`.
      latent: [n, L] the head's latent vectors (for the Mahalanobis score); None when not kept.
      span_marginals: [n] a CRF model's span marginals: each word's probability of the span of `label_ids`
        that holds it (`CrfOutput.predict_span_outputs`, the same for every word of a span); None otherwise.
    """

    deterministic: np.ndarray
    mc_mean: np.ndarray
    expected_entropy: np.ndarray
    labels: np.ndarray
    row_lengths: np.ndarray
    label_ids: Optional[np.ndarray] = None
    latent: Optional[np.ndarray] = None
    span_marginals: Optional[np.ndarray] = None

    def per_row(self, values: np.ndarray) -> List[np.ndarray]:
        """Splits a word array [n, ...] into one array per row."""
        return np.split(values, np.cumsum(self.row_lengths)[:-1])

    def decoded(self) -> np.ndarray:
        """[n] the model's label ids with dropout off."""
        return self.deterministic.argmax(-1) if self.label_ids is None else self.label_ids

    def scores(self, method: str = "MC") -> Dict[str, np.ndarray]:
        """Token scores [n] of the mean (SMP, entropy, expected entropy, MI), named `<score> (<method>)`, and
        the softmax's own `1 − max p` with dropout off (the baseline every score is compared with)."""
        mean = token_scores(self.mc_mean, self.expected_entropy).as_dict()
        return {"softmax (MC off)": 1.0 - self.deterministic.max(-1), **{f"{k} ({method})": v for k, v in mean.items()}}


@dataclasses.dataclass(frozen=True, eq=False)
class Baselines:
    """What the methods beside MC dropout need.

    Attributes:
      validation: predictions on the validation part (`deterministic`, `labels`): fits the temperature.
      labelled: predictions on the labelled part (`latent`, `labels`): fits the Mahalanobis scorer.
      ensemble: the ensemble's test and OOD predictions (`mc_mean`, `expected_entropy` over the members).
    """

    validation: WordPredictions
    labelled: WordPredictions
    ensemble: Optional[Tuple[WordPredictions, WordPredictions]] = None


@dataclasses.dataclass(frozen=True, eq=False)
class UncertaintyAnalysis:
    """Every number of the uncertainty study.

    Attributes:
      accuracy: token accuracy per method's predictions (MC dropout off, on; the ensemble).
      calibration: ECE and reliability data per method.
      token_errors: ROC of each score for detecting misclassified tokens (of the prediction the score
        belongs to).
      span_errors: ROC of each score (max over the span's words) for detecting wrong predicted spans.
      rejection: accuracy–rejection curves per score.
      ood: ROC of each sentence score (`<score> (<reduction>)`) for telling OOD sentences from in-domain.
      ood_scores: the in-domain and OOD sentence scores behind each `ood` curve.
      temperature: the fitted temperature; None without baselines.
      entity_counts: (predicted entities, gold entities) of the test rows.
      entity_calibration: entity ECE per entity confidence (correct = exact span and type in gold).
      entity_errors: ROC of 1 − confidence for detecting wrong predicted entities.
      selective: entity precision, recall and F1 with the least confident 10/20/50 % set aside.
    """

    accuracy: Dict[str, float]
    calibration: Dict[str, Calibration]
    token_errors: Dict[str, RocCurve]
    span_errors: Dict[str, RocCurve]
    rejection: Dict[str, AccuracyRejection]
    ood: Dict[str, RocCurve]
    ood_scores: Dict[str, tuple]
    temperature: Optional[float] = None
    entity_counts: Tuple[int, int] = (0, 0)
    entity_calibration: Dict[str, Calibration] = dataclasses.field(default_factory=dict)
    entity_errors: Dict[str, RocCurve] = dataclasses.field(default_factory=dict)
    selective: Dict[str, SelectivePrediction] = dataclasses.field(default_factory=dict)


def analyse(test: WordPredictions, gold_tags: Sequence[Sequence[str]], to_bio: Callable, out_of_domain: WordPredictions,
            label_names: Sequence[str], baselines: Optional[Baselines] = None) -> UncertaintyAnalysis:
    """Computes the whole study.

    Args:
      test: in-domain predictions with gold labels (with `latent` when `baselines` are given).
      gold_tags: the gold IOB2 tags of each test row (for span errors).
      to_bio: maps a row's predicted label names to IOB2 tags (`LabelMap.to_bio`).
      out_of_domain: predictions on out-of-domain rows (labels unused; `latent` when `baselines` are given).
      label_names: label name of each id.
      baselines: fits and predictions of the methods beside MC dropout; None for MC dropout alone.
    """
    # Token methods: name -> (word scores [n], the probabilities whose argmax the score is judged on).
    methods = {name: (values, test.mc_mean if name.endswith("(MC)") else test.deterministic)
               for name, values in test.scores().items()}
    probabilities = {"MC dropout off": test.deterministic, "MC dropout on": test.mc_mean}
    ood_pairs = {f"{score} ({reduction})": (test.scores()[f"{score} (MC)"], out_of_domain.scores()[f"{score} (MC)"])
                 for score in OOD_SCORES for reduction in SENTENCE_REDUCTIONS}
    temperature, scaled = None, None
    if baselines is not None:
        temperature = fit_temperature(baselines.validation.deterministic, baselines.validation.labels)
        scaled = scaled_probabilities(test.deterministic, temperature)
        scorer = MahalanobisScorer.fit(_latent(baselines.labelled, "labelled"), baselines.labelled.labels)
        mahalanobis = scorer.score(_latent(test, "test"))
        methods["softmax, temperature scaled"] = (1.0 - scaled.max(-1), scaled)
        methods["mahalanobis (latent)"] = (mahalanobis, test.deterministic)
        probabilities["temperature scaled"] = scaled
        for reduction in SENTENCE_REDUCTIONS:
            ood_pairs[f"mahalanobis ({reduction})"] = (mahalanobis, scorer.score(_latent(out_of_domain, "OOD")))
        if baselines.ensemble is not None:
            ensemble_test, ensemble_ood = baselines.ensemble
            methods.update({name: (values, ensemble_test.mc_mean) for name, values
                            in ensemble_test.scores("ensemble").items() if name.endswith("(ensemble)")})
            probabilities["ensemble"] = ensemble_test.mc_mean
            for score in OOD_SCORES:
                for reduction in SENTENCE_REDUCTIONS:
                    ood_pairs[f"{score}, ensemble ({reduction})"] = (
                        ensemble_test.scores("ensemble")[f"{score} (ensemble)"],
                        ensemble_ood.scores("ensemble")[f"{score} (ensemble)"])

    token_errors, rejection, span_errors = {}, {}, {}
    for name, (values, judged) in methods.items():
        correct = judged.argmax(-1) == test.labels
        token_errors[name] = roc_curve(values, ~correct)
        rejection[name] = accuracy_rejection_curve(values, correct, REJECTION_RATES)
        span_errors[name] = _span_error_roc(test, gold_tags, to_bio, label_names, judged.argmax(-1), values)
    accuracy = {name: float(np.mean(p.argmax(-1) == test.labels)) for name, p in probabilities.items()}
    calibration = {name: _calibration(p.max(-1), p.argmax(-1) == test.labels) for name, p in probabilities.items()}
    ood, ood_scores = {}, {}
    for key, (in_values, out_values) in ood_pairs.items():
        reduction = key.rsplit("(", 1)[1].rstrip(")")
        pair = (sentence_scores(test.per_row(in_values), reduction),
                sentence_scores(out_of_domain.per_row(out_values), reduction))
        ood[key], ood_scores[key] = ood_detection(*pair), pair
    entity = _entity_numbers(test, gold_tags, to_bio, label_names, scaled, baselines)
    return UncertaintyAnalysis(accuracy, calibration, token_errors, span_errors, rejection, ood, ood_scores,
                               temperature, *entity)


def _calibration(confidence: np.ndarray, correct: np.ndarray) -> Calibration:
    """ECE of confidences [n] clipped to [0, 1]: float32 CRF marginals may exceed 1 by rounding (1 + 1e-5)."""
    return expected_calibration_error(np.clip(confidence, 0.0, 1.0), correct)


def _latent(predictions: WordPredictions, what: str) -> np.ndarray:
    if predictions.latent is None:
        raise ValueError(f"the {what} predictions carry no latent vectors; the Mahalanobis score needs them")
    return predictions.latent


def _predicted_spans(test: WordPredictions, to_bio: Callable, label_names: Sequence[str],
                     label_ids: np.ndarray) -> List[EntitySpan]:
    return entity_spans([to_bio([label_names[i] for i in row]) for row in test.per_row(label_ids)])


def _span_error_roc(test: WordPredictions, gold_tags: Sequence[Sequence[str]], to_bio: Callable,
                    label_names: Sequence[str], label_ids: np.ndarray, word_scores: np.ndarray) -> RocCurve:
    """ROC of a span's max word score for detecting predicted spans (of `label_ids` [n]) that are not
    exactly a gold span."""
    spans = _predicted_spans(test, to_bio, label_names, label_ids)
    rows = test.per_row(word_scores)
    span_scores = np.array([rows[row][start:end].max() for row, start, end, _ in spans])
    return roc_curve(span_scores, ~entity_correctness(spans, gold_tags))


def _entity_numbers(test: WordPredictions, gold_tags: Sequence[Sequence[str]], to_bio: Callable,
                    label_names: Sequence[str], scaled: Optional[np.ndarray], baselines: Optional[Baselines]):
    """(entity counts, entity ECE, entity-error ROC, selective prediction), each dict keyed by confidence."""
    label_ids = test.decoded()
    spans = _predicted_spans(test, to_bio, label_names, label_ids)
    num_gold = len(entity_spans(gold_tags))
    if not spans:
        return (0, num_gold), {}, {}, {}
    correct = entity_correctness(spans, gold_tags)
    word_probabilities = {"": test.deterministic, ", temperature scaled": scaled}
    confidences = {}
    for suffix, p in word_probabilities.items():
        if p is None:
            continue
        rows = test.per_row(p[np.arange(len(label_ids)), label_ids])  # the probability of the decoded label
        confidences[f"mean word probability{suffix}"] = np.array([rows[r][a:b].mean() for r, a, b, _ in spans])
        confidences[f"min word probability{suffix}"] = np.array([rows[r][a:b].min() for r, a, b, _ in spans])
    if test.span_marginals is not None:  # the same on every word of a span: read at its first
        rows = test.per_row(test.span_marginals)
        confidences["span marginal (CRF)"] = np.array([rows[row][start] for row, start, _, _ in spans])
    calibration = {name: _calibration(values, correct) for name, values in confidences.items()}
    errors = {name: roc_curve(1.0 - values, ~correct) for name, values in confidences.items()}
    selective = {name: selective_prediction(values, correct, num_gold) for name, values in confidences.items()}
    return (len(spans), num_gold), calibration, errors, selective
