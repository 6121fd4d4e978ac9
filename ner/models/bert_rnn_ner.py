"""BERT under a recurrent head: BERT + GRU (softmax per piece) and BERT + BiLSTM + CRF (over the words).

The encoder is a TF-Hub BERT layer, fine-tuned end to end when it was loaded with `trainable=True`.
"""
from typing import Dict, Optional

import tensorflow as tf
import tf_keras as keras

from ner.config import EncoderConfig, ModelConfig
from ner.layers.crf import CRF
from ner.layers.recurrent import RecurrentStack
from ner.models.base import TokenClassifier, call_encoder
from ner.models.bert_ner import crf_layer, load_encoder_layers
from ner.models.crf_output import CrfOutput
from ner.models.heads import MLPHead
from ner.models.layer_mix import combine_layers, stack_encoder_layers
from ner.models.rnn_ner import recurrent_stack
from ner.models.word_shape import CasingEmbedding, LexicalScores, append_casing, casing_embedding, lexical_scores
from ner.tagging import LabelMap


class BertRnnNER(TokenClassifier):
    """Encoder (last layer, or a learned mix of all layers) → recurrent stack (masked on padding) → MLP
    head, per word piece.

    Inputs: dict of int32 `input_word_ids`, `input_mask`, `input_type_ids`, each [B, T]; other entries
    are not passed to the encoder.
    Returns `(latent [B, T, latent_dim], probabilities [B, T, num_labels])`.
    """

    def __init__(self, encoder: keras.layers.Layer, rnn: RecurrentStack, head: MLPHead,
                 layer_mix: Optional[keras.layers.Layer] = None, casing: Optional[CasingEmbedding] = None,
                 name: str = "bert_rnn_ner"):
        super().__init__(name, encoder)
        self.rnn = rnn
        self.head = head
        self.layer_mix = layer_mix
        self.casing = casing

    def head_inputs(self, inputs: Dict[str, tf.Tensor], training=None, sample_encoder: bool = False) -> tf.Tensor:
        """The recurrent stack's output [B, T, H]; with `sample_encoder` the stack drops out too."""
        encoded = call_encoder(self.encoder, inputs, training=training, sample_dropout=sample_encoder)
        sequence = combine_layers(stack_encoder_layers(encoded, self.layer_mix is not None), self.layer_mix)
        sequence = append_casing(sequence, inputs, self.casing)
        return self.rnn(sequence, mask=inputs["input_mask"] > 0,
                        training=True if sample_encoder else training)


class BertRnnCrfNER(CrfOutput, BertRnnNER):
    """`BertRnnNER` whose head gives emission scores to a CRF over the words (`CrfOutput`); it owns its
    loss and decodes with Viterbi. `head` must be built with `softmax=False`."""

    def __init__(self, encoder: keras.layers.Layer, rnn: RecurrentStack, head: MLPHead, crf: CRF,
                 layer_mix: Optional[keras.layers.Layer] = None, casing: Optional[CasingEmbedding] = None,
                 lexical: Optional[LexicalScores] = None, name: str = "bert_rnn_crf_ner"):
        super().__init__(encoder, rnn, head, layer_mix, casing, name=name)
        self.crf = crf
        self.lexical = lexical
        self.word_rnn = None  # its recurrent stack reads the word pieces, in `head_inputs`
        self.check_scores_head()


def build_bert_rnn_ner(model: ModelConfig, encoder: EncoderConfig, head: MLPHead, num_labels: int, vocab_size: int,
                       label_map: Optional[LabelMap]) -> BertRnnNER:
    """Model type bert_gru (the builder protocol: `ner.registry.ModelType`)."""
    loaded, layer_mix = load_encoder_layers(model, encoder)
    return BertRnnNER(loaded, recurrent_stack(model), head, layer_mix, casing_embedding(model.casing_dim))


def build_bert_rnn_crf_ner(model: ModelConfig, encoder: EncoderConfig, head: MLPHead, num_labels: int,
                           vocab_size: int, label_map: Optional[LabelMap]) -> BertRnnCrfNER:
    """Model type bert_bilstm_crf (the builder protocol: `ner.registry.ModelType`), its CRF constrained
    by `label_map`'s scheme when `model.crf_constraints` is set."""
    loaded, layer_mix = load_encoder_layers(model, encoder)
    return BertRnnCrfNER(loaded, recurrent_stack(model), head, crf_layer(model, num_labels, label_map), layer_mix,
                         casing_embedding(model.casing_dim), lexical_scores(model.lexical_features, num_labels))
