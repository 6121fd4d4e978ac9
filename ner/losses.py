"""Every loss the package trains with, and token statistics, over labelled positions.

Labels use the package-wide ignore value `IGNORE_LABEL` (-1) for positions that are not a word's first
word piece ([CLS], [SEP], continuation pieces, padding); those never enter a loss or a metric. Every
loss here maps `(labels [B, T], probabilities [B, T, C])` to a scalar, so the shared trainer can
alternate them.

- Masked cross-entropy: the supervised loss (`TokenClassifier.forward_loss` by default), optionally
  logit-adjusted (Menon et al., ICLR 2021): the scores it reads are offset by τ · log of the label prior
  (`logit_adjustment`), so that frequent labels need a wider margin and rare ones are predicted more.
- KL regularisers for unlabelled batches (semi-supervised stage), by name in `ner.registry.UNLABELLED_LOSSES`
  and summed with weights by `unlabelled_loss`. On an unlabelled batch the label *values* are never read:
  `labels` only marks which positions are words.
  - Data-distribution KL: q_j = mean over the batch's word positions of the predicted probability of
    class j; loss = Σ_j p_j log(p_j / q_j) for a prior p (by default the labelled split's label
    distribution).
  - Confidence KL (Xie et al. 2016, DEC): with f_j = Σ_i q_ij over word positions, the target is
    p_ij = (q_ij² / f_j) / Σ_j' (q_ij'² / f_j'), held constant (stop-gradient); loss = the mean over word
    positions i of Σ_j p_ij log(p_ij / q_ij). (The mean, not the sum over i, keeps the scale independent
    of how many words a batch holds; Adam is insensitive to a constant factor anyway.)

`KLOptions` switches each of seed 001's KL details on (`semi_supervised.*`): [CLS] and [SEP] in the
masks beside the words, a confidence target that is differentiated rather than held fixed, and a sum
rather than a mean over positions. The losses take the batch's `input_mask` [B, T] as a third argument,
read only to find [CLS] (each row's first token) and [SEP] (its last).
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from ner import registry
from ner.tagging import IGNORE_LABEL

PROBABILITY_FLOOR = 1e-7  # cross-entropy clips probabilities to [PROBABILITY_FLOOR, 1]
EPSILON = 1e-8  # the KL losses add it inside logarithms and denominators


def word_mask(labels: tf.Tensor, dtype=tf.float32) -> tf.Tensor:
    """[B, T] 1.0 at word positions (labels != IGNORE_LABEL), else 0.0."""
    return tf.cast(labels != IGNORE_LABEL, dtype)


@dataclass(frozen=True)
class KLOptions:
    """Seed 001's KL details as switches; the defaults are this package's (seed 001's value in brackets).

    special_tokens: [CLS] and [SEP] enter the KL masks beside the words [True].
    confidence_stop_gradient: the confidence KL's target p is a constant (`tf.stop_gradient`) [False: the
      gradient also flows through p].
    confidence_reduction: "mean" or "sum" of the confidence KL over the masked positions ["sum"].
    """

    special_tokens: bool = False
    confidence_stop_gradient: bool = True
    confidence_reduction: str = "mean"

    def __post_init__(self):
        if self.confidence_reduction not in registry.KL_REDUCTIONS:
            raise ValueError(f"confidence_reduction must be one of {registry.KL_REDUCTIONS}, "
                             f"got {self.confidence_reduction!r}")


def kl_mask(labels: tf.Tensor, input_mask: Optional[tf.Tensor], special_tokens: bool, dtype=tf.float32) -> tf.Tensor:
    """[B, T] 1.0 at the positions a KL loss reads: the words (`word_mask`), and with `special_tokens` each
    row's [CLS] (its first token) and [SEP] (its last token, `input_mask` [B, T] summed over T, minus one).

    Raises ValueError if `special_tokens` is set without an `input_mask` (cached word features have none).
    """
    words = word_mask(labels, dtype)
    if not special_tokens:
        return words
    if input_mask is None:
        raise ValueError("[CLS] and [SEP] in the KL mask need the batch's input_mask (live encoder features)")
    tokens = tf.cast(input_mask, dtype)  # [B, T]
    positions = tf.range(tf.shape(tokens)[1])[None, :]  # [1, T]
    last = tf.cast(tf.reduce_sum(tokens, axis=1), tf.int32)[:, None] - 1  # [B, 1]
    special = tf.cast((positions == 0) | (positions == last), dtype) * tokens
    return tf.maximum(words, special)


def logit_adjustment(prior: Sequence[float], tau: float) -> np.ndarray:
    """The score offset [C] float32 of the logit-adjusted loss: τ · log prior, a class with prior 0 counted
    as `PROBABILITY_FLOOR` (so its offset is large and negative, not -inf)."""
    return (tau * np.log(np.maximum(np.asarray(prior, dtype=np.float64), PROBABILITY_FLOOR))).astype(np.float32)


def masked_cross_entropy(labels: tf.Tensor, probabilities: tf.Tensor,
                         score_offset: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Mean negative log-likelihood over labelled positions.

    Args:
      labels: [B, T] int32, `IGNORE_LABEL` where no label applies.
      probabilities: [B, T, C] float, softmax outputs.
      score_offset: [C] or None; when given, the loss reads softmax(log probabilities + score_offset), the
        logit-adjusted probabilities (`logit_adjustment`; the softmax of shifted logits, since a softmax
        ignores a constant shift).
    Returns:
      A scalar; 0 when the batch has no labelled position.
    """
    if score_offset is not None:
        log_probabilities = tf.math.log(tf.clip_by_value(probabilities, PROBABILITY_FLOOR, 1.0))
        probabilities = tf.nn.softmax(log_probabilities + tf.cast(score_offset, probabilities.dtype), axis=-1)
    mask = word_mask(labels, probabilities.dtype)
    safe_labels = tf.maximum(labels, 0)
    picked = tf.gather(probabilities, safe_labels, batch_dims=2)
    nll = -tf.math.log(tf.clip_by_value(picked, PROBABILITY_FLOOR, 1.0))
    return tf.math.divide_no_nan(tf.reduce_sum(nll * mask), tf.reduce_sum(mask))


def token_counts(labels: tf.Tensor, probabilities: tf.Tensor, outside_id: int) -> Dict[str, tf.Tensor]:
    """Counts for accuracy and accuracy without the outside label, summable over batches.

    Args:
      labels: [B, T] int32 with `IGNORE_LABEL` for unlabelled positions.
      probabilities: [B, T, C].
      outside_id: the id of `O`.
    Returns:
      float32 scalars `tokens`, `correct`, `entity_tokens`, `entity_correct`.
    """
    labelled = labels != IGNORE_LABEL
    entity = labelled & (labels != outside_id)
    correct = tf.cast(tf.argmax(probabilities, axis=-1, output_type=labels.dtype) == labels, tf.float32)
    labelled, entity = tf.cast(labelled, tf.float32), tf.cast(entity, tf.float32)
    return {"tokens": tf.reduce_sum(labelled), "correct": tf.reduce_sum(correct * labelled),
            "entity_tokens": tf.reduce_sum(entity), "entity_correct": tf.reduce_sum(correct * entity)}


def label_prior(label_ids: np.ndarray, num_labels: int) -> np.ndarray:
    """The label distribution [C] of the labelled positions of `label_ids` (any shape); sums to 1.

    Raises ValueError if there is no labelled position. A class never seen gets 0 and stays finite in
    the KL through `EPSILON`.
    """
    ids = np.asarray(label_ids).reshape(-1)
    ids = ids[ids != IGNORE_LABEL]
    if ids.size == 0:
        raise ValueError("label_prior: no labelled positions to count")
    return np.bincount(ids, minlength=num_labels).astype(np.float64) / ids.size


class DataDistributionKL:
    """KL(prior ‖ mean predicted distribution) over an unlabelled batch's word positions.

    Args:
      prior: [C] target label distribution (non-negative, sums to 1).
      options: reads `special_tokens` (the mean then covers [CLS] and [SEP] too).

    Like every loss in `ner.registry.UNLABELLED_LOSSES`, it is constructed as `cls(prior=..., options=...)`.
    """

    def __init__(self, prior: Sequence[float], options: KLOptions = KLOptions()):
        prior = np.asarray(prior, dtype=np.float64)
        if prior.ndim != 1 or np.any(prior < 0) or not np.isclose(prior.sum(), 1.0, atol=1e-6):
            raise ValueError(f"prior must be a non-negative distribution summing to 1, got {prior.tolist()}")
        self.prior = prior
        self.options = options

    def __call__(self, labels: tf.Tensor, probabilities: tf.Tensor, input_mask: Optional[tf.Tensor] = None
                 ) -> tf.Tensor:
        """Scalar loss from labels [B, T] (only as a word mask), probabilities [B, T, C] and, with
        `options.special_tokens`, input_mask [B, T] (`kl_mask`)."""
        mask = kl_mask(labels, input_mask, self.options.special_tokens, probabilities.dtype)[..., None]
        count = tf.reduce_sum(mask)
        mean_q = tf.reduce_sum(probabilities * mask, axis=[0, 1]) / tf.maximum(count, 1.0)
        prior = tf.constant(self.prior, probabilities.dtype)
        kl = tf.reduce_sum(prior * (tf.math.log(prior + EPSILON) - tf.math.log(mean_q + EPSILON)))
        return tf.where(count > 0, kl, tf.zeros_like(kl))


def confidence_target(probabilities: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """DEC's sharpened target [B, T, C]: p_ij ∝ q_ij² / f_j with f_j = Σ_i q_ij over masked-in i.

    Args:
      probabilities: [B, T, C] q.
      mask: [B, T] 1.0 at word positions.
    """
    mask = mask[..., None]
    frequency = tf.reduce_sum(probabilities * mask, axis=[0, 1])
    weight = tf.square(probabilities) / (frequency + EPSILON)
    return weight / (tf.reduce_sum(weight, axis=-1, keepdims=True) + EPSILON)


class ConfidenceKL:
    """KL(target ‖ q) with DEC's target over an unlabelled batch's word positions: by default held fixed and
    averaged; `options` may add [CLS]/[SEP], differentiate the target and sum (seed 001's choices).

    `prior` is accepted for the common constructor of `ner.registry.UNLABELLED_LOSSES` and not read: DEC's
    target comes from the batch's own predictions.
    """

    def __init__(self, prior: Optional[Sequence[float]] = None, options: KLOptions = KLOptions()):
        del prior
        self.options = options

    def __call__(self, labels: tf.Tensor, probabilities: tf.Tensor, input_mask: Optional[tf.Tensor] = None
                 ) -> tf.Tensor:
        """Scalar loss from labels [B, T] (only as a word mask), probabilities [B, T, C] and, with
        `options.special_tokens`, input_mask [B, T] (`kl_mask`)."""
        mask = kl_mask(labels, input_mask, self.options.special_tokens, probabilities.dtype)
        target = confidence_target(probabilities, mask)
        if self.options.confidence_stop_gradient:
            target = tf.stop_gradient(target)
        per_position = tf.reduce_sum(target * (tf.math.log(target + EPSILON) - tf.math.log(probabilities + EPSILON)),
                                     axis=-1)  # [B, T]
        total = tf.reduce_sum(per_position * mask)
        if self.options.confidence_reduction == "sum":
            return total
        return tf.math.divide_no_nan(total, tf.reduce_sum(mask))


class WeightedSum:
    """Σ_k w_k · loss_k(labels, probabilities): combines KL losses for one unlabelled step."""

    def __init__(self, losses: Sequence, weights: Sequence[float]):
        if len(losses) != len(weights) or not losses:
            raise ValueError("WeightedSum needs one weight per loss and at least one loss")
        self.losses, self.weights = tuple(losses), tuple(float(w) for w in weights)

    def __call__(self, labels: tf.Tensor, probabilities: tf.Tensor, input_mask: Optional[tf.Tensor] = None
                 ) -> tf.Tensor:
        return tf.add_n([w * loss(labels, probabilities, input_mask) for loss, w in zip(self.losses, self.weights)])


def unlabelled_loss(names: Sequence[str], weights: Sequence[float], prior: Sequence[float],
                    options: KLOptions = KLOptions()) -> WeightedSum:
    """The weighted sum of the unlabelled losses `names` (`semi_supervised.losses`), each built with the
    label distribution `prior` [C] and `options`; ConfigError for an unknown name."""
    classes = [registry.resolve(registry.lookup(registry.UNLABELLED_LOSSES, name, "unlabelled loss")) for name in names]
    return WeightedSum([cls(prior=prior, options=options) for cls in classes], weights)
