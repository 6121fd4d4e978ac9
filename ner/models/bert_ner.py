"""BERT NER: a TF-Hub BERT encoder (frozen or fine-tuned) under the MLP head."""
from typing import Dict, Tuple

import tensorflow as tf
import tf_keras as keras

from ner.models.heads import MLPHead


class BertNER(keras.Model):
    """Encoder `sequence_output` → MLP head, per word piece.

    Inputs: dict of int32 `input_word_ids`, `input_mask`, `input_type_ids`, each [B, T].
    Returns `(latent [B, T, latent_dim], probabilities [B, T, num_labels])`.

    `encoder` is any layer with the TF-Hub BERT interface (normally `hub.KerasLayer`); whether it is
    fine-tuned is decided when that layer is made (`trainable=`), not here.
    """

    def __init__(self, encoder: keras.layers.Layer, head: MLPHead, name: str = "bert_ner"):
        super().__init__(name=name)
        self.encoder = encoder
        self.head = head

    def call(self, inputs: Dict[str, tf.Tensor], training=None) -> Tuple[tf.Tensor, tf.Tensor]:
        encoded = self.encoder(inputs, training=training)
        return self.head(encoded["sequence_output"], training=training)
