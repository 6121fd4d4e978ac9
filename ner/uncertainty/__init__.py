"""Predictive uncertainty by Monte-Carlo dropout (GitHub issue 6) and its baselines (issue 14).

- `ner.uncertainty.mc_dropout` (TensorFlow): `MCDropoutPredictor` runs T forward passes of any model of
  the package with dropout on; `ner.prediction.FirstPiecePredictor` reduces them batch by batch to
  `MCStatistics` at the labelled positions.
- `ner.uncertainty.metrics` (NumPy and seqeval only, so saved predictions are scored without TensorFlow):
  per-token and per-span uncertainty scores, calibration (ECE), misclassification and out-of-domain
  detection (ROC, AUROC) and accuracy–rejection curves. Every function returns numbers.
- The methods MC dropout is compared with: `ner.uncertainty.temperature` (temperature scaling, NumPy and
  SciPy), `ner.uncertainty.mahalanobis` (distance to the class means of the labelled words' latent
  vectors, NumPy), `ner.uncertainty.ensemble` (TensorFlow: the mean of M runs' probabilities).
- `ner.uncertainty.entities` (NumPy, SciPy and seqeval): a CRF's span marginals, entity correctness and
  selective prediction (entity precision and F1 with the least confident entities set aside).
- `ner.uncertainty.analysis` (NumPy): every number of the study, one method per row group.
- `ner.uncertainty.study` (TensorFlow): the whole study of a trained run, run and written to
  `results/uncertainty/<run>/` (`ner uncertainty`, `examples.example_uncertainty`).

The figures are drawn by `ner.uncertainty_reporting`. Nothing is imported here, so importing the metrics
does not load TensorFlow.
"""
