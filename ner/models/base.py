"""The shape every NER model shares: layers below a head, then the head."""
from typing import Dict, Tuple

import tensorflow as tf
import tf_keras as keras

from ner.encoders.hub_encoder import INPUT_NAMES


class TokenClassifier(keras.Model):
    """Base of the package's models: `head_inputs` (embedding, encoder, recurrent stack...) → `self.head`.

    `call` maps the feature dict to `(latent [B, T, L], probabilities [B, T, C])`. Splitting it lets
    Monte-Carlo dropout run everything below the head once and the head many times
    (`ner.uncertainty.mc_dropout`) without repeating any model's forward pass.
    """

    head: keras.layers.Layer

    def head_inputs(self, inputs: Dict[str, tf.Tensor], training=None, sample_encoder: bool = False) -> tf.Tensor:
        """What the head reads, [B, T, D]. With `sample_encoder`, dropout below the head runs (a TF-Hub
        encoder's included, see `call_encoder`) whatever `training` says."""
        raise NotImplementedError

    def probabilities_from_head(self, outputs: tf.Tensor, inputs: Dict[str, tf.Tensor], copies: int = 1) -> tf.Tensor:
        """Probabilities [copies·B, T, C] from the head's outputs for `copies` stacked copies of the batch;
        a softmax head's outputs already are."""
        return outputs

    def call(self, inputs: Dict[str, tf.Tensor], training=None) -> Tuple[tf.Tensor, tf.Tensor]:
        latent, outputs = self.head(self.head_inputs(inputs, training=training), training=training)
        return latent, self.probabilities_from_head(outputs, inputs)


def call_encoder(encoder: keras.layers.Layer, inputs: Dict[str, tf.Tensor], training=None,
                 sample_dropout: bool = False) -> Dict[str, tf.Tensor]:
    """Runs a TF-Hub BERT layer on the BERT inputs in `inputs` (other entries are not passed).

    With `sample_dropout` the layer's SavedModel is called with `training=True` directly, because
    `hub.KerasLayer(trainable=False)` always passes `training=False` and so never runs its dropout.
    """
    encoder_inputs = {name: inputs[name] for name in INPUT_NAMES}
    if sample_dropout:
        return encoder.resolved_object(encoder_inputs, training=True)
    return encoder(encoder_inputs, training=training)
