"""Character ids of each word, for a character CNN beside an uncased encoder (`model.char_cnn_filters`).

The casing class (`ner.casing`) and the lexical templates (`ner.lexical`) give a model fixed views of a
word's spelling; a character CNN (Ma & Hovy 2016; Lample et al. 2016 use a BiLSTM) learns its own from
the characters, cased, as written. Each word becomes its first `MAX_WORD_CHARS` Unicode characters, each
character the id 1 + (code point mod (NUM_CHAR_IDS - 1)), so that ASCII and Latin-1 keep ids of their
own; id 0 is padding. One TensorFlow function computes them for the featurizer and the serving graph
alike, so training and serving see the same ids.
"""
import tensorflow as tf

CHAR_IDS = "char_ids"  # the feature name: [B, T, MAX_WORD_CHARS] int32, on each word's first piece
MAX_WORD_CHARS = 20
NUM_CHAR_IDS = 512
PADDING = 0


def char_ids_in_graph(words: tf.Tensor) -> tf.Tensor:
    """Character ids of words.

    Args:
      words: tf.string [N].
    Returns:
      int32 [N, MAX_WORD_CHARS]: row n holds the ids of word n's first characters, then `PADDING`.
    """
    code_points = tf.strings.unicode_decode(words, "UTF-8", errors="replace")  # [N, (chars)] int32
    ids = code_points % (NUM_CHAR_IDS - 1) + 1
    return tf.cast(ids.to_tensor(PADDING, shape=[None, MAX_WORD_CHARS]), tf.int32)
