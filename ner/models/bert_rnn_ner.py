"""BERT under a recurrent head: BERT + GRU (softmax per piece) and BERT + BiLSTM + CRF (over the words).

The encoder is a TF-Hub BERT layer, fine-tuned end to end when it was loaded with `trainable=True`.
"""
from typing import Dict, Optional, Tuple

import tensorflow as tf
import tf_keras as keras

from ner.config import EncoderConfig, ModelConfig
from ner.layers.crf import CRF
from ner.layers.recurrent import RecurrentStack
from ner.models.base import TokenClassifier, call_encoder
from ner.models.bert_ner import load_encoder_layers
from ner.models.heads import MLPHead
from ner.models.layer_mix import ScalarMix, combine_layers, stack_encoder_layers
from ner.models.rnn_ner import recurrent_stack
from ner.tagging import FIRST_PIECE_MASK, LabelMap


class BertRnnNER(TokenClassifier):
    """Encoder (last layer, or a learned mix of all layers) → recurrent stack (masked on padding) → MLP
    head, per word piece.

    Inputs: dict of int32 `input_word_ids`, `input_mask`, `input_type_ids`, each [B, T]; other entries
    are not passed to the encoder.
    Returns `(latent [B, T, latent_dim], probabilities [B, T, num_labels])`.
    """

    def __init__(self, encoder: keras.layers.Layer, rnn: RecurrentStack, head: MLPHead,
                 layer_mix: Optional[ScalarMix] = None, name: str = "bert_rnn_ner"):
        super().__init__(name, encoder)
        self.rnn = rnn
        self.head = head
        self.layer_mix = layer_mix

    def head_inputs(self, inputs: Dict[str, tf.Tensor], training=None, sample_encoder: bool = False) -> tf.Tensor:
        """The recurrent stack's output [B, T, H]; with `sample_encoder` the stack drops out too."""
        encoded = call_encoder(self.encoder, inputs, training=training, sample_dropout=sample_encoder)
        sequence = combine_layers(stack_encoder_layers(encoded, self.layer_mix is not None), self.layer_mix)
        return self.rnn(sequence, mask=inputs["input_mask"] > 0,
                        training=True if sample_encoder else training)

    def head_outputs(self, inputs: Dict[str, tf.Tensor], training=None) -> Tuple[tf.Tensor, tf.Tensor]:
        """The head's `(latent [B, T, L], outputs [B, T, C])`: probabilities, or scores for a CRF."""
        return self.head(self.head_inputs(inputs, training=training), training=training)


class BertRnnCrfNER(BertRnnNER):
    """`BertRnnNER` whose head gives emission scores to a CRF over the words; it owns its loss.

    Inputs: as `BertRnnNER`, plus `first_piece_mask` [B, T] int32 (1 on each word's first piece;
    `make_dataset(..., first_piece_mask=True)`). The CRF runs over the first pieces only, gathered into
    a compact word sequence (`ner.layers.crf`), so its transitions connect consecutive words.
    Returns `(latent [B, T, latent_dim], probabilities [B, T, num_labels])`: the CRF's per-word marginal
    probabilities (forward-backward) on first pieces and 1 / C elsewhere. Their argmax is the
    max-marginal decoding the evaluator scores; `decode` gives the Viterbi path instead.

    `head` must be built with `softmax=False`.
    """

    def __init__(self, encoder: keras.layers.Layer, rnn: RecurrentStack, head: MLPHead, crf: CRF,
                 layer_mix: Optional[ScalarMix] = None, name: str = "bert_rnn_crf_ner"):
        if head.softmax:
            raise ValueError("the head under a CRF must give scores: build it with softmax=False")
        super().__init__(encoder, rnn, head, layer_mix, name=name)
        self.crf = crf

    def probabilities_from_head(self, outputs: tf.Tensor, inputs: Dict[str, tf.Tensor], copies: int = 1) -> tf.Tensor:
        """The CRF's marginals [copies·B, T, C] from emission scores of `copies` stacked copies of the batch."""
        return self.crf(outputs, tf.tile(inputs[FIRST_PIECE_MASK], [copies, 1]))

    def forward_loss(self, inputs: Dict[str, tf.Tensor], labels: tf.Tensor,
                     training=None) -> Tuple[tf.Tensor, tf.Tensor]:
        """The CRF's negative log-likelihood per word (scalar) and the marginals [B, T, C], from one pass.

        labels: [B, T] int32, a label id on each first piece and `IGNORE_LABEL` elsewhere.
        """
        _, scores = self.head_outputs(inputs, training=training)
        first_pieces = inputs[FIRST_PIECE_MASK]
        return self.crf.loss(scores, first_pieces, labels), self.crf(scores, first_pieces)

    def decode(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        """Viterbi label ids [B, T] int32 on first pieces, `IGNORE_LABEL` elsewhere (dropout off)."""
        _, scores = self.head_outputs(inputs, training=False)
        return self.crf.decode(scores, inputs[FIRST_PIECE_MASK])


def build_bert_rnn_ner(model: ModelConfig, encoder: EncoderConfig, head: MLPHead, num_labels: int, vocab_size: int,
                       label_map: Optional[LabelMap]) -> BertRnnNER:
    """Model type bert_gru (the builder protocol: `ner.registry.ModelType`)."""
    loaded, layer_mix = load_encoder_layers(model, encoder)
    return BertRnnNER(loaded, recurrent_stack(model), head, layer_mix)


def build_bert_rnn_crf_ner(model: ModelConfig, encoder: EncoderConfig, head: MLPHead, num_labels: int,
                           vocab_size: int, label_map: Optional[LabelMap]) -> BertRnnCrfNER:
    """Model type bert_bilstm_crf (the builder protocol: `ner.registry.ModelType`), its CRF constrained
    by `label_map`'s scheme when `model.crf_constraints` is set."""
    allowed = None
    if model.crf_constraints:
        if label_map is None or label_map.num_labels != num_labels:
            raise ValueError(f"bert_bilstm_crf with model.crf_constraints needs the label map of its {num_labels} "
                             f"labels, got {label_map}")
        allowed = label_map.allowed_transitions()
    loaded, layer_mix = load_encoder_layers(model, encoder)
    return BertRnnCrfNER(loaded, recurrent_stack(model), head, CRF(num_labels, allowed), layer_mix)
