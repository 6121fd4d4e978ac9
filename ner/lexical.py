"""Lexical features: the hand-written word features of the classic CRF, as hashed ids a model can weigh.

For every word, four templates — the lower-cased word, its last two and last three characters, and its
collapsed shape ("McDonald's" → "XxXx'x") — are read for the word itself and for the words on either
side (a sentence boundary reads as `<s>` / `</s>`), and each (offset, template, value) string is hashed
(FarmHash fingerprint, `tf.strings.to_hash_bucket_fast`) into `NUM_BUCKETS` ids: `NUM_LEXICAL_IDS` ids per
word. A CRF model with `model.lexical_features` learns one score per id and label and adds the word's
scores to its emission scores: a linear-chain CRF over these features is the feature-CRF reference
(`ner.baselines.feature_crf`), so the model contains that reference and adds the encoder to it.

The ids are computed by TensorFlow string ops in one function, `lexical_ids_in_graph`, which both the
featurizer and the serving graph run, so training and serving see the same ids.
"""
import tensorflow as tf

LEXICAL_IDS = "lexical_ids"  # the feature name: [B, T, NUM_LEXICAL_IDS] int32, on each word's first piece
NUM_BUCKETS = 1 << 18
TEMPLATES = ("lower", "suffix2", "suffix3", "shape")
OFFSETS = (-1, 0, 1)
NUM_LEXICAL_IDS = len(TEMPLATES) * len(OFFSETS)


def _templates(words: tf.Tensor) -> tf.Tensor:
    """[N] string words → [N, len(TEMPLATES)] string template values."""
    shape = tf.strings.regex_replace(words, "[A-Z]+", "X")
    shape = tf.strings.regex_replace(shape, "[a-z]+", "x")
    shape = tf.strings.regex_replace(shape, "[0-9]+", "d")
    return tf.stack([tf.strings.lower(words, encoding="utf-8"),
                     tf.strings.regex_replace(words, "^(?s).*?(.{0,2})$", r"\1"),  # '.' is one UTF-8 character
                     tf.strings.regex_replace(words, "^(?s).*?(.{0,3})$", r"\1"),
                     shape], axis=1)


def lexical_ids_in_graph(words: tf.RaggedTensor) -> tf.Tensor:
    """Hashed lexical feature ids of every word.

    Args:
      words: tf.string ragged [S, (W)], the words of S sentences.
    Returns:
      int32 [N, NUM_LEXICAL_IDS] for the N words in row-major order; column o·4 + t holds template t of
      the word at offset OFFSETS[o] (`<s>` / `</s>` past the sentence's ends).
    """
    values = _templates(words.flat_values)  # [N, 4]
    index = tf.range(tf.shape(values, out_type=tf.int64)[0])  # [N]
    sentence = words.value_rowids()  # [N]
    position = index - tf.gather(words.row_starts(), sentence)  # [N] index of the word in its sentence
    length = tf.gather(words.row_lengths(), sentence)  # [N] words in its sentence
    columns = []
    for offset in OFFSETS:
        inside = (position + offset >= 0) & (position + offset < length)  # [N]
        neighbour = tf.gather(values, tf.clip_by_value(index + offset, 0, tf.maximum(tf.size(index, tf.int64) - 1, 0)))
        columns.append(tf.where(inside[:, None], neighbour, "<s>" if offset < 0 else "</s>"))  # [N, 4]
    values = tf.concat(columns, axis=1)  # [N, NUM_LEXICAL_IDS]
    prefixes = tf.constant([f"{offset}:{name}:" for offset in OFFSETS for name in TEMPLATES])
    keys = tf.strings.join([tf.broadcast_to(prefixes, tf.shape(values)), values])
    return tf.cast(tf.strings.to_hash_bucket_fast(keys, NUM_BUCKETS), tf.int32)
