"""BERT NER: a TF-Hub BERT encoder (frozen or fine-tuned) under the MLP head, optionally with casing
features beside the encoder's vectors (`model.casing_dim`) and a CRF over the words (type bert_crf).

Two models share the head (and the optional layer mix, casing embedding and CRF): `BertNER` runs the
encoder on word pieces, `WordFeatureNER` reads word vectors that a frozen encoder produced once (see
`ner.feature_cache`). With the same weights both give the same probabilities at every word's first piece.
"""
from typing import Dict, Optional, Tuple

import tensorflow as tf
import tf_keras as keras

from ner.config import EncoderConfig, ModelConfig
from ner.models.base import TokenClassifier, call_encoder
from ner.layers.crf import CRF
from ner.layers.recurrent import RecurrentStack
from ner.layers.word_pooling import mean_over_word_pieces
from ner.models.crf_output import CrfOutput
from ner.models.heads import MLPHead
from ner.models.layer_mix import combine_layers, layer_combiner, stack_encoder_layers
from ner.models.rnn_ner import recurrent_stack
from ner.models.word_shape import (CasingEmbedding, CharCNN, LexicalScores, append_casing, append_chars,
                                   casing_embedding, char_cnn, lexical_scores)
from ner.tagging import FIRST_PIECE_MASK, LabelMap

WORD_FEATURES = "word_features"


class BertNER(TokenClassifier):
    """Encoder → (last layer, or a learned mix of all layers) [+ casing embedding] [+ character CNN] → MLP
    head, per word piece.

    Inputs: dict of int32 `input_word_ids`, `input_mask`, `input_type_ids`, each [B, T], and, with a
    casing embedding, `word_casing` [B, T] (`ner.casing`), with a character CNN `char_ids` [B, T, C]
    (`ner.chars`). With `word_pooling="mean"`, each word's first piece reads the mean of the word's
    pieces' vectors (`ner.layers.word_pooling`), which needs `first_piece_mask` [B, T].
    Returns `(latent [B, T, latent_dim], probabilities [B, T, num_labels])`.

    `encoder` is any layer with the TF-Hub BERT interface (normally `hub.KerasLayer`); whether it is
    fine-tuned is decided when that layer is made (`trainable=`), not here.
    """

    def __init__(self, encoder: keras.layers.Layer, head: MLPHead,
                 layer_mix: Optional[keras.layers.Layer] = None, casing: Optional[CasingEmbedding] = None,
                 chars: Optional[CharCNN] = None, word_pooling: str = "first", name: str = "bert_ner"):
        super().__init__(name, encoder)
        self.head = head
        self.layer_mix = layer_mix
        self.casing = casing
        self.chars = chars
        self.word_pooling = word_pooling

    def head_inputs(self, inputs: Dict[str, tf.Tensor], training=None, sample_encoder: bool = False) -> tf.Tensor:
        outputs = call_encoder(self.encoder, inputs, training=training, sample_dropout=sample_encoder)
        vectors = combine_layers(stack_encoder_layers(outputs, self.layer_mix is not None), self.layer_mix)
        if self.word_pooling == "mean":
            vectors = mean_over_word_pieces(vectors, inputs[FIRST_PIECE_MASK], inputs["input_mask"])
        return append_chars(append_casing(vectors, inputs, self.casing), inputs, self.chars, training)


class BertCrfNER(CrfOutput, BertNER):
    """`BertNER` whose head gives emission scores to a CRF over the words (`CrfOutput`): seed 001's design
    with structured decoding, optionally with a recurrent stack over the words below the head
    (`word_rnn`). `head` must be built with `softmax=False`."""

    def __init__(self, encoder: keras.layers.Layer, head: MLPHead, crf: CRF,
                 layer_mix: Optional[keras.layers.Layer] = None, casing: Optional[CasingEmbedding] = None,
                 lexical: Optional[LexicalScores] = None,
                 word_rnn: Optional[RecurrentStack] = None, chars: Optional[CharCNN] = None,
                 word_pooling: str = "first", name: str = "bert_crf_ner"):
        super().__init__(encoder, head, layer_mix, casing, chars, word_pooling, name=name)
        self.crf = crf
        self.lexical = lexical
        self.word_rnn = word_rnn
        self.check_scores_head()


class WordFeatureNER(TokenClassifier):
    """The head of a `BertNER` on cached word vectors.

    Inputs: `{"word_features": [B, W, L, H]}` (float16 or float32; L = 1 without a layer mix), and, with
    a casing embedding, `word_casing` [B, W], with a character CNN `char_ids` [B, W, C]. Returns
    `(latent [B, W, latent_dim], probabilities [B, W, num_labels])`.
    """

    def __init__(self, head: MLPHead, layer_mix: Optional[keras.layers.Layer] = None,
                 casing: Optional[CasingEmbedding] = None, chars: Optional[CharCNN] = None, name: str = "bert_ner"):
        super().__init__(name=name)
        self.head = head
        self.layer_mix = layer_mix
        self.casing = casing
        self.chars = chars

    def head_inputs(self, inputs: Dict[str, tf.Tensor], training=None, sample_encoder: bool = False) -> tf.Tensor:
        vectors = combine_layers(inputs[WORD_FEATURES], self.layer_mix)
        return append_chars(append_casing(vectors, inputs, self.casing), inputs, self.chars, training)


class WordFeatureCrfNER(CrfOutput, WordFeatureNER):
    """The head and CRF of a `BertCrfNER` on cached word vectors; `first_piece_mask` [B, W] marks the words
    (and `lexical_ids` [B, W, K] are the words' lexical features, with lexical scores)."""

    def __init__(self, head: MLPHead, crf: CRF, layer_mix: Optional[keras.layers.Layer] = None,
                 casing: Optional[CasingEmbedding] = None, lexical: Optional[LexicalScores] = None,
                 word_rnn: Optional[RecurrentStack] = None, chars: Optional[CharCNN] = None,
                 name: str = "bert_crf_ner"):
        super().__init__(head, layer_mix, casing, chars, name=name)
        self.crf = crf
        self.lexical = lexical
        self.word_rnn = word_rnn
        self.check_scores_head()


def word_feature_twin(model: BertNER) -> WordFeatureNER:
    """The model that trains `model`'s head (and layer mix, casing embedding, CRF, stack over the words) on
    cached word vectors, sharing those layers, so training it trains `model`."""
    if isinstance(model, BertCrfNER):
        return WordFeatureCrfNER(model.head, model.crf, model.layer_mix, model.casing, model.lexical, model.word_rnn,
                                 model.chars)
    return WordFeatureNER(model.head, model.layer_mix, model.casing, model.chars)


def load_encoder_layers(model: ModelConfig,
                        encoder: EncoderConfig) -> Tuple[keras.layers.Layer, Optional[keras.layers.Layer]]:
    """The encoder section's TF-Hub layer (fine-tuned if `encoder.trainable`), and a fresh layer that
    combines all encoder layers when `model.encoder_layers` is "mix" or "concat" (None for the last layer)."""
    from ner.encoders.hub_encoder import load_encoder

    return (load_encoder(encoder.handle, trainable=encoder.trainable),
            layer_combiner(model.encoder_layers))


def build_bert_ner(model: ModelConfig, encoder: EncoderConfig, head: MLPHead, num_labels: int, vocab_size: int,
                   label_map: Optional[LabelMap]) -> BertNER:
    """Model type bert_ner (the builder protocol: `ner.registry.ModelType`)."""
    loaded, layer_mix = load_encoder_layers(model, encoder)
    return BertNER(loaded, head, layer_mix, casing_embedding(model.casing_dim), char_cnn(model.char_cnn_filters))


def build_bert_crf_ner(model: ModelConfig, encoder: EncoderConfig, head: MLPHead, num_labels: int, vocab_size: int,
                       label_map: Optional[LabelMap]) -> BertCrfNER:
    """Model type bert_crf (the builder protocol: `ner.registry.ModelType`), its CRF constrained by
    `label_map`'s scheme when `model.crf_constraints` is set, with `model.rnn`'s stack over the words
    when `model.word_rnn` is set."""
    loaded, layer_mix = load_encoder_layers(model, encoder)
    return BertCrfNER(loaded, head, crf_layer(model, num_labels, label_map), layer_mix, casing_embedding(model.casing_dim),
                      lexical_scores(model.lexical_features, num_labels),
                      recurrent_stack(model) if model.word_rnn else None, char_cnn(model.char_cnn_filters),
                      model.word_pooling)


def crf_layer(model: ModelConfig, num_labels: int, label_map: Optional[LabelMap]) -> CRF:
    """A CRF over `num_labels` labels, its moves constrained by `label_map`'s scheme when
    `model.crf_constraints` is set."""
    allowed = None
    if model.crf_constraints:
        if label_map is None or label_map.num_labels != num_labels:
            raise ValueError(f"model.crf_constraints needs the label map of the model's {num_labels} labels, "
                             f"got {label_map}")
        allowed = label_map.allowed_transitions()
    return CRF(num_labels, allowed)
