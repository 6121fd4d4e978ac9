"""Lexical features: the hand-written word features of the classic CRF, as hashed ids a model can weigh.

A feature reads one template of one word — the lower-cased word, its last two or three characters, its
first two or three (lower-cased), or its collapsed shape ("McDonald's" → "XxXx'x") — at an offset from the
word being tagged, or two such values joined (a word bigram); a sentence boundary reads as `<s>` / `</s>`.
Each feature's name and value are hashed (FarmHash fingerprint, `tf.strings.to_hash_bucket_fast`) into
`NUM_BUCKETS` ids, one id per feature and word. A CRF model with `model.lexical_features` learns one score
per id and label and adds the word's scores to its emission scores.

`model.lexical_templates` chooses the feature set (`TEMPLATE_SETS`):
  * `crf`: the feature CRF's — lower-cased word, suffixes of 2 and 3, shape — for the word and the words on
    either side (12 ids a word). A linear-chain CRF over them is the feature-CRF reference
    (`ner.baselines.feature_crf`), so the model contains that reference and adds the encoder to it.
  * `extended`: those, plus the word's prefixes of 2 and 3, the lower-cased word and shape two words away on
    either side, and the word bigrams with each neighbour (20 ids a word).

The ids are computed by TensorFlow string ops in one function, `lexical_ids_in_graph`, which both the
featurizer and the serving graph run, so training and serving see the same ids.
"""
from typing import Dict, Tuple

import tensorflow as tf

LEXICAL_IDS = "lexical_ids"  # the feature name: [B, T, K] int32, on each word's first piece
NUM_BUCKETS = 1 << 18
Feature = Tuple[Tuple[int, str], ...]  # the (offset, template) values a feature joins
_CRF_FEATURES: Tuple[Feature, ...] = tuple(((offset, template),) for offset in (-1, 0, 1)
                                           for template in ("lower", "suffix2", "suffix3", "shape"))
TEMPLATE_SETS: Dict[str, Tuple[Feature, ...]] = {  # keys: `ner.registry.LEXICAL_TEMPLATE_SETS`
    "crf": _CRF_FEATURES,
    "extended": _CRF_FEATURES + (((0, "prefix2"),), ((0, "prefix3"),), ((-2, "lower"),), ((-2, "shape"),),
                                 ((2, "lower"),), ((2, "shape"),), ((-1, "lower"), (0, "lower")),
                                 ((0, "lower"), (1, "lower"))),
}


def num_lexical_ids(template_set: str) -> int:
    """K, the lexical ids of a word under `template_set`."""
    return len(TEMPLATE_SETS[template_set])


def _shape(words: tf.Tensor) -> tf.Tensor:
    shape = tf.strings.regex_replace(words, "[A-Z]+", "X")
    shape = tf.strings.regex_replace(shape, "[a-z]+", "x")
    return tf.strings.regex_replace(shape, "[0-9]+", "d")


# template → its values [N], from [N] string words and their lower-cased forms (computed once)
# ('.' in a pattern is one UTF-8 character)
_TEMPLATE_VALUES = {
    "lower": lambda words, lower: lower,
    "suffix2": lambda words, lower: tf.strings.regex_replace(words, "^(?s).*?(.{0,2})$", r"\1"),
    "suffix3": lambda words, lower: tf.strings.regex_replace(words, "^(?s).*?(.{0,3})$", r"\1"),
    "shape": lambda words, lower: _shape(words),
    "prefix2": lambda words, lower: tf.strings.regex_replace(lower, "^(?s)(.{0,2}).*$", r"\1"),
    "prefix3": lambda words, lower: tf.strings.regex_replace(lower, "^(?s)(.{0,3}).*$", r"\1"),
}


def lexical_ids_in_graph(words: tf.RaggedTensor, template_set: str = "crf") -> tf.Tensor:
    """Hashed lexical feature ids of every word.

    Args:
      words: tf.string ragged [S, (W)], the words of S sentences.
      template_set: a key of `TEMPLATE_SETS`.
    Returns:
      int32 [N, K] for the N words in row-major order, K = `num_lexical_ids(template_set)`: column k holds
      the k-th feature of the set, hashed from "offset:template[|offset:template]:value[|value]" (`<s>` /
      `</s>` past the sentence's ends).
    """
    features = TEMPLATE_SETS[template_set]
    used = sorted({template for feature in features for _, template in feature})  # the templates it reads
    lower = tf.strings.lower(words.flat_values, encoding="utf-8")  # [N]
    values = tf.stack([_TEMPLATE_VALUES[name](words.flat_values, lower) for name in used], axis=1)  # [N, len(used)]
    index = tf.range(tf.shape(values, out_type=tf.int64)[0])  # [N]
    sentence = words.value_rowids()  # [N]
    position = index - tf.gather(words.row_starts(), sentence)  # [N] index of the word in its sentence
    length = tf.gather(words.row_lengths(), sentence)  # [N] words in its sentence
    last = tf.maximum(tf.size(index, tf.int64) - 1, 0)
    at_offset = {}  # offset → [N, len(used)], each word's neighbour's values at that offset
    for offset in sorted({offset for feature in features for offset, _ in feature}):
        inside = (position + offset >= 0) & (position + offset < length)  # [N]
        neighbour = tf.gather(values, tf.clip_by_value(index + offset, 0, last))
        at_offset[offset] = tf.where(inside[:, None], neighbour, "<s>" if offset < 0 else "</s>")
    keys = []
    for feature in features:
        name = "|".join(f"{offset}:{template}" for offset, template in feature)
        parts = [at_offset[offset][:, used.index(template)] for offset, template in feature]
        keys.append(tf.strings.join([name + ":", tf.strings.reduce_join(tf.stack(parts, axis=1), axis=1,
                                                                           separator="|")]))
    return tf.cast(tf.strings.to_hash_bucket_fast(tf.stack(keys, axis=1), NUM_BUCKETS), tf.int32)
