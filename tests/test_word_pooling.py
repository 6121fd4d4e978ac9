"""A word's vector as the mean over its word pieces (`ner.layers.word_pooling`), by hand."""
import numpy as np
import tensorflow as tf

from ner.layers.word_pooling import mean_over_word_pieces


def test_first_pieces_hold_their_words_mean_up_to_the_next_word_or_sep():
    # Row 0: [CLS] w0 w0 w1 w1 [SEP]; row 1: [CLS] w0 w1 [SEP] and two pads. Vector of piece t: (2t, 2t + 1).
    vectors = tf.constant(np.arange(24, dtype=np.float32).reshape(2, 6, 2, 1))  # [B, T, L, H]
    first_piece_mask = tf.constant([[0, 1, 0, 1, 0, 0], [0, 1, 1, 0, 0, 0]])
    input_mask = tf.constant([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    pooled = mean_over_word_pieces(vectors, first_piece_mask, input_mask).numpy()[..., 0]
    expected = vectors.numpy()[..., 0].copy()
    expected[0, 1] = [3, 4]  # mean of pieces 1, 2: (2, 3) and (4, 5)
    expected[0, 3] = [7, 8]  # mean of pieces 3, 4: (6, 7) and (8, 9); piece 5 is [SEP]
    np.testing.assert_array_equal(pooled, expected)  # row 1: one piece a word, unchanged
