"""Word shape for an uncased encoder: a small casing class per word, computed the same way in NumPy
(featurizer) and in the graph (serving).

The default encoder lower-cases its input, so "Apple", "apple" and "APPLE" reach it as the same pieces.
Capitalisation is the strongest single cue for names in news text; a model with `model.casing_dim` > 0
embeds each word's class and reads it next to the encoder's vector (Lample et al. 2016 and Ma & Hovy 2016
feed character-level shape the same way).

The classes use ASCII character ranges only, so Python's `re` and TensorFlow's RE2 agree on every word;
a word with other letters (e.g. "Zürich") falls to the first class whose pattern it fits, or `other`.
Id 0 is reserved for positions that are not a word's first piece ([CLS], [SEP], continuation pieces,
padding).
"""
import re
from typing import Sequence

import numpy as np

WORD_CASING = "word_casing"  # the feature name: [B, T] int32 casing ids
NOT_A_WORD = 0
# (name, RE2/Python pattern matched against the whole word), tried in order; ids start at 1.
CASING_CLASSES = (
    ("lower", r"[a-z]+"),
    ("title", r"[A-Z][a-z]+"),
    ("upper", r"[A-Z][A-Z]+"),
    ("capital_letter", r"[A-Z]"),
    ("mixed_case", r"[A-Za-z]+"),
    ("digits", r"[0-9]+"),
    ("has_digit", r".*[0-9].*"),
    ("no_letter_or_digit", r"[^A-Za-z0-9]+"),
    ("starts_capital", r"[A-Z].*"),
)
OTHER = len(CASING_CLASSES) + 1
NUM_CASING_IDS = OTHER + 1  # embedding rows: NOT_A_WORD, the classes, OTHER

_COMPILED = tuple(re.compile(pattern, re.DOTALL) for _, pattern in CASING_CLASSES)


def casing_id(word: str) -> int:
    """The casing class id of `word`, in 1 .. OTHER."""
    for index, pattern in enumerate(_COMPILED):
        if pattern.fullmatch(word):
            return index + 1
    return OTHER


def casing_ids(words: Sequence[str]) -> np.ndarray:
    """[len(words)] int32 casing class ids."""
    return np.fromiter((casing_id(word) for word in words), dtype=np.int32, count=len(words))


def casing_ids_in_graph(words):
    """The same ids computed by TensorFlow: `words` tf.string [N] → int32 [N] (used by the serving graph)."""
    import tensorflow as tf

    ids = tf.fill(tf.shape(words), tf.constant(OTHER, tf.int32))
    for index in reversed(range(len(CASING_CLASSES))):  # the first matching class wins
        matches = tf.strings.regex_full_match(words, "(?s)" + CASING_CLASSES[index][1])
        ids = tf.where(matches, tf.constant(index + 1, tf.int32), ids)
    return ids
