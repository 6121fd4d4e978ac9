"""Deep ensembles (Lakshminarayanan et al. 2017): the word probabilities of M models trained on the same
split with different `training.seed`, averaged.

The members play the part of the T dropout samples, so the result is an `MCStatistics` and every score
of `ner.uncertainty.metrics` applies: smp and entropy of the mean, mutual information as the members'
disagreement.
"""
from typing import Sequence

import numpy as np
import tensorflow as tf

from ner.models.base import TokenClassifier
from ner.prediction import FirstPiecePredictions, FirstPiecePredictor
from ner.uncertainty.metrics import MCStatistics, summarize_samples


def ensemble_predictions(members: Sequence[TokenClassifier],
                         dataset: tf.data.Dataset) -> tuple[FirstPiecePredictions, MCStatistics]:
    """Runs each member over `dataset` (unshuffled; dropout off) and averages their probabilities.

    Args:
      members: M >= 1 models over the same labels; each reads the batches of `dataset`.
      dataset: batches of `(features, labels [B, T])` as `FirstPiecePredictor.predict` takes them.

    Returns:
      The first member's predictions (labels, row lengths, probabilities [n, C]) and the statistics of the
      M members' probabilities: `mean` [n, C], `variance` [n, C], `expected_entropy` [n], num_samples = M.

    Raises:
      ValueError: no members, or members whose labelled positions differ.
    """
    if not members:
        raise ValueError("an ensemble needs at least one member model")
    predictions = [FirstPiecePredictor(model).predict(dataset, decode=False, probabilities=True) for model in members]
    first = predictions[0]
    for index, prediction in enumerate(predictions[1:], start=1):
        if not np.array_equal(prediction.row_lengths, first.row_lengths):
            raise ValueError(f"member {index} labels other positions than member 0; expected the same dataset")
    return first, summarize_samples(np.stack([prediction.probabilities for prediction in predictions]))
