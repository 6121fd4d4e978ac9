"""Mixed precision: the Keras dtype policy a model is built under, and loss scaling for float16.

`training.precision` names a Keras policy (`ner.registry.PRECISIONS`): "float32", or "mixed_float16" /
"mixed_bfloat16", where variables stay float32 and layers compute in 16 bits. Layers made inside
`precision_policy` take it; the layers whose numbers must stay float32 pin `dtype="float32"`: the head's
latent and output layers (so the softmax, or a CRF's emission scores, are float32), and the CRF. The
losses and metrics therefore see float32 probabilities. float16's narrow range needs the loss scaled
before differentiation (`loss_scaled`); bfloat16 has float32's range and needs none.

A TF-Hub encoder is a SavedModel whose graph fixes its dtypes when it is exported, so under a mixed
policy its own layers still compute in float32; the head, the layer mix and the recurrent layers follow
the policy.
"""
import contextlib
from typing import Iterator

import tf_keras as keras

from ner.registry import PRECISIONS, lookup


@contextlib.contextmanager
def precision_policy(precision: str) -> Iterator[None]:
    """Layers made inside take the Keras policy `precision`; the previous global policy is restored after.

    Raises:
      ConfigError: `precision` is not one of `PRECISIONS`.
    """
    lookup(dict.fromkeys(PRECISIONS), precision, "precision")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def loss_scaled(optimizer: keras.optimizers.Optimizer, precision: str) -> keras.optimizers.Optimizer:
    """`optimizer` wrapped in a dynamic `LossScaleOptimizer` for "mixed_float16"; itself otherwise."""
    if precision == "mixed_float16":
        return keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer
