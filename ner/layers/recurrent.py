"""Recurrent layers over token vectors: a stack of LSTM or GRU layers, optionally bidirectional."""
from typing import Optional

import tensorflow as tf
import tf_keras as keras

from ner.registry import RNN_CELLS
from ner.errors import ConfigError


def recurrent_layer(cell: str, units: int, name: str) -> keras.layers.Layer:
    """A Keras LSTM or GRU with `units` that returns the whole sequence; ConfigError for another cell."""
    layers = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
    if cell not in layers:
        raise ConfigError(f"unknown recurrent cell {cell!r}; expected one of {', '.join(RNN_CELLS)}")
    return layers[cell](units, return_sequences=True, name=name)


class RecurrentStack(keras.layers.Layer):
    """`num_layers` recurrent layers, each reading the previous one's output after dropout.

    Maps features [B, T, D] and mask [B, T] (bool, True on real pieces; padding on the right) to
    [B, T, H], H = units, or 2 * units when bidirectional (forward and backward outputs concatenated).
    Masked steps are skipped, so padding never reaches a real position in either direction.
    """

    def __init__(self, cell: str, units: int, num_layers: int, bidirectional: bool, dropout_rate: float,
                 name: str = "rnn"):
        super().__init__(name=name)
        if units < 1 or num_layers < 1:
            raise ConfigError(f"a recurrent stack needs units >= 1 and num_layers >= 1, got {units}, {num_layers}")
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout_rate = dropout_rate
        self.recurrent_layers = []
        for i in range(num_layers):
            layer = recurrent_layer(cell, units, name=f"{cell}_{i}")
            self.recurrent_layers.append(keras.layers.Bidirectional(layer, name=f"bi{cell}_{i}")
                                         if bidirectional else layer)
        self.dropout_layers = [keras.layers.Dropout(dropout_rate, name=f"dropout_{i}", rng_type="stateful")
                               for i in range(num_layers)]  # reseeded per epoch, as the head's (`MLPHead`)

    def call(self, features: tf.Tensor, mask: Optional[tf.Tensor] = None, training=None) -> tf.Tensor:
        x = features
        for dropout, layer in zip(self.dropout_layers, self.recurrent_layers):
            x = layer(dropout(x, training=training), mask=mask, training=training)
        return x

    def get_config(self) -> dict:
        return {"cell": self.cell, "units": self.units, "num_layers": self.num_layers,
                "bidirectional": self.bidirectional, "dropout_rate": self.dropout_rate, "name": self.name}
