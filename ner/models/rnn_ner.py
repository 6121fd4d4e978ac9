"""RNN taggers on word pieces: an embedding learned from scratch under a recurrent stack and the MLP head."""
from typing import Dict, Optional

import tensorflow as tf
import tf_keras as keras

from ner.config import EncoderConfig, ModelConfig
from ner.layers.recurrent import RecurrentStack
from ner.models.base import TokenClassifier
from ner.models.heads import MLPHead
from ner.models.word_shape import CasingEmbedding, append_casing, casing_embedding
from ner.registry import model_type
from ner.tagging import LabelMap


class RnnNER(TokenClassifier):
    """Word-piece embedding [+ casing embedding] → LSTM or GRU stack (masked on padding) → MLP head (model
    types bilstm, gru).

    Inputs: the BERT-style feature dict; `input_word_ids` and `input_mask` [B, T] int32 are read, and
    `word_casing` [B, T] with a casing embedding.
    Returns `(latent [B, T, latent_dim], probabilities [B, T, num_labels])`.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, rnn: RecurrentStack, head: MLPHead,
                 casing: Optional[CasingEmbedding] = None, name: str = "rnn_ner"):
        super().__init__(name=name)
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.rnn = rnn
        self.head = head
        self.casing = casing

    def head_inputs(self, inputs: Dict[str, tf.Tensor], training=None, sample_encoder: bool = False) -> tf.Tensor:
        embedded = append_casing(self.embedding(inputs["input_word_ids"]), inputs, self.casing)  # [B, T, E (+ casing)]
        return self.rnn(embedded, mask=inputs["input_mask"] > 0, training=training)  # [B, T, H]


def recurrent_stack(model: ModelConfig) -> RecurrentStack:
    """The `model.rnn` section's stack, with the cell `model.type` registers unless `model.rnn.cell` names one."""
    rnn = model.rnn
    return RecurrentStack(rnn.cell or model_type(model.type).rnn_cell, rnn.units, rnn.num_layers, rnn.bidirectional,
                          rnn.dropout_rate)


def build_rnn_ner(model: ModelConfig, encoder: EncoderConfig, head: MLPHead, num_labels: int, vocab_size: int,
                  label_map: Optional[LabelMap]) -> RnnNER:
    """Model types bilstm and gru (the builder protocol: `ner.registry.ModelType`)."""
    return RnnNER(vocab_size, model.embedding_dim, recurrent_stack(model), head, casing_embedding(model.casing_dim))
