"""Token-classification heads: layers that map per-token vectors to label probabilities."""
from typing import Sequence, Tuple

import tensorflow as tf
import tf_keras as keras


class MLPHead(keras.layers.Layer):
    """Dense-ReLU-dropout stack, a latent layer, and a softmax over the labels, applied per token.

    Maps features [B, T, D] to `(latent [B, T, latent_dim], probabilities [B, T, num_labels])`.
    The latent vectors are what the PCA plots show.
    """

    def __init__(self, hidden_units: Sequence[int], latent_dim: int, num_labels: int,
                 dropout_rate: float, name: str = "mlp_head"):
        super().__init__(name=name)
        self.hidden_units = tuple(hidden_units)
        self.latent_dim = latent_dim
        self.num_labels = num_labels
        self.dropout_rate = dropout_rate
        self.hidden_layers = [keras.layers.Dense(units, activation="relu", name=f"hidden_{i}")
                              for i, units in enumerate(self.hidden_units)]
        self.dropout_layers = [keras.layers.Dropout(dropout_rate, name=f"dropout_{i}")
                               for i in range(len(self.hidden_units))]
        self.latent_layer = keras.layers.Dense(latent_dim, activation="relu", name="latent")
        self.output_layer = keras.layers.Dense(num_labels, activation="softmax", name="probabilities")

    def call(self, features: tf.Tensor, training=None) -> Tuple[tf.Tensor, tf.Tensor]:
        x = features
        for dense, dropout in zip(self.hidden_layers, self.dropout_layers):
            x = dropout(dense(x), training=training)
        latent = self.latent_layer(x)
        return latent, self.output_layer(latent)

    def get_config(self) -> dict:
        return {"hidden_units": list(self.hidden_units), "latent_dim": self.latent_dim,
                "num_labels": self.num_labels, "dropout_rate": self.dropout_rate, "name": self.name}
