"""Training on several devices: the `tf.distribute.Strategy` that `training.distribute` names.

- "none": TensorFlow's default strategy (one device; the trainer's steps are what they were without one).
- "mirrored": `MirroredStrategy` over this host's GPUs, or its logical CPUs when it has no GPU (tests
  split a CPU into two with `tf.config.set_logical_device_configuration`).
- "multi_worker": `MultiWorkerMirroredStrategy`, which reads the cluster and this worker's place in it
  from the `TF_CONFIG` environment variable; every worker runs the same `ner train` command.

The model and its optimisers are made under `strategy.scope()`; each global batch is split between the
replicas (`Strategy.experimental_distribute_dataset`), and the trainer weighs each replica's loss by
its share of the global batch's labelled positions, so that the summed gradients are those of the
global batch's mean loss (`ner.trainers.trainer.Trainer.make_step`).

A TF-Hub encoder loaded under a `MirroredStrategy`'s scope can be called on its replicas, or outside the
scope, but not in the scope's cross-replica context; the calls made while building a model there (the
encoder's probe, the build's dummy batch) go through `call_on_replicas`.
"""
from typing import Any, Callable

import tensorflow as tf

from ner.registry import DISTRIBUTE_STRATEGIES, lookup


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy `name` (one of `DISTRIBUTE_STRATEGIES`, see the module docstring); ConfigError otherwise."""
    lookup(dict.fromkeys(DISTRIBUTE_STRATEGIES), name, "distribute strategy")
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])


def call_on_replicas(fn: Callable[..., Any], *args, **kwargs) -> Any:
    """`fn(*args, **kwargs)` run on every replica of the current strategy; the first replica's result
    (for the default strategy, outside any scope, simply the call)."""
    strategy = tf.distribute.get_strategy()
    results = strategy.run(fn, args=args, kwargs=kwargs)
    return tf.nest.map_structure(lambda value: strategy.experimental_local_results(value)[0], results)
