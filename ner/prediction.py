"""A model run over a dataset, keeping the labelled positions: the one prediction loop of the package.

Evaluation (`ner.evaluation`), raw-text tagging (`ner.api`) and the MC-dropout study
(`examples/example_uncertainty.py`) all read a model's outputs at the positions the dataset labels
(each word's first piece; every position of a `WordFeatureNER` batch), rows in dataset order and words in
row order. Label ids come from `model.decode`: the argmax of the probabilities, or the Viterbi path of a
CRF model; `model.decoded_log_probability` gives each row's log-probability of those labels (selection
for annotation, `ner.selection`), and a CRF model's `predict_span_outputs` each word's span marginal in
them (entity confidence: `ner.api`, the uncertainty study).

A caller that can choose the row order (raw-text tagging) reads its rows sorted by length
(`ner.preprocessor.length_order`), so that each batch pads little, and puts the outputs back in input
order with `restore_row_order`.
"""
import dataclasses
import sys
from collections import defaultdict
from typing import Optional

import numpy as np
import tensorflow as tf

from ner.models.base import TokenClassifier
from ner.models.crf_output import CrfOutput
from ner.tagging import IGNORE_LABEL, SpanReading
from ner.uncertainty.mc_dropout import MCDropoutPredictor
from ner.uncertainty.metrics import MCStatistics, summarize_samples

EVERY_BATCH = sys.maxsize  # `latent_batches` that keeps the latent points of every batch


@dataclasses.dataclass(frozen=True, eq=False)
class FirstPiecePredictions:
    """A model's outputs at the n labelled positions of a dataset's R rows, concatenated in row order.

    Attributes:
      labels: int32 [n], the dataset's label ids.
      row_lengths: int64 [R], labelled positions per row; they sum to n.
      label_ids: int32 [n], `model.decode`'s label ids; None when not asked for.
      probabilities: float32 [n, C], the probabilities with dropout off (a CRF model's marginals); None
        when not asked for.
      latent: float32 [m, L], the latent points of the first m positions (those of the first
        `latent_batches` batches); None when `latent_batches` is 0.
      mc: the MC-dropout statistics per position (`mean` and `variance` [n, C], `expected_entropy` [n]);
        None without an MC predictor.
      log_probability: float32 [R], each row's log p of `model.decode`'s labels (dropout off); None when
        not asked for.
      span_marginals: float32 [n], a CRF model's span marginals (dropout off): each word's probability of
        the span of `model.decode`'s path that holds it (`CrfOutput.predict_span_outputs`); None when not
        asked for.
      emission_scores: float32 [n, C], a CRF model's emission scores (dropout off), what its CRF reads
        (`CrfOutput.latent_and_scores`); None when not asked for.
    """

    labels: np.ndarray
    row_lengths: np.ndarray
    label_ids: Optional[np.ndarray] = None
    probabilities: Optional[np.ndarray] = None
    latent: Optional[np.ndarray] = None
    mc: Optional[MCStatistics] = None
    log_probability: Optional[np.ndarray] = None
    span_marginals: Optional[np.ndarray] = None
    emission_scores: Optional[np.ndarray] = None


_PER_ROW = ("row_lengths", "log_probability")  # kept per row; every other array per labelled position


class FirstPiecePredictor:
    """Runs a model over datasets with dropout off and keeps the labelled positions (module docstring).

    Args:
      model: a built `TokenClassifier` (a `WordFeatureNER` for cached features). Its weights may be loaded
        before or after the predictor is made; one predictor serves any number of datasets (its traced
        functions are kept).
      span_reading: how the model's labels read as entity spans (`LabelMap.span_reading`); a CRF model
        needs it for span marginals.
    """

    def __init__(self, model: TokenClassifier, span_reading: Optional[SpanReading] = None):
        self.model = model
        # One trace serves batches of every length (reduce_retracing relaxes the shapes after the first).
        self._decode = tf.function(model.decode, reduce_retracing=True)
        self._outputs = tf.function(model.predict_outputs, reduce_retracing=True)
        self._log_probability = tf.function(model.decoded_log_probability, reduce_retracing=True)
        self._span_outputs = (tf.function(lambda features: model.predict_span_outputs(features, span_reading),
                                          reduce_retracing=True)
                              if isinstance(model, CrfOutput) and span_reading is not None else None)
        self._scores = (tf.function(lambda features: model.latent_and_scores(features, training=False)[1],
                                    reduce_retracing=True) if isinstance(model, CrfOutput) else None)

    def predict(self, dataset: tf.data.Dataset, decode: bool = True, probabilities: bool = False,
                latent_batches: int = 0, mc_predictor: Optional[MCDropoutPredictor] = None,
                log_probability: bool = False, span_marginals: bool = False,
                emission_scores: bool = False) -> FirstPiecePredictions:
        """The model's outputs at the labelled positions of `dataset` (unshuffled), in row order.

        Args:
          dataset: batches of `(features, labels [B, T])` as `make_dataset` and `WordFeatureStore.dataset`
            give them, `IGNORE_LABEL` on the positions without a label; T may differ between batches.
          decode: keep `model.decode`'s label ids.
          probabilities: keep the probabilities with dropout off.
          latent_batches: keep the latent points of this many first batches (`EVERY_BATCH`: all).
          mc_predictor: also keep the MC-dropout statistics of this predictor (of the same model); its
            deterministic pass gives the probabilities.
          log_probability: keep each row's `model.decoded_log_probability` (one more pass, which also gives
            the latent points).
          span_marginals: keep a CRF model's span marginals (its pass gives the probabilities, the labels
            and the latent points too).
          emission_scores: keep a CRF model's emission scores (one more pass; `ner.crf_ensemble` pools them).

        Raises:
          ValueError: a dataset without batches, or `span_marginals` or `emission_scores` for a model without
            a CRF, or `span_marginals` for a predictor without a `span_reading`.
        """
        for asked, what in ((span_marginals, "span marginals"), (emission_scores, "emission scores")):
            if asked and not isinstance(self.model, CrfOutput):
                raise ValueError(f"{what} need a CRF model; {type(self.model).__name__} has no CRF")
        if span_marginals and self._span_outputs is None:
            raise ValueError("span marginals need the labels' span reading: give FirstPiecePredictor a span_reading")
        kept = defaultdict(list)  # name -> per-batch arrays at the labelled positions
        for index, (features, labels) in enumerate(dataset):
            labels = labels.numpy()
            labelled = labels != IGNORE_LABEL  # [B, T]
            batch = {"labels": labels, "row_lengths": labelled.sum(axis=1)}
            latent = None
            if log_probability:  # its pass gives the latent points too
                latent, row_log_probability = self._log_probability(features, tf.constant(labelled))
                batch["log_probability"] = row_log_probability.numpy()
            if mc_predictor is not None:
                deterministic, samples = mc_predictor.predict(features)  # [B, T, C], [S, B, T, C]
                statistics = summarize_samples(samples.numpy())
                batch.update(probabilities=deterministic.numpy(), mc_mean=statistics.mean,
                             mc_variance=statistics.variance, mc_expected_entropy=statistics.expected_entropy)
            deterministic_probabilities = probabilities and mc_predictor is None
            if deterministic_probabilities or span_marginals or (index < latent_batches and latent is None):
                # One pass gives all three (and the span marginals [B, T]).
                outputs = self._span_outputs(features) if span_marginals else self._outputs(features)
                latent, batch_probabilities, label_ids = outputs[:3]  # [B, T, L], [B, T, C], [B, T]
                if span_marginals:
                    batch["span_marginals"] = outputs[3].numpy()
                if deterministic_probabilities:
                    batch["probabilities"] = batch_probabilities.numpy()
                if decode:
                    batch["label_ids"] = label_ids.numpy()
            elif decode:
                batch["label_ids"] = self._decode(features).numpy()
            if emission_scores:
                batch["emission_scores"] = self._scores(features).numpy()
            if index < latent_batches:
                batch["latent"] = latent.numpy()
            for name, values in batch.items():
                kept[name].append(values if name in _PER_ROW else values[labelled])
        if not kept:
            raise ValueError("the dataset has no batches")
        arrays = {name: np.concatenate(values) for name, values in kept.items()}
        mc = None
        if mc_predictor is not None:
            mc = MCStatistics(mean=arrays.pop("mc_mean"), variance=arrays.pop("mc_variance"),
                              expected_entropy=arrays.pop("mc_expected_entropy"), num_samples=mc_predictor.mc_samples)
        return FirstPiecePredictions(mc=mc, **arrays)


def restore_row_order(predictions: FirstPiecePredictions, order: np.ndarray) -> FirstPiecePredictions:
    """The predictions of a dataset that read rows `order` [R] (its k-th row being row `order[k]` of the
    input), in input row order: each row's positions move together, words keep their order in the row.

    Raises:
      ValueError: `order` is not a permutation of the R rows, or the predictions keep latent points (they
        cover only the first batches, which cannot be put back in input order).
    """
    order = np.asarray(order, dtype=np.int64)
    if predictions.latent is not None:
        raise ValueError("latent points of the first batches cannot be restored to input order")
    if not np.array_equal(np.sort(order), np.arange(len(predictions.row_lengths))):
        raise ValueError(f"order must be a permutation of the {len(predictions.row_lengths)} rows")
    inverse = np.argsort(order)  # [R]: where input row r was read
    read_starts = np.cumsum(predictions.row_lengths) - predictions.row_lengths  # [R]
    lengths = predictions.row_lengths[inverse]  # [R], in input order
    starts = np.cumsum(lengths) - lengths
    positions = np.repeat(read_starts[inverse] - starts, lengths) + np.arange(lengths.sum())  # [n]

    def take(values: Optional[np.ndarray]) -> Optional[np.ndarray]:
        return None if values is None else values[positions]

    mc = predictions.mc
    if mc is not None:
        mc = dataclasses.replace(mc, mean=take(mc.mean), variance=take(mc.variance),
                                 expected_entropy=take(mc.expected_entropy))
    log_probability = None if predictions.log_probability is None else predictions.log_probability[inverse]
    return FirstPiecePredictions(labels=take(predictions.labels), row_lengths=lengths,
                                 label_ids=take(predictions.label_ids), probabilities=take(predictions.probabilities),
                                 mc=mc, log_probability=log_probability,
                                 span_marginals=take(predictions.span_marginals),
                                 emission_scores=take(predictions.emission_scores))
