"""Tests for `ner.encoders`: the checkpoint export, the hub.KerasLayer loader and the vocabulary reader.

Numerical checks compare the exported SavedModel with an independent NumPy forward pass of BERT
(`tests/numpy_reference.py`) from the safetensors weights.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest

import ner  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
import tensorflow as tf
import tf_keras as keras
from safetensors.numpy import load_file

from ner.encoders import bert_export
from ner.encoders.bert_export import export_bert_savedmodel, read_do_lower_case
from tests.helpers import tiny_test_vocab
from tests.numpy_reference import numpy_bert
from ner.encoders.hub_encoder import (
    DEFAULT_ENCODER_HANDLE,
    REPO_ROOT,
    EncoderInfo,
    encoder_info,
    encoder_vocab,
    load_encoder,
    resolve_handle,
)
from ner.errors import EncoderError

TINY_HIDDEN, TINY_LAYERS, TINY_MAX_POSITION = 32, 2, 128


def as_inputs(word_ids: np.ndarray, mask: np.ndarray, type_ids: np.ndarray) -> Dict[str, tf.Tensor]:
    return {
        "input_word_ids": tf.constant(word_ids, tf.int32),
        "input_mask": tf.constant(mask, tf.int32),
        "input_type_ids": tf.constant(type_ids, tf.int32),
    }


def assert_matches_reference(checkpoint_dir: Path, outputs: dict, word_ids, mask, type_ids) -> None:
    sequence, pooled, layers = numpy_bert(checkpoint_dir, word_ids, mask, type_ids)
    real = mask.astype(bool)  # padded positions are unconstrained
    np.testing.assert_allclose(outputs["sequence_output"].numpy()[real], sequence[real], atol=1e-4, rtol=0)
    np.testing.assert_allclose(outputs["pooled_output"].numpy(), pooled, atol=1e-4, rtol=0)
    assert len(outputs["encoder_outputs"]) == len(layers)
    for got, want in zip(outputs["encoder_outputs"], layers):
        np.testing.assert_allclose(got.numpy()[real], want[real], atol=1e-4, rtol=0)
    np.testing.assert_array_equal(outputs["encoder_outputs"][-1].numpy(), outputs["sequence_output"].numpy())


def padded_batch() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three sequences of lengths 7, 4 and 2 padded to 7, with a second segment in the first."""
    lengths = [7, 4, 2]
    rng = np.random.default_rng(1)
    word_ids = np.zeros([3, 7], np.int32)
    mask = np.zeros([3, 7], np.int32)
    type_ids = np.zeros([3, 7], np.int32)
    for row, n in enumerate(lengths):
        word_ids[row, :n] = rng.integers(5, len(tiny_test_vocab()), size=n)
        word_ids[row, 0], word_ids[row, n - 1] = 2, 3  # [CLS] ... [SEP]
        mask[row, :n] = 1
    type_ids[0, 4:7] = 1
    return word_ids, mask, type_ids


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def frozen_encoder(tiny_encoder_handle: str):
    return load_encoder(tiny_encoder_handle, trainable=False)


@pytest.fixture(scope="module")
def trainable_encoder(tiny_encoder_handle: str):
    return load_encoder(tiny_encoder_handle, trainable=True)


# ------------------------------------------------------------------------------------------ numerics


def test_outputs_match_numpy_reference_with_padding(frozen_encoder, tiny_checkpoint_dir: Path):
    word_ids, mask, type_ids = padded_batch()
    outputs = frozen_encoder(as_inputs(word_ids, mask, type_ids))
    assert outputs["sequence_output"].shape == (3, 7, TINY_HIDDEN)
    assert outputs["pooled_output"].shape == (3, TINY_HIDDEN)
    assert len(outputs["encoder_outputs"]) == TINY_LAYERS
    assert_matches_reference(tiny_checkpoint_dir, outputs, word_ids, mask, type_ids)


def test_trainable_encoder_in_inference_mode_matches_reference(trainable_encoder, tiny_checkpoint_dir: Path):
    word_ids, mask, type_ids = padded_batch()
    outputs = trainable_encoder(as_inputs(word_ids, mask, type_ids), training=False)
    assert_matches_reference(tiny_checkpoint_dir, outputs, word_ids, mask, type_ids)


@pytest.mark.parametrize("batch,length", [(1, 1), (5, 9), (2, TINY_MAX_POSITION)])
def test_any_batch_size_and_length(frozen_encoder, batch: int, length: int):
    ids = np.full([batch, length], 7, np.int32)
    outputs = frozen_encoder(as_inputs(ids, np.ones_like(ids), np.zeros_like(ids)))
    assert outputs["sequence_output"].shape == (batch, length, TINY_HIDDEN)
    assert outputs["pooled_output"].shape == (batch, TINY_HIDDEN)


def test_longer_than_max_position_fails(frozen_encoder):
    ids = np.full([1, TINY_MAX_POSITION + 1], 7, np.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_position_embeddings"):
        frozen_encoder(as_inputs(ids, np.ones_like(ids), np.zeros_like(ids)))


def test_encoder_info(frozen_encoder):
    info = encoder_info(frozen_encoder)
    assert (info.hidden_size, info.num_layers) == (TINY_HIDDEN, TINY_LAYERS)


# --------------------------------------------------------------------------------- training and dropout


def test_frozen_encoder_has_no_trainable_weights_and_never_drops_out(frozen_encoder):
    assert frozen_encoder.trainable_weights == []
    assert frozen_encoder.non_trainable_weights
    inputs = as_inputs(*padded_batch())
    train = frozen_encoder(inputs, training=True)["sequence_output"]
    infer = frozen_encoder(inputs, training=False)["sequence_output"]
    np.testing.assert_array_equal(train.numpy(), infer.numpy())


def test_trainable_encoder_exposes_all_checkpoint_weights(trainable_encoder, tiny_checkpoint_dir: Path):
    weights = load_file(str(tiny_checkpoint_dir / "model.safetensors"))
    expected = sum(v.size for k, v in weights.items() if k != "embeddings.position_ids")
    assert sum(int(np.prod(v.shape)) for v in trainable_encoder.trainable_weights) == expected
    assert [v.dtype for v in trainable_encoder.non_trainable_weights] == [tf.bool]  # do_lower_case only


def test_dropout_runs_only_when_training(trainable_encoder):
    inputs = as_inputs(*padded_batch())
    infer_a = trainable_encoder(inputs, training=False)
    infer_b = trainable_encoder(inputs, training=False)
    train = trainable_encoder(inputs, training=True)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_array_equal(infer_a[key].numpy(), infer_b[key].numpy())
        assert np.abs(train[key].numpy() - infer_a[key].numpy()).max() > 1e-3


def test_gradients_reach_every_trainable_weight(trainable_encoder):
    inputs = as_inputs(*padded_batch())
    with tf.GradientTape() as tape:
        outputs = trainable_encoder(inputs, training=True)
        loss = tf.reduce_sum(outputs["sequence_output"] ** 2) + tf.reduce_sum(outputs["pooled_output"])
    grads = tape.gradient(loss, trainable_encoder.trainable_weights)
    assert all(g is not None for g in grads)


def test_encoder_works_inside_a_functional_model(tiny_encoder_handle: str):
    encoder = load_encoder(tiny_encoder_handle, trainable=True)
    inputs = {
        name: keras.Input(shape=(None,), dtype=tf.int32, name=name)
        for name in ("input_word_ids", "input_mask", "input_type_ids")
    }
    logits = keras.layers.Dense(3)(encoder(inputs)["sequence_output"])
    model = keras.Model(inputs, logits)
    word_ids, mask, type_ids = padded_batch()
    batch = {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}
    assert model.predict(batch, verbose=0).shape == (3, 7, 3)
    assert len(model.trainable_weights) == len(encoder.trainable_weights) + 2


# ------------------------------------------------------------------------------------- handles & errors


def test_missing_handle_names_the_path_and_install_script(tmp_path: Path):
    missing = str(tmp_path / "no_such_encoder")
    with pytest.raises(EncoderError, match="no_such_encoder.*install.sh"):
        load_encoder(missing, trainable=False)
    with pytest.raises(EncoderError, match="no_such_encoder"):
        encoder_vocab(missing)


def test_dir_without_saved_model_is_rejected(tmp_path: Path):
    with pytest.raises(EncoderError, match=f"{tmp_path}.*saved_model.pb"):
        load_encoder(str(tmp_path), trainable=False)


class _NotBert(tf.Module):
    """A SavedModel with the BERT inputs but a `default` output instead of the BERT outputs."""

    @tf.function
    def __call__(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> Dict[str, tf.Tensor]:
        return {"default": tf.cast(inputs["input_word_ids"], tf.float32)}


@pytest.mark.parametrize("with_vocab,message", [(False, "vocab_file"), (True, "sequence_output")])
def test_wrong_interface_is_rejected(tmp_path: Path, with_vocab: bool, message: str):
    module = _NotBert()
    names = ("input_word_ids", "input_mask", "input_type_ids")
    spec = {name: tf.TensorSpec([None, None], tf.int32) for name in names}
    module.__call__.get_concrete_function(spec, training=False)
    module.__call__.get_concrete_function(spec, training=True)
    if with_vocab:
        vocab = tmp_path / "vocab.txt"
        vocab.write_text("[PAD]\n")
        module.vocab_file = tf.saved_model.Asset(str(vocab))
    path = tmp_path / "not_bert"
    tf.saved_model.save(module, str(path))
    with pytest.raises(EncoderError, match=f"not_bert.*{message}"):
        load_encoder(str(path), trainable=False)


def test_relative_handles_resolve_against_cwd_then_repo_root(
    tiny_encoder_handle: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    handle = Path(tiny_encoder_handle)
    monkeypatch.chdir(handle.parent)
    assert resolve_handle(handle.name) == str(handle.resolve())
    monkeypatch.chdir(tmp_path)
    assert resolve_handle("pytest.ini") == str(REPO_ROOT / "pytest.ini")
    assert resolve_handle("https://tfhub.dev/x/bert/4") == "https://tfhub.dev/x/bert/4"


def test_encoder_vocab(tiny_encoder_handle: str):
    vocab = encoder_vocab(tiny_encoder_handle)
    assert vocab.vocab_path.read_text(encoding="utf-8").splitlines() == tiny_test_vocab()
    assert vocab.do_lower_case is True
    assert vocab.vocab_size == len(tiny_test_vocab())


def test_tiny_vocab_tokenises_ordinary_english_without_unknowns(tmp_path: Path):
    text = pytest.importorskip("tensorflow_text")
    vocab = tiny_test_vocab()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(set(vocab)) == len(vocab)
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    tokenizer = text.BertTokenizer(str(path), lower_case=True, token_out_type=tf.int32)
    ids = tokenizer.tokenize(["President Zelensky told reporters in Kyiv on 3 May: \"We're ready.\""]).flat_values
    assert 1 not in ids.numpy().tolist()


# --------------------------------------------------------------------------------------------- export


@pytest.fixture
def checkpoint_copy(tiny_checkpoint_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_checkpoint_dir, tmp_path / "checkpoint"))


def _edit_config(checkpoint: Path, key: str, value: object) -> None:
    """Sets `key` in the checkpoint's config.json, or deletes it when `value` is None."""
    config = json.loads((checkpoint / "config.json").read_text())
    config[key] = value
    if value is None:
        del config[key]
    (checkpoint / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "breakage,message",
    [
        (lambda c: (c / "vocab.txt").unlink(), "vocab.txt"),
        (lambda c: (c / "model.safetensors").unlink(), "model.safetensors"),
        (lambda c: _edit_config(c, "num_attention_heads", None), "config.json.*num_attention_heads"),
        (lambda c: _edit_config(c, "model_type", "gpt2"), "config.json.*model_type"),
        (lambda c: _edit_config(c, "hidden_act", "swish"), "config.json.*hidden_act"),
        (lambda c: _edit_config(c, "vocab_size", 7), "embeddings.word_embeddings.weight has shape"),
    ],
)
def test_export_rejects_broken_checkpoints(checkpoint_copy: Path, tmp_path: Path, breakage, message: str):
    breakage(checkpoint_copy)
    with pytest.raises(EncoderError, match=message):
        export_bert_savedmodel(checkpoint_copy, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]  # nothing half-written


def test_do_lower_case_comes_from_tokenizer_config(tmp_path: Path):
    assert read_do_lower_case(tmp_path) is True
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    assert read_do_lower_case(tmp_path) is False
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": "yes"}')
    with pytest.raises(EncoderError, match="tokenizer_config.json.*do_lower_case"):
        read_do_lower_case(tmp_path)


def test_cli_exports_then_skips(tiny_checkpoint_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    out = tmp_path / "encoder"
    assert bert_export.main(["--output", str(out), "--checkpoint", str(tiny_checkpoint_dir)]) == 0
    assert "exported" in capsys.readouterr().out
    assert (out / "saved_model.pb").is_file()
    assert bert_export.main(["--output", str(out), "--checkpoint", str(tiny_checkpoint_dir)]) == 0
    assert "skipping" in capsys.readouterr().out


def test_cli_reports_errors_without_writing(tmp_path: Path, capsys: pytest.CaptureFixture):
    out, missing = tmp_path / "encoder", tmp_path / "no_checkpoint"
    assert bert_export.main(["--output", str(out), "--checkpoint", str(missing)]) == 1
    assert str(missing) in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------- integration


@pytest.mark.integration
def test_default_minilm_export_matches_numpy_reference():
    exported = REPO_ROOT / DEFAULT_ENCODER_HANDLE
    if not (exported / "saved_model.pb").is_file():
        pytest.skip(f"{exported} not exported; run ./install.sh")
    checkpoint = bert_export.default_checkpoint_dir()
    vocab = encoder_vocab(DEFAULT_ENCODER_HANDLE)
    assert vocab.do_lower_case is True and vocab.vocab_size == 30522
    index = {token: i for i, token in enumerate(vocab.vocab_path.read_text(encoding="utf-8").splitlines())}
    sentences = ["john smith lives in london .", "the president said no", "paris"]
    rows = [[index["[CLS]"]] + [index[word] for word in s.split()] + [index["[SEP]"]] for s in sentences]
    length = max(map(len, rows))
    word_ids = np.array([r + [0] * (length - len(r)) for r in rows], np.int32)
    mask = (np.arange(length)[np.newaxis] < np.array([len(r) for r in rows])[:, np.newaxis]).astype(np.int32)
    encoder = load_encoder(DEFAULT_ENCODER_HANDLE, trainable=False)
    assert encoder_info(encoder) == EncoderInfo(hidden_size=384, num_layers=6)
    outputs = encoder(as_inputs(word_ids, mask, np.zeros_like(word_ids)))
    assert_matches_reference(checkpoint, outputs, word_ids, mask, np.zeros_like(word_ids))


# The training step (`Trainer.make_step`, XLA) of a small BERT NER model that fine-tunes the encoder at
# argv[1], run on three batches of one shape with other token ids.
_XLA_STEP_SCRIPT = """
import sys
import ner
import tf_keras as keras
from ner.config import EncoderConfig
from ner.models import build_model
from ner.trainers.trainer import Trainer
from tests.model_test_utils import LABEL_MAP, VOCAB, batch_spec, features_for, model_config, toy_batch

model = build_model(model_config("bert_ner"), EncoderConfig(handle=sys.argv[1], trainable=True),
                    LABEL_MAP.num_labels, VOCAB)
trainer = Trainer(model, sys.argv[2], outside_id=0, verbose=False, jit_compile=True)
features, _ = toy_batch()
step = trainer.make_step(None, keras.optimizers.Adam(1e-3), batch_spec(features_for("bert_ner", features)))
for seed in range(3):
    features, labels = toy_batch(seed)
    step(features_for("bert_ner", features), labels)
"""


def test_a_fine_tuned_encoder_compiles_once_per_batch_shape_under_xla(tiny_encoder_handle, tmp_path):
    """XLA's persistent cache holds one file per compilation: three batches of one shape, one compilation.
    With a transpose in the exported network (`bert_network.TokenDense`) it was one per batch."""
    cache = tmp_path / "xla_cache"
    cache.mkdir()
    env = {**os.environ, "TF_XLA_FLAGS": f"--tf_xla_persistent_cache_directory={cache}"}
    subprocess.run([sys.executable, "-c", _XLA_STEP_SCRIPT, tiny_encoder_handle, str(tmp_path / "run")],
                   cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    assert len(list(cache.iterdir())) == 1
