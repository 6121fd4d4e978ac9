"""Word-level features beside the encoder: casing classes (what an uncased encoder cannot see, `ner.casing`),
a character CNN over the word's spelling (`ner.chars`) and the scores of hashed lexical features for a CRF
(`ner.lexical`)."""
from typing import Dict, Optional

import tensorflow as tf
import tf_keras as keras

from ner.casing import NUM_CASING_IDS, WORD_CASING
from ner.chars import CHAR_IDS, NUM_CHAR_IDS, PADDING
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


class CharCNN(keras.layers.Layer):
    """Appends character-CNN features of each position's word to its features (Ma & Hovy 2016's design:
    30-d character embeddings, dropout, one convolution of width 3, max-pooled over the characters).

    Maps features [B, T, D] and character ids [B, T, C] int32 (`ner.chars`; all `PADDING` off first
    pieces) to [B, T, D + filters]; a position without characters gets zeros.
    """

    CHAR_DIM, WIDTH, DROPOUT_RATE = 30, 3, 0.5

    def __init__(self, filters: int, name: str = "char_cnn"):
        super().__init__(name=name)
        self.filters = filters
        self.embedding = keras.layers.Embedding(NUM_CHAR_IDS, self.CHAR_DIM, name="char_embedding")
        self.dropout = keras.layers.Dropout(self.DROPOUT_RATE)
        self.convolution = keras.layers.Conv1D(filters, self.WIDTH, padding="same", activation="tanh",
                                               name="char_convolution")

    def call(self, features: tf.Tensor, char_ids: tf.Tensor, training=None) -> tf.Tensor:
        shape = tf.shape(char_ids)
        chars = tf.reshape(char_ids, [-1, shape[2]])  # [B·T, C]
        present = chars != PADDING  # [B·T, C]
        windows = self.convolution(self.dropout(self.embedding(chars), training=training))  # [B·T, C, F]
        pooled = tf.reduce_max(tf.where(present[:, :, None], windows, tf.cast(-2.0, windows.dtype)), axis=1)
        pooled = tf.where(tf.reduce_any(present, axis=1, keepdims=True), pooled, tf.zeros_like(pooled))  # [B·T, F]
        return tf.concat([features, tf.cast(tf.reshape(pooled, [shape[0], shape[1], self.filters]), features.dtype)],
                         axis=-1)


def append_chars(features: tf.Tensor, inputs: Dict[str, tf.Tensor], chars: Optional[CharCNN], training=None
                 ) -> tf.Tensor:
    """`features` [B, T, D] with the character-CNN features of `inputs["char_ids"]` appended, or unchanged
    when the model has no character CNN."""
    return features if chars is None else chars(features, inputs[CHAR_IDS], training=training)


def char_cnn(filters: int) -> Optional[CharCNN]:
    """The layer for `model.char_cnn_filters`: None for 0 (no character CNN)."""
    return CharCNN(filters) if filters > 0 else None


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
