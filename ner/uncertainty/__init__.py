"""Predictive uncertainty by Monte-Carlo dropout (GitHub issue 6).

- `ner.uncertainty.mc_dropout` (TensorFlow): `MCDropoutPredictor` runs T forward passes of any model of
  the package with dropout on; `ner.prediction.FirstPiecePredictor` reduces them batch by batch to
  `MCStatistics` at the labelled positions.
- `ner.uncertainty.metrics` (NumPy and seqeval only, so saved predictions are scored without TensorFlow):
  per-token and per-span uncertainty scores, calibration (ECE), misclassification and out-of-domain
  detection (ROC, AUROC) and accuracy–rejection curves. Every function returns numbers.
- `ner.uncertainty.study` (TensorFlow): the whole study of a trained run, run and written to
  `results/uncertainty/<run>/` (`ner uncertainty`, `examples.example_uncertainty`).

The figures are drawn by `ner.uncertainty_reporting`. Nothing is imported here, so importing the metrics
does not load TensorFlow.
"""
