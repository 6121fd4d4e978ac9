"""Word-level features beside the encoder: casing classes (what an uncased encoder cannot see, `ner.casing`)
and the scores of hashed lexical features for a CRF (`ner.lexical`)."""
from typing import Dict, Optional

import tensorflow as tf
import tf_keras as keras

from ner.casing import NUM_CASING_IDS, WORD_CASING
from ner.lexical import NUM_BUCKETS


class CasingEmbedding(keras.layers.Layer):
    """Appends a learned embedding of each position's casing class to its features.

    Maps features [B, T, D] and casing ids [B, T] int32 (`ner.casing`; 0 off first pieces) to
    [B, T, D + dim].
    """

    def __init__(self, dim: int, name: str = "casing_embedding"):
        super().__init__(name=name)
        self.dim = dim
        self.embedding = keras.layers.Embedding(NUM_CASING_IDS, dim, name="casing_ids")

    def call(self, features: tf.Tensor, casing_ids: tf.Tensor) -> tf.Tensor:
        return tf.concat([features, tf.cast(self.embedding(casing_ids), features.dtype)], axis=-1)


def append_casing(features: tf.Tensor, inputs: Dict[str, tf.Tensor], casing: Optional[CasingEmbedding]) -> tf.Tensor:
    """`features` [B, T, D] with the casing embedding of `inputs["word_casing"]` appended, or unchanged
    when the model has none."""
    return features if casing is None else casing(features, inputs[WORD_CASING])


def casing_embedding(dim: int) -> Optional[CasingEmbedding]:
    """The layer for `model.casing_dim`: None for 0 (no casing features)."""
    return CasingEmbedding(dim) if dim > 0 else None


class LexicalScores(keras.layers.Layer):
    """A learned score per hashed lexical feature id (`ner.lexical`) and label, summed over a word's ids:
    the linear part of a feature CRF. Maps ids [B, T, K] int32 to scores [B, T, num_labels]; starts at 0."""

    def __init__(self, num_labels: int, name: str = "lexical_scores"):
        super().__init__(name=name)
        self.num_labels = num_labels
        self.weights_per_id = keras.layers.Embedding(NUM_BUCKETS, num_labels, embeddings_initializer="zeros",
                                                     name="lexical_weights")

    def call(self, lexical_ids: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(self.weights_per_id(lexical_ids), axis=2)


def lexical_scores(enabled: bool, num_labels: int) -> Optional[LexicalScores]:
    """The layer for `model.lexical_features`: None when off."""
    return LexicalScores(num_labels) if enabled else None
