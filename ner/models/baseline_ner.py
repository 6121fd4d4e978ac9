"""The baseline: a word-piece embedding learned from scratch under the MLP head."""
from typing import Dict

import tensorflow as tf
import tf_keras as keras

from ner.models.base import TokenClassifier
from ner.models.heads import MLPHead


class BaselineNER(TokenClassifier):
    """Embedding → MLP head; no context beyond the word piece itself.

    Inputs: the BERT-style feature dict; only `input_word_ids` [B, T] int32 is read.
    Returns `(latent [B, T, latent_dim], probabilities [B, T, num_labels])`.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, head: MLPHead, name: str = "ner_baseline"):
        super().__init__(name=name)
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.head = head

    def head_inputs(self, inputs: Dict[str, tf.Tensor], training=None, sample_encoder: bool = False) -> tf.Tensor:
        return self.embedding(inputs["input_word_ids"])  # [B, T, E]
