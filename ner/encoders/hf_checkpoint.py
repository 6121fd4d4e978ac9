"""Reads a Hugging Face checkpoint directory and maps its weights onto a Keras encoder network.

A checkpoint directory holds `config.json`, `model.safetensors` (PyTorch layout: Dense weights are
[out, in]), `vocab.txt` and optionally `tokenizer_config.json`. The BERT and MPNet converters of
`ner.encoders.bert_export` and `ner.encoders.mpnet_export` share what is here; every problem is raised as
an `EncoderError` naming the file and what was expected.
"""
import dataclasses
import json
from pathlib import Path
from typing import Dict, List, Mapping, Tuple

import numpy as np

import tensorflow as tf
import tf_keras as keras
from safetensors.numpy import load_file

from ner.encoders.bert_network import ACTIVATIONS, TransformerBlock, TransformerConfig
from ner.errors import EncoderError
from ner.utils import PathLike, read_vocab_lines

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"


@dataclasses.dataclass(frozen=True)
class ConvertedEncoder:
    """A network holding a checkpoint's weights, and the vocabulary file its word ids index."""

    network: keras.Model
    vocab_file: Path


def read_json(path: Path) -> dict:
    """The JSON object in `path`."""
    if not path.is_file():
        raise EncoderError(f"{path} does not exist")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EncoderError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(raw, dict):
        raise EncoderError(f"{path} must hold a JSON object")
    return raw


# config.json key -> network config field, shared by the BERT-family checkpoints (BERT adds type_vocab_size).
TRANSFORMER_REQUIRED_KEYS = {
    "vocab_size": "vocab_size",
    "hidden_size": "hidden_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "intermediate_size": "intermediate_size",
    "max_position_embeddings": "max_position",
}
TRANSFORMER_OPTIONAL_KEYS = {
    "hidden_act": "hidden_act",
    "hidden_dropout_prob": "hidden_dropout",
    "attention_probs_dropout_prob": "attention_dropout",
    "layer_norm_eps": "layer_norm_eps",
}


def config_fields(
    path: Path, raw: Mapping[str, object], required: Mapping[str, str], optional: Mapping[str, str], model: str
) -> Dict[str, object]:
    """Network config fields from a `config.json` object: `required` and `optional` map its keys to fields.

    Required keys must be positive integers; optional keys are copied when present.
    """
    fields: Dict[str, object] = {}
    for key, field in required.items():
        if key not in raw:
            raise EncoderError(f"{path}: missing key {key!r}; expected a {model} config")
        if not isinstance(raw[key], int) or raw[key] <= 0:
            raise EncoderError(f"{path}: {key} must be a positive integer, got {raw[key]!r}")
        fields[field] = raw[key]
    for key, field in optional.items():
        if key in raw:
            fields[field] = raw[key]
    return fields


def check_transformer_config(path: Path, config: TransformerConfig) -> None:
    """Raises EncoderError, naming `path`, for an unknown activation or heads that do not divide hidden_size."""
    if config.hidden_act not in ACTIVATIONS:
        raise EncoderError(f"{path}: hidden_act {config.hidden_act!r} is not one of {sorted(ACTIVATIONS)}")
    if config.hidden_size % config.num_heads:
        raise EncoderError(
            f"{path}: hidden_size {config.hidden_size} is not a multiple of num_attention_heads {config.num_heads}"
        )


def read_do_lower_case(checkpoint_dir: PathLike) -> bool:
    """`do_lower_case` from `tokenizer_config.json`; True when the file or the key is absent."""
    path = Path(checkpoint_dir) / TOKENIZER_CONFIG_FILE
    if not path.exists():
        return True
    value = read_json(path).get("do_lower_case", True)
    if not isinstance(value, bool):
        raise EncoderError(f"{path}: do_lower_case must be true or false, got {value!r}")
    return value


def read_vocab(path: Path) -> List[str]:
    """The tokens of a checkpoint's vocab.txt, one per line (id = 0-based line index)."""
    return read_vocab_lines(path, EncoderError)


def read_weights(path: Path, prefix: str) -> Dict[str, np.ndarray]:
    """Loads safetensors weights, dropping the `prefix` (e.g. `bert.`) that task-head checkpoints use."""
    try:
        raw = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise EncoderError(f"{path} cannot be read as safetensors: {e}") from e
    return {key[len(prefix):] if key.startswith(prefix) else key: value for key, value in raw.items()}


class WeightMap:
    """Pairs the variables of a network with checkpoint keys, then assigns them with shape checks.

    PyTorch `Linear` stores its weight as [out, in]; Keras `Dense` wants [in, out], so Dense kernels are
    transposed on assignment.
    """

    def __init__(self) -> None:
        self._pairs: List[Tuple[tf.Variable, str]] = []
        self._transposed: set = set()

    def variable(self, variable: tf.Variable, key: str) -> None:
        self._pairs.append((variable, key))

    def dense(self, layer: keras.layers.Layer, prefix: str) -> None:  # a Dense or TokenDense: kernel, bias
        self._pairs.extend([(layer.kernel, prefix + ".weight"), (layer.bias, prefix + ".bias")])
        self._transposed.add(prefix + ".weight")

    def norm(self, layer: keras.layers.LayerNormalization, prefix: str) -> None:
        self._pairs.extend([(layer.gamma, prefix + ".weight"), (layer.beta, prefix + ".bias")])

    def block(self, block: TransformerBlock, prefix: str, keys: Mapping[str, str]) -> None:
        """A transformer block; `keys` maps its layer attributes (`query`, ...) to checkpoint sub-keys."""
        for attribute, key in keys.items():
            layer = getattr(block, attribute)
            if isinstance(layer, keras.layers.LayerNormalization):
                self.norm(layer, f"{prefix}.{key}")
            else:
                self.dense(layer, f"{prefix}.{key}")

    def assign(self, weights: Mapping[str, np.ndarray], weights_path: Path, model: str) -> None:
        """Assigns every paired variable from `weights` (read from `weights_path`, a `model` checkpoint)."""
        missing = [key for _, key in self._pairs if key not in weights]
        if missing:
            raise EncoderError(
                f"{weights_path} lacks {len(missing)} {model} weights, e.g. {missing[:3]}; "
                f"expected a Hugging Face {model} checkpoint"
            )
        for variable, key in self._pairs:
            value = weights[key].T if key in self._transposed else weights[key]
            if tuple(variable.shape) != value.shape:
                raise EncoderError(
                    f"{weights_path}: {key} has shape {value.shape}, "
                    f"expected {tuple(variable.shape)} from {CONFIG_FILE}"
                )
            variable.assign(value)
