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

The head samples at `dropout_rate`, which need not be its training rate: `MLPHead.with_dropout_rate`
gives a twin head that shares the Dense layers (the weights) and has its own Dropout layers, so the
model itself is never changed and its deterministic pass stays as it was.

Samples come from TensorFlow's global random generator: call `ner.utils.set_seed` before building the
predictor for repeatable samples.
"""
import dataclasses
from typing import Dict, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras as keras

from ner.config import UncertaintyConfig
from ner.models.base import TokenClassifier
from ner.tagging import IGNORE_LABEL
from ner.uncertainty.metrics import MCStatistics, summarize_samples

Features = Dict[str, tf.Tensor]


@dataclasses.dataclass(frozen=True, eq=False)
class MCPrediction:
    """Deterministic and MC-dropout predictions for the N rows of a dataset, padded to the widest batch W.

    Attributes:
        deterministic: float32 [N, W, C], probabilities of the pass with dropout off.
        statistics: per position: `mean` and `variance` [N, W, C], `expected_entropy` [N, W], T.
        labels: int32 [N, W], the dataset's label ids; `IGNORE_LABEL` where there is no label.
    Padding holds zero probabilities (and label `IGNORE_LABEL`): select labelled positions
    (`labels >= 0`) before scoring.
    """

    deterministic: np.ndarray
    statistics: MCStatistics
    labels: np.ndarray


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
    def from_config(cls, model: keras.Model, config: UncertaintyConfig) -> "MCDropoutPredictor":
        """A predictor with T, the rate and the sampling path of the config's `uncertainty` section."""
        return cls(model, config.mc_samples, config.mc_dropout_rate, config.encoder_dropout)

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


def predict_dataset(predictor: MCDropoutPredictor, dataset: tf.data.Dataset) -> MCPrediction:
    """Runs `predictor` over every batch and keeps the per-position statistics (not the T samples).

    Args:
      predictor: the MC-dropout predictor.
      dataset: batches of `(features, labels [B, L])`, as `ner.preprocessor.make_dataset` and
        `WordFeatureStore.dataset` give them; L may differ between batches.
    """
    deterministic, means, variances, expected, labels = [], [], [], [], []
    for features, batch_labels in dataset:
        batch_deterministic, samples = predictor.predict(features)
        statistics = summarize_samples(samples.numpy())
        deterministic.append(batch_deterministic.numpy())
        means.append(statistics.mean)
        variances.append(statistics.variance)
        expected.append(statistics.expected_entropy)
        labels.append(batch_labels.numpy())
    if not labels:
        raise ValueError("the dataset has no batches")
    width = max(batch.shape[1] for batch in labels)
    return MCPrediction(
        deterministic=_pad_concat(deterministic, width, 0.0),
        statistics=MCStatistics(mean=_pad_concat(means, width, 0.0), variance=_pad_concat(variances, width, 0.0),
                                expected_entropy=_pad_concat(expected, width, 0.0),
                                num_samples=predictor.mc_samples),
        labels=_pad_concat(labels, width, IGNORE_LABEL),
    )


def _pad_concat(batches: list, width: int, value) -> np.ndarray:
    """Concatenates arrays [B_i, L_i, ...] along axis 0 after padding axis 1 to `width` with `value`."""
    return np.concatenate([
        np.pad(batch, [(0, 0), (0, width - batch.shape[1])] + [(0, 0)] * (batch.ndim - 2), constant_values=value)
        for batch in batches
    ])
