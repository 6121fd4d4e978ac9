"""The baseline: a word-piece embedding learned from scratch under the MLP head."""
from typing import Dict, Optional

import tensorflow as tf
import tf_keras as keras

from ner.config import EncoderConfig, ModelConfig
from ner.models.base import TokenClassifier
from ner.models.heads import MLPHead
from ner.models.word_shape import CasingEmbedding, append_casing, casing_embedding
from ner.tagging import LabelMap


class BaselineNER(TokenClassifier):
    """Embedding [+ casing embedding] → MLP head; no context beyond the word piece itself.

    Inputs: the BERT-style feature dict; `input_word_ids` [B, T] int32 is read, and `word_casing` [B, T]
    with a casing embedding.
    Returns `(latent [B, T, latent_dim], probabilities [B, T, num_labels])`.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, head: MLPHead,
                 casing: Optional[CasingEmbedding] = None, name: str = "ner_baseline"):
        super().__init__(name=name)
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.head = head
        self.casing = casing

    def head_inputs(self, inputs: Dict[str, tf.Tensor], training=None, sample_encoder: bool = False) -> tf.Tensor:
        return append_casing(self.embedding(inputs["input_word_ids"]), inputs, self.casing)  # [B, T, E (+ casing)]


def build_baseline_ner(model: ModelConfig, encoder: EncoderConfig, head: MLPHead, num_labels: int, vocab_size: int,
                       label_map: Optional[LabelMap]) -> BaselineNER:
    """Model type ner_baseline (the builder protocol: `ner.registry.ModelType`): reads `model.embedding_dim`."""
    return BaselineNER(vocab_size, model.embedding_dim, head, casing_embedding(model.casing_dim))
