"""Loads a BERT encoder with the TF-Hub interface as a tf_keras layer, and reads its vocabulary.

A handle is either a URL (tfhub.dev, Kaggle; anything with `://`), passed to `tensorflow_hub` unchanged,
or a local SavedModel directory such as one written by `ner.encoders.bert_export`. A relative local path
is looked up in the current working directory first, then under the repository root, so the default
handle works from any directory inside a checkout.

The encoder is called with a dict of int32 [B, T] `input_word_ids`, `input_mask`, `input_type_ids` and
returns a dict with `sequence_output` [B, T, H], `pooled_output` [B, H] and `encoder_outputs` (a list of
L tensors [B, T, H]).

`hub.KerasLayer(trainable=False)` always calls the SavedModel with `training=False`, so dropout never runs
through a frozen encoder. For MC-dropout through a frozen encoder, call
`layer.resolved_object(inputs, training=True)` directly.
"""
import dataclasses
from pathlib import Path

import tensorflow as tf
import tensorflow_hub as hub

from ner.config import DEFAULT_ENCODER_HANDLE, REPO_ROOT
from ner.distribute import call_on_replicas
from ner.errors import EncoderError

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
REQUIRED_OUTPUTS = ("sequence_output", "encoder_outputs")

# What hub and tf.saved_model raise for a handle that cannot be fetched or parsed.
_LOAD_ERRORS = (OSError, ValueError, tf.errors.OpError)


@dataclasses.dataclass(frozen=True)
class EncoderVocab:
    """The WordPiece vocabulary an encoder was trained with."""

    vocab_path: Path
    do_lower_case: bool
    vocab_size: int


@dataclasses.dataclass(frozen=True)
class EncoderInfo:
    """Sizes a head needs to know about its encoder."""

    hidden_size: int
    num_layers: int


def is_remote_handle(handle: str) -> bool:
    """True for URLs (tfhub.dev, Kaggle, gs://), which are handed to tensorflow_hub unchanged."""
    return "://" in handle


def resolve_handle(handle: str) -> str:
    """Returns a URL unchanged and a local path as an absolute path to an existing directory.

    A relative path is tried against the current working directory, then against the repository root.
    """
    if is_remote_handle(handle):
        return handle
    path = Path(handle).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, REPO_ROOT / path]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate.resolve())
    raise EncoderError(
        f"encoder handle {handle!r} does not exist (looked for {' and '.join(map(str, candidates))}); "
        "run ./install.sh to export the default encoder, or set encoder.handle (or NER_ENCODER_HANDLE)"
    )


def load_encoder(handle: str, trainable: bool) -> hub.KerasLayer:
    """Loads `handle` as a `hub.KerasLayer` with dict outputs, after checking the TF-Hub BERT interface.

    With `trainable=True` the encoder's weights are trainable weights of the layer and dropout follows the
    surrounding model's `training` flag; with `trainable=False` the layer always runs in inference mode.
    """
    path = _checked_path(handle)
    try:
        layer = hub.KerasLayer(path, trainable=trainable)
    except _LOAD_ERRORS as e:
        raise EncoderError(f"encoder handle {handle!r} cannot be loaded: {e}") from e
    if not hasattr(layer.resolved_object, "vocab_file"):
        raise EncoderError(f"encoder {handle!r} has no vocab_file; expected a TF-Hub BERT encoder SavedModel")
    _probe(layer.resolved_object, handle)
    return layer


def encoder_info(layer: hub.KerasLayer) -> EncoderInfo:
    """Hidden size and number of transformer layers of an encoder from `load_encoder` (one tiny call)."""
    return _probe(layer.resolved_object, layer.get_config()["handle"])


def encoder_vocab(handle: str) -> EncoderVocab:
    """Reads `vocab_file` and `do_lower_case` from the SavedModel, as for any TF-Hub BERT handle."""
    path = _checked_path(handle)
    try:
        obj = hub.load(path)
    except _LOAD_ERRORS as e:
        raise EncoderError(f"encoder handle {handle!r} cannot be loaded: {e}") from e
    for attribute in ("vocab_file", "do_lower_case"):
        if not hasattr(obj, attribute):
            raise EncoderError(f"encoder {handle!r} has no {attribute}; expected a TF-Hub BERT encoder SavedModel")
    vocab_path = Path(obj.vocab_file.asset_path.numpy().decode("utf-8"))
    with tf.io.gfile.GFile(str(vocab_path)) as f:
        vocab_size = sum(1 for _ in f)
    do_lower_case = bool(obj.do_lower_case.numpy())
    return EncoderVocab(vocab_path=vocab_path, do_lower_case=do_lower_case, vocab_size=vocab_size)


def _checked_path(handle: str) -> str:
    """`resolve_handle`, plus a check that a local directory holds a SavedModel."""
    path = resolve_handle(handle)
    if not is_remote_handle(path) and not (Path(path) / "saved_model.pb").is_file():
        raise EncoderError(
            f"encoder handle {handle!r} ({path}) has no saved_model.pb; "
            "expected a TF-Hub BERT encoder SavedModel"
        )
    return path


def _probe(obj: object, handle: str) -> EncoderInfo:
    """Runs one [1, 2] all-[PAD] batch through `obj(inputs, training=False)` and checks the outputs."""
    inputs = {name: tf.constant([[0, 0]], dtype=tf.int32) for name in INPUT_NAMES}
    inputs["input_mask"] = tf.ones([1, 2], dtype=tf.int32)
    try:
        outputs = call_on_replicas(obj, inputs, training=False)  # under a strategy's scope too (`ner.distribute`)
    except (TypeError, ValueError, tf.errors.OpError) as e:
        raise EncoderError(
            f"encoder {handle!r} cannot be called with the TF-Hub BERT inputs {list(INPUT_NAMES)}: {e}"
        ) from e
    missing = [key for key in REQUIRED_OUTPUTS if not isinstance(outputs, dict) or key not in outputs]
    if missing:
        raise EncoderError(f"encoder {handle!r} outputs lack {missing}; expected a TF-Hub BERT encoder")
    return EncoderInfo(
        hidden_size=int(outputs["sequence_output"].shape[-1]), num_layers=len(outputs["encoder_outputs"])
    )
