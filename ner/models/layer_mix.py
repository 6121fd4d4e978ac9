"""Which encoder layers a head reads: the last one, a learned mix of all of them, or all of them side by
side."""
from typing import Dict, Optional

import tensorflow as tf
import tf_keras as keras


def layer_combiner(encoder_layers: str) -> Optional[keras.layers.Layer]:
    """A fresh layer that combines every encoder layer for `model.encoder_layers` ("mix" or "concat"), or
    None for "last" (only the last layer is read)."""
    if encoder_layers == "last":
        return None
    return {"mix": ScalarMix, "concat": LayerConcat}[encoder_layers]()


def stack_encoder_layers(outputs: Dict[str, tf.Tensor], use_all_layers: bool) -> tf.Tensor:
    """[B, T, L, H] from a TF-Hub BERT output dict: the last layer (L = 1) or every layer's output."""
    if use_all_layers:
        return tf.stack(outputs["encoder_outputs"], axis=2)
    return outputs["sequence_output"][:, :, None, :]


class ScalarMix(keras.layers.Layer):
    """γ · Σ_l softmax(w)_l · x_l: a learned weighting of encoder layers (Peters et al., 2018).

    Maps [B, T, L, H] to [B, T, H]. The weights start equal and γ at 1.
    """

    def __init__(self, name: str = "scalar_mix"):
        super().__init__(name=name)

    def build(self, input_shape):
        self.layer_weights = self.add_weight(name="layer_weights", shape=(input_shape[-2],), initializer="zeros")
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="ones")
        super().build(input_shape)

    def call(self, layers: tf.Tensor) -> tf.Tensor:
        weights = tf.nn.softmax(self.layer_weights)
        return self.gamma * tf.einsum("btlh,l->bth", layers, weights)


class LayerConcat(keras.layers.Layer):
    """Every encoder layer side by side: [B, T, L, H] → [B, T, L·H] (the feature-based input that Devlin et
    al. 2019, §5.3, found best for NER, there with the last four layers)."""

    def __init__(self, name: str = "layer_concat"):
        super().__init__(name=name)

    def call(self, layers: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(layers)
        return tf.reshape(layers, tf.concat([shape[:2], [layers.shape[-2] * layers.shape[-1]]], axis=0))


def combine_layers(layers: tf.Tensor, layer_mix: Optional[keras.layers.Layer]) -> tf.Tensor:
    """[B, T, L, H] → [B, T, D]: `layer_mix` (a `ScalarMix`, D = H, or a `LayerConcat`, D = L·H) if there is
    one, else the single stored layer (D = H)."""
    layers = tf.cast(layers, tf.float32)
    return layer_mix(layers) if layer_mix is not None else layers[:, :, 0, :]
