"""An ensemble of CRF taggers as one CRF: the members' potentials averaged, decoded with Viterbi.

A linear-chain CRF scores a label path by the sum of its emission and transition scores, so the mean of
M members' scores is again a CRF: the normalised product of their path distributions, each raised to
1 / M (a geometric mean, or product of experts; Hinton 2002). Its Viterbi path is the path the members
agree on best as whole sequences, which averaging per-word marginals and taking each word's argmax does
not give.

Members read each word through their own encoder and word pieces, so they may differ in encoder,
pooling, features or head; what they must share is the words and the labels. Their emission scores are
therefore pooled per word (`FirstPiecePredictions.emission_scores`, labelled positions in row order),
never per word piece.
"""
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import tensorflow as tf

from ner.errors import NerError
from ner.layers.crf import CrfParameters, crf_marginals, crf_span_marginals, crf_viterbi
from ner.models.crf_output import CrfOutput
from ner.tagging import SpanReading

DECODE_ROWS = 512  # rows per padded Viterbi batch


@dataclass(frozen=True, eq=False)
class WordPotentials:
    """A CRF tagger's scores for n words: `emissions` [n, C] (words of all rows, in row order) and its CRF
    parameters, `transitions` [C, C] (label j after label i at [i, j]), `start` [C] and `end` [C], with the
    model's transition constraints applied (forbidden moves at `ner.layers.crf.FORBIDDEN`)."""

    emissions: np.ndarray
    transitions: np.ndarray
    start: np.ndarray
    end: np.ndarray


def check_member(run: str, model, model_type: str, labels: Sequence[str], joined: str,
                 expected_labels: Sequence[str]) -> None:
    """NerError unless the model of `run` (of `model.type` `model_type`) has a CRF and predicts
    `expected_labels`, those of run `joined`, whose ensemble it is in."""
    if not isinstance(model, CrfOutput):
        raise NerError(f"run '{run}' is a {model_type} model without a CRF; a CRF ensemble needs CRF members "
                       "(model.type bert_crf or another with a CRF output)")
    if tuple(labels) != tuple(expected_labels):
        raise NerError(f"run '{run}' predicts the labels {list(labels)}, run '{joined}' {list(expected_labels)}; "
                       "a CRF ensemble needs the same labels in the same order")


def word_potentials(model: CrfOutput, emission_scores: np.ndarray) -> WordPotentials:
    """The potentials of `model` given its emission scores [n, C] at the labelled positions of a dataset
    (`FirstPiecePredictor.predict(..., emission_scores=True)`)."""
    parameters = model.crf.parameters(constrain=True)
    return WordPotentials(np.asarray(emission_scores, np.float32), parameters.transitions.numpy(),
                          parameters.start.numpy(), parameters.end.numpy())


def average_potentials(members: Sequence[WordPotentials]) -> WordPotentials:
    """The mean of the members' potentials: the CRF of their geometric mean (module docstring).

    Raises:
      ValueError: no members, or members whose emissions differ in shape (other words or other labels).
    """
    if not members:
        raise ValueError("a CRF ensemble needs at least one member")
    shape = members[0].emissions.shape
    for index, member in enumerate(members[1:], start=1):
        if member.emissions.shape != shape:
            raise ValueError(f"member {index} scores emissions of shape {member.emissions.shape}, member 0 of "
                             f"{shape}; expected the same words and labels")
    return WordPotentials(*(np.mean([getattr(member, name) for member in members], axis=0)
                            for name in ("emissions", "transitions", "start", "end")))


def viterbi_label_ids(potentials: WordPotentials, row_lengths: np.ndarray) -> np.ndarray:
    """The Viterbi path of each row under `potentials`: int32 [n], rows of `row_lengths` [R] words (summing to
    n) decoded apart, concatenated in row order."""
    return _over_rows(potentials, row_lengths, lambda scores, mask, parameters:
                      crf_viterbi(scores, mask, parameters)[0], np.int32, ())


def marginal_probabilities(potentials: WordPotentials, row_lengths: np.ndarray) -> np.ndarray:
    """Each word's label marginals under `potentials` (forward-backward within its row): float32 [n, C]."""
    return _over_rows(potentials, row_lengths, crf_marginals, np.float32, potentials.emissions.shape[1:])


def span_marginal_probabilities(potentials: WordPotentials, row_lengths: np.ndarray, label_ids: np.ndarray,
                                reading: SpanReading) -> np.ndarray:
    """Each word's span marginal under `potentials`: the probability of the span of the path `label_ids` [n]
    (read by `reading`) that holds the word, within its row (`ner.layers.crf.crf_span_marginals`): float32 [n]."""
    return _over_rows(potentials, row_lengths, lambda scores, mask, parameters, tags:
                      crf_span_marginals(scores, mask, parameters, tags, reading), np.float32, (), label_ids)


def _over_rows(potentials: WordPotentials, row_lengths: np.ndarray, infer, dtype, word_shape: tuple,
               *word_values: np.ndarray) -> np.ndarray:
    """`infer(scores [B, W, C], mask [B, W], CrfParameters, *values [B, W])` run on the rows (`row_lengths` [R]
    words, summing to n) padded into batches of `DECODE_ROWS`, with `word_values` (arrays [n]) padded alike;
    its per-word outputs [n, *word_shape] in row order."""
    row_lengths = np.asarray(row_lengths, np.int64)
    emissions = potentials.emissions
    if row_lengths.sum() != len(emissions):
        raise ValueError(f"row lengths sum to {row_lengths.sum()} words, the emissions hold {len(emissions)}; "
                         "expected the same")
    parameters = CrfParameters(tf.constant(potentials.transitions), tf.constant(potentials.start),
                               tf.constant(potentials.end))
    offsets = np.r_[0, np.cumsum(row_lengths)]  # [R + 1]: each row's first word
    outputs = []
    for first in range(0, len(row_lengths), DECODE_ROWS):
        lengths = row_lengths[first:first + DECODE_ROWS]
        width = max(int(lengths.max()), 1)
        mask = np.arange(width)[None, :] < lengths[:, None]  # [B, W]
        words = slice(offsets[first], offsets[first + len(lengths)])  # the batch's words, row after row
        padded = []
        for values in (emissions, *map(np.asarray, word_values)):
            batch = np.zeros((len(lengths), width, *values.shape[1:]), values.dtype)
            batch[mask] = values[words]  # row-major: the mask's positions are the words in row order
            padded.append(tf.constant(batch))
        outputs.append(infer(padded[0], tf.constant(mask), parameters, *padded[1:]).numpy()[mask])
    return np.concatenate(outputs).astype(dtype) if outputs else np.zeros((0, *word_shape), dtype)
