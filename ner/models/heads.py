"""Token-classification heads: layers that map per-token vectors to label probabilities."""
import functools
from typing import Sequence, Tuple

import tensorflow as tf
import tf_keras as keras


class MLPHead(keras.layers.Layer):
    """Dense-ReLU-dropout stack, a latent layer, and a softmax over the labels, applied per token.

    Maps features [B, T, D] to `(latent [B, T, latent_dim], probabilities [B, T, num_labels])`.
    The latent vectors are what the PCA plots show. With `softmax=False` the second output is the
    unnormalised label scores instead (a CRF's emission scores). With `kernel_l2` > 0 every Dense kernel
    carries an L2 regulariser (`kernel_l2 · Σ w²`), which shows in `losses` for the trainer to add.
    """

    def __init__(self, hidden_units: Sequence[int], latent_dim: int, num_labels: int,
                 dropout_rate: float, softmax: bool = True, kernel_l2: float = 0.0, name: str = "mlp_head"):
        super().__init__(name=name)
        if not hidden_units:
            raise ValueError("MLPHead needs at least one hidden layer, got hidden_units=()")
        self.hidden_units = tuple(hidden_units)
        self.latent_dim = latent_dim
        self.num_labels = num_labels
        self.dropout_rate = dropout_rate
        self.softmax = softmax
        self.kernel_l2 = float(kernel_l2)
        dense = functools.partial(keras.layers.Dense,
                                  kernel_regularizer=keras.regularizers.L2(self.kernel_l2) if self.kernel_l2 else None)
        self.hidden_layers = [dense(units, activation="relu", name=f"hidden_{i}")
                              for i, units in enumerate(self.hidden_units)]
        # Each Dropout draws from its own tf.random.Generator (`rng_type="stateful"`), which the trainer reseeds
        # every epoch (`ner.trainers.trainer.reseed_dropout`): one traced step serves a whole run.
        self.dropout_layers = [keras.layers.Dropout(dropout_rate, name=f"dropout_{i}", rng_type="stateful")
                               for i in range(len(self.hidden_units))]
        # float32 whatever the policy (`ner.precision`): the latent points, the softmax and a CRF's scores.
        self.latent_layer = dense(latent_dim, activation="relu", name="latent", dtype="float32")
        self.output_layer = (dense(num_labels, activation="softmax", name="probabilities", dtype="float32")
                             if softmax else dense(num_labels, name="scores", dtype="float32"))

    def call(self, features: tf.Tensor, training=None) -> Tuple[tf.Tensor, tf.Tensor]:
        return self._from_first_hidden(self.hidden_layers[0](features), training)

    def call_tiled(self, features: tf.Tensor, copies: int, training=None) -> Tuple[tf.Tensor, tf.Tensor]:
        """The head on `copies` copies of the batch at once, each with its own dropout masks.

        Maps features [B, T, D] to `(latent [copies·B, T, latent_dim], outputs [copies·B, T, num_labels])`,
        copy-major (rows c·B .. c·B + B − 1 are copy c), like `call(tf.tile(features, [copies, 1, 1]))`. The
        first Dense layer comes before any dropout, so it runs once, on [B, T, D]. Monte-Carlo dropout
        draws its samples this way.
        """
        return self._from_first_hidden(tf.tile(self.hidden_layers[0](features), [copies, 1, 1]), training)

    def _from_first_hidden(self, x: tf.Tensor, training) -> Tuple[tf.Tensor, tf.Tensor]:
        """The rest of the head from the first Dense layer's output [N, T, hidden_units[0]]."""
        x = self.dropout_layers[0](x, training=training)
        for dense, dropout in zip(self.hidden_layers[1:], self.dropout_layers[1:]):
            x = dropout(dense(x), training=training)
        latent = self.latent_layer(x)
        return latent, self.output_layer(latent)

    def with_dropout_rate(self, rate: float) -> "MLPHead":
        """A head that shares this head's Dense layers (so its weights, always current) but drops at `rate`.

        Monte-Carlo dropout samples with it at a rate other than the training rate. Nothing is copied, so
        weights loaded later are seen too; the twin is not part of any model and is never saved.
        """
        if rate == self.dropout_rate:
            return self
        twin = MLPHead(self.hidden_units, self.latent_dim, self.num_labels, rate, softmax=self.softmax,
                       kernel_l2=self.kernel_l2, name=f"{self.name}_mc")
        twin.hidden_layers = self.hidden_layers
        twin.latent_layer = self.latent_layer
        twin.output_layer = self.output_layer
        return twin

    def get_config(self) -> dict:
        return {"hidden_units": list(self.hidden_units), "latent_dim": self.latent_dim,
                "num_labels": self.num_labels, "dropout_rate": self.dropout_rate, "softmax": self.softmax,
                "kernel_l2": self.kernel_l2, "name": self.name}
