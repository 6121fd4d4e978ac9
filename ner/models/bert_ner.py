"""BERT NER: a TF-Hub BERT encoder (frozen or fine-tuned) under the MLP head.

Two models share the head (and the optional layer mix): `BertNER` runs the encoder on word pieces,
`WordFeatureNER` reads word vectors that a frozen encoder produced once (see `ner.feature_cache`). With the
same weights both give the same probabilities at every word's first piece.
"""
from typing import Dict, Optional, Tuple

import tensorflow as tf
import tf_keras as keras

from ner.config import EncoderConfig, ModelConfig
from ner.models.base import TokenClassifier, call_encoder
from ner.models.heads import MLPHead
from ner.models.layer_mix import ScalarMix, combine_layers, stack_encoder_layers
from ner.tagging import LabelMap

WORD_FEATURES = "word_features"


class BertNER(TokenClassifier):
    """Encoder → (last layer, or a learned mix of all layers) → MLP head, per word piece.

    Inputs: dict of int32 `input_word_ids`, `input_mask`, `input_type_ids`, each [B, T].
    Returns `(latent [B, T, latent_dim], probabilities [B, T, num_labels])`.

    `encoder` is any layer with the TF-Hub BERT interface (normally `hub.KerasLayer`); whether it is
    fine-tuned is decided when that layer is made (`trainable=`), not here.
    """

    def __init__(self, encoder: keras.layers.Layer, head: MLPHead, layer_mix: Optional[ScalarMix] = None,
                 name: str = "bert_ner"):
        super().__init__(name, encoder)
        self.head = head
        self.layer_mix = layer_mix

    def head_inputs(self, inputs: Dict[str, tf.Tensor], training=None, sample_encoder: bool = False) -> tf.Tensor:
        outputs = call_encoder(self.encoder, inputs, training=training, sample_dropout=sample_encoder)
        return combine_layers(stack_encoder_layers(outputs, self.layer_mix is not None), self.layer_mix)


class WordFeatureNER(TokenClassifier):
    """The head of a `BertNER` on cached word vectors.

    Inputs: `{"word_features": [B, W, L, H]}` (float16 or float32; L = 1 without a layer mix).
    Returns `(latent [B, W, latent_dim], probabilities [B, W, num_labels])`.
    """

    def __init__(self, head: MLPHead, layer_mix: Optional[ScalarMix] = None, name: str = "bert_ner"):
        super().__init__(name=name)
        self.head = head
        self.layer_mix = layer_mix

    def head_inputs(self, inputs: Dict[str, tf.Tensor], training=None, sample_encoder: bool = False) -> tf.Tensor:
        return combine_layers(inputs[WORD_FEATURES], self.layer_mix)


def load_encoder_layers(model: ModelConfig, encoder: EncoderConfig) -> Tuple[keras.layers.Layer, Optional[ScalarMix]]:
    """The encoder section's TF-Hub layer (fine-tuned if `encoder.trainable`), and a fresh layer mix when
    `model.encoder_layers` is "mix" (None for the last layer)."""
    from ner.encoders.hub_encoder import load_encoder

    return (load_encoder(encoder.handle, trainable=encoder.trainable),
            ScalarMix() if model.encoder_layers == "mix" else None)


def build_bert_ner(model: ModelConfig, encoder: EncoderConfig, head: MLPHead, num_labels: int, vocab_size: int,
                   label_map: Optional[LabelMap]) -> BertNER:
    """Model type bert_ner (the builder protocol: `ner.registry.ModelType`)."""
    loaded, layer_mix = load_encoder_layers(model, encoder)
    return BertNER(loaded, head, layer_mix)
