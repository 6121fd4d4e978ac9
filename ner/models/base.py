"""The protocol every NER model shares: layers below a head, then the head; an optional encoder; a loss."""
from typing import Dict, Optional, Tuple

import tensorflow as tf
import tf_keras as keras

from ner.encoders.hub_encoder import INPUT_NAMES
from ner.losses import masked_cross_entropy


class TokenClassifier(keras.Model):
    """Base of the package's models: `head_inputs` (embedding, encoder, recurrent stack...) → `self.head`.

    `call` maps the feature dict to `(latent [B, T, L], probabilities [B, T, C])`. Splitting it lets
    Monte-Carlo dropout run everything below the head once and the head many times
    (`ner.uncertainty.mc_dropout`) without repeating any model's forward pass.

    `encoder` is the pre-trained TF-Hub encoder layer of the models that have one (the trainer gives its
    variables their own learning rate), None otherwise. `forward_loss` is the supervised loss the trainer
    differentiates: masked cross-entropy of the probabilities, unless a model overrides it (the CRF tagger).
    `decode` gives the predicted label ids that evaluation and prediction use (`ner.prediction`).
    """

    head: keras.layers.Layer
    encoder: Optional[keras.layers.Layer]

    def __init__(self, name: str, encoder: Optional[keras.layers.Layer] = None):
        # Set in the constructor, not as a class attribute: Keras does not track the layer of an attribute
        # the class defines, so the encoder's variables would be missing from the model's.
        super().__init__(name=name)
        self.encoder = encoder

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

    def forward_loss(self, inputs: Dict[str, tf.Tensor], labels: tf.Tensor, training=None,
                     score_offset: Optional[tf.Tensor] = None) -> Tuple[tf.Tensor, tf.Tensor]:
        """`(loss, probabilities [B, T, C])` of one batch from one forward pass.

        labels: [B, T] int32, a label id on each word's first piece and `IGNORE_LABEL` elsewhere.
        score_offset: [C] or None: added to the scores the loss reads, not to the returned probabilities
          (the logit-adjusted loss, `ner.losses.logit_adjustment`).
        The loss is a scalar without the model's regularisation losses (the trainer adds `model.losses`).
        """
        _, probabilities = self(inputs, training=training)
        return masked_cross_entropy(labels, probabilities, score_offset), probabilities

    def decode(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        """The predicted label ids [B, T] int32 with dropout off: the argmax of the probabilities, unless a
        model overrides it (the CRF taggers' Viterbi path). Only the labelled positions are meaningful."""
        return self.predict_outputs(inputs)[2]

    def predict_outputs(self, inputs: Dict[str, tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """`(latent [B, T, L], probabilities [B, T, C], label ids [B, T] int32)` from one pass with dropout
        off; the label ids are `decode`'s."""
        latent, probabilities = self(inputs, training=False)
        return latent, probabilities, tf.argmax(probabilities, axis=-1, output_type=tf.int32)

    def decoded_log_probability(self, inputs: Dict[str, tf.Tensor], labelled: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """`(latent [B, T, L], log p [B])` from one pass with dropout off: log p of `decode`'s labels at each
        row's `labelled` positions ([B, T] bool, each word's first piece), the sum of their log max
        probabilities (a softmax labels positions independently), unless a model overrides it (a CRF
        tagger's Viterbi path)."""
        latent, probabilities = self(inputs, training=False)
        log_max = tf.math.log(tf.reduce_max(probabilities, axis=-1))  # [B, T]
        return latent, tf.reduce_sum(tf.where(labelled, log_max, tf.zeros_like(log_max)), axis=1)


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
