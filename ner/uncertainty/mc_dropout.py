"""Monte-Carlo dropout prediction for every model of the package: T passes with dropout on.

Two ways of sampling, chosen by `encoder_dropout` (config key `uncertainty.encoder_dropout`):

- **Head dropout** (the default, and the only way for models without a TF-Hub encoder). Everything below
  the head (embedding, encoder, layer mix, recurrent stack) runs once per batch, in inference mode; the
  head then runs once on T copies of its input with dropout on (`MLPHead.call_tiled`: a [T·B, L, ·]
  batch, the first Dense layer still on [B, L, D]). T = 20 samples cost one encoder pass plus one head
  call on a 20-fold batch; that batch needs T times the head's activation memory, so lower the batch size
  if that is too much. A CRF model's samples are the CRF marginals of each sample's emission scores.
- **Encoder dropout** (models with a TF-Hub encoder: `BertNER`, `BertRnnNER`, `BertRnnCrfNER`).
  `hub.KerasLayer(trainable=False)` always calls its SavedModel with `training=False`, so this path calls
  `encoder.resolved_object(inputs, training=True)` itself (the exported SavedModel traces
  `training=True` with dropout), for a frozen and a fine-tuned encoder alike; a recurrent stack drops out
  too. The encoder drops out at the rate it was exported with; each of the T samples is one full pass.

The head samples at `dropout_rate`: by default (`uncertainty.mc_dropout_rate: null`, `from_config`) the
rate it was trained with, but any rate may be asked for: `MLPHead.with_dropout_rate`
gives a twin head that shares the Dense layers (the weights) and has its own Dropout layers, so the
model itself is never changed and its deterministic pass stays as it was.

Samples come from TensorFlow's global random generator: call `ner.utils.set_seed` before building the
predictor for repeatable samples.

`ner.prediction.FirstPiecePredictor(model).predict(dataset, mc_predictor=...)` runs a predictor over a
dataset and keeps each labelled position's `MCStatistics`.
"""
from typing import Dict, Optional, Tuple

import tensorflow as tf
import tensorflow_hub as hub
import tf_keras as keras

from ner.config import UncertaintyConfig
from ner.models.base import TokenClassifier

Features = Dict[str, tf.Tensor]


class MCDropoutPredictor:
    """T stochastic passes of a NER model with dropout on, next to its deterministic pass.

    Args:
      model: a built `TokenClassifier` (every model of the package). Its weights may be loaded before or after the predictor
        is made (the sampling head shares them).
      mc_samples: T >= 1.
      dropout_rate: the head's dropout rate while sampling, in [0, 1).
      encoder_dropout: also sample dropout below the head, the encoder's included; models of
        with a TF-Hub encoder (`model.encoder`, a `hub.KerasLayer`) only.

    Raises:
      TypeError: a model of another class.
      ValueError: a value out of range, or `encoder_dropout` for a model without a TF-Hub encoder.
    """

    def __init__(self, model: keras.Model, mc_samples: int, dropout_rate: float, encoder_dropout: bool = False):
        if not isinstance(model, TokenClassifier):
            raise TypeError(f"MC dropout needs a TokenClassifier (a model of this package), "
                            f"got {type(model).__name__}")
        if mc_samples < 1:
            raise ValueError(f"mc_samples must be at least 1, got {mc_samples}")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}")
        if encoder_dropout and not isinstance(model.encoder, hub.KerasLayer):
            raise ValueError(f"encoder_dropout needs a model with a TF-Hub encoder; {type(model).__name__} "
                             "runs none")
        self.model = model
        self.mc_samples = mc_samples
        self.encoder_dropout = encoder_dropout
        self.head = model.head.with_dropout_rate(dropout_rate)
        # One trace serves batches of every length (reduce_retracing relaxes the shapes after the first).
        self._head_samples = tf.function(self._sample_head, reduce_retracing=True)
        self._full_sample = tf.function(self._sample_full_pass, reduce_retracing=True)
        self._deterministic = tf.function(lambda features: model(features, training=False)[1],
                                          reduce_retracing=True)

    @classmethod
    def from_config(cls, model: keras.Model, config: UncertaintyConfig,
                    mc_samples: Optional[int] = None) -> "MCDropoutPredictor":
        """A predictor with the sampling path of the config's `uncertainty` section, T = `mc_samples` (default
        `config.mc_samples`) and the head's rate `config.sampling_rate(model.head.dropout_rate)`: its
        training rate unless `mc_dropout_rate` names another."""
        return cls(model, config.mc_samples if mc_samples is None else mc_samples,
                   config.sampling_rate(model.head.dropout_rate), config.encoder_dropout)

    def predict(self, features: Features) -> Tuple[tf.Tensor, tf.Tensor]:
        """The deterministic probabilities [B, L, C] and T samples [T, B, L, C] for one batch.

        Args:
          features: the model's input dict, e.g. int32 `input_word_ids`, `input_mask`, `input_type_ids`
            [B, L] (plus `first_piece_mask` for a CRF model; `word_features` [B, W, layers, H] for
            `WordFeatureNER`).
        """
        if self.encoder_dropout:
            samples = tf.stack([self._full_sample(features) for _ in range(self.mc_samples)])
            return self._deterministic(features), samples
        return self._head_samples(features)

    def _sample_head(self, features: Features) -> Tuple[tf.Tensor, tf.Tensor]:
        """Head dropout: the layers below the head once, then one head call on T copies of its input."""
        inputs = self.model.head_inputs(features, training=False)  # [B, L, D]
        _, outputs = self.model.head(inputs, training=False)  # [B, L, C]
        _, tiled = self.head.call_tiled(inputs, self.mc_samples, training=True)  # [T·B, L, C], copy-major
        samples = self.model.probabilities_from_head(tiled, features, copies=self.mc_samples)
        return (self.model.probabilities_from_head(outputs, features),
                tf.reshape(samples, tf.concat([[self.mc_samples], tf.shape(outputs)], axis=0)))

    def _sample_full_pass(self, features: Features) -> tf.Tensor:
        """One pass with dropout below the head (the encoder's included) and in it: [B, L, C]."""
        _, outputs = self.head(self.model.head_inputs(features, training=False, sample_encoder=True), training=True)
        return self.model.probabilities_from_head(outputs, features)

