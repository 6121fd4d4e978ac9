"""RNN taggers on word pieces: an embedding learned from scratch under a recurrent stack and the MLP head."""
from typing import Dict

import tensorflow as tf
import tf_keras as keras

from ner.layers.recurrent import RecurrentStack
from ner.models.base import TokenClassifier
from ner.models.heads import MLPHead


class RnnNER(TokenClassifier):
    """Word-piece embedding → LSTM or GRU stack (masked on padding) → MLP head (model types bilstm, gru).

    Inputs: the BERT-style feature dict; `input_word_ids` and `input_mask` [B, T] int32 are read.
    Returns `(latent [B, T, latent_dim], probabilities [B, T, num_labels])`.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, rnn: RecurrentStack, head: MLPHead,
                 name: str = "rnn_ner"):
        super().__init__(name=name)
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.rnn = rnn
        self.head = head

    def head_inputs(self, inputs: Dict[str, tf.Tensor], training=None, sample_encoder: bool = False) -> tf.Tensor:
        embedded = self.embedding(inputs["input_word_ids"])  # [B, T, E]
        return self.rnn(embedded, mask=inputs["input_mask"] > 0, training=training)  # [B, T, H]
