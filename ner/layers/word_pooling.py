"""A word's vector from its word pieces: its first piece's (the default), or the mean over all its pieces
(`model.word_pooling: mean`).

A word's pieces run from its first piece up to the next word's first piece, or up to `[SEP]` for the last
word of a row. The same function averages in the live model's graph and in the feature cache when it
stores a row's encoder layers, so a model trained on cached features tags live text the same way.
"""
import tensorflow as tf


def mean_over_word_pieces(vectors: tf.Tensor, first_piece_mask: tf.Tensor, input_mask: tf.Tensor) -> tf.Tensor:
    """The vectors with each word's first piece holding the mean over the word's pieces; every other
    position keeps its own vector (nothing reads it).

    Args:
      vectors: [B, T, ...] float, one value per word piece (e.g. [B, T, H], or [B, T, L, H] for every layer).
      first_piece_mask: [B, T], non-zero on each word's first piece.
      input_mask: [B, T], non-zero on the row's pieces, `[CLS]` and `[SEP]` included.
    Returns:
      float, the shape of `vectors`.
    """
    shape = tf.shape(vectors)
    rows, width = shape[0], shape[1]
    flat = tf.reshape(vectors, [rows, width, -1])  # [B, T, D]
    is_first = tf.cast(first_piece_mask, tf.int32) > 0  # [B, T]
    word = tf.cumsum(tf.cast(is_first, tf.int32), axis=1) - 1  # [B, T], -1 before the row's first word
    length = tf.reduce_sum(tf.cast(tf.cast(input_mask, tf.int32) > 0, tf.int32), axis=1)  # [B], [SEP] included
    inside = (word >= 0) & (tf.range(width)[None, :] < (length - 1)[:, None])  # [B, T], a word's piece
    spare = rows * width  # the segment of [CLS], [SEP] and padding
    segment = tf.where(inside, tf.range(rows)[:, None] * width + word, spare)  # [B, T]
    sums = tf.math.unsorted_segment_sum(flat, segment, spare + 1)  # [B·T + 1, D]
    counts = tf.math.unsorted_segment_sum(tf.ones([rows, width, 1], flat.dtype), segment, spare + 1)
    means = tf.gather(sums / tf.maximum(counts, 1), segment)  # [B, T, D], each piece its word's mean
    return tf.reshape(tf.where(is_first[..., None], means, flat), shape)
