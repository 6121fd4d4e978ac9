"""Token-level losses and statistics over labelled positions.

Labels use the package-wide ignore value `IGNORE_LABEL` (-1) for positions that are not a word's first
word piece ([CLS], [SEP], continuation pieces, padding); those never enter a loss or a metric.
"""
from typing import Dict

import tensorflow as tf

from ner.tagging import IGNORE_LABEL
EPSILON = 1e-7


def masked_cross_entropy(labels: tf.Tensor, probabilities: tf.Tensor) -> tf.Tensor:
    """Mean negative log-likelihood over labelled positions.

    Args:
      labels: [B, T] int32, `IGNORE_LABEL` where no label applies.
      probabilities: [B, T, C] float, softmax outputs.
    Returns:
      A scalar; 0 when the batch has no labelled position.
    """
    mask = tf.cast(labels != IGNORE_LABEL, probabilities.dtype)
    safe_labels = tf.maximum(labels, 0)
    picked = tf.gather(probabilities, safe_labels, batch_dims=2)
    nll = -tf.math.log(tf.clip_by_value(picked, EPSILON, 1.0))
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
