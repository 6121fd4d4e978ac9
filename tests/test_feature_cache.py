"""The feature cache: hits, misses on a changed encoder or tokenisation, split reuse, and cached == live."""
import dataclasses

import numpy as np
import pytest

import ner  # noqa: F401
from ner.config import save_config
from ner.encoders.bert_export import export_bert_savedmodel
from ner.errors import ConfigError
from ner.encoders.hub_encoder import encoder_vocab, load_encoder
from ner.errors import NerError
from ner.evaluation import evaluate
from ner.experiment import train
from ner.feature_cache import WordFeatureStore, make_encode_fn
from ner.preprocessor import Sentence, WordPieceFeaturizer
from ner.tagging import IGNORE_LABEL, LabelMap
from tests.helpers import give_run_random_scores, make_random_bert_checkpoint, tiny_config, tiny_test_vocab
from tests.test_cli import run_cli

SENTENCES = [Sentence(i, tuple(words), tuple(["O"] * len(words))) for i, words in enumerate([
    ["john", "said", "the", "president", "in", "london"],
    ["the", "army", "said", "today"],
    ["president", "smith", "of", "the", "united", "nations", "said", "on", "monday"],
], start=1)]


def featurize(handle, max_seq_length=32):
    vocab = encoder_vocab(handle)
    return WordPieceFeaturizer(vocab.vocab_path, vocab.do_lower_case, max_seq_length,
                               LabelMap.for_scheme("io")).featurize(SENTENCES)


def open_store(root, handle, encoded, use_all_layers=False, word_pooling="first"):
    return WordFeatureStore.open(root, encoded, handle, use_all_layers=use_all_layers, num_layers=2, hidden_size=32,
                                 word_pooling=word_pooling)


@pytest.mark.parametrize("use_all_layers", [False, True])
def test_cached_vectors_equal_the_encoder_at_first_pieces(tmp_path, tiny_encoder_handle, use_all_layers):
    encoded = featurize(tiny_encoder_handle)
    encode = make_encode_fn(load_encoder(tiny_encoder_handle, trainable=False), use_all_layers)
    store = open_store(tmp_path, tiny_encoder_handle, encoded, use_all_layers)
    assert store.fill(encoded, np.arange(3), encode) == 3
    live = encode({name: getattr(encoded, name) for name in ("input_word_ids", "input_mask", "input_type_ids")})
    first = encoded.label_ids != IGNORE_LABEL
    stored = store.features.read(0, store.features.shape[0])
    np.testing.assert_allclose(stored, live.numpy()[first], atol=2e-3)  # float16 storage
    assert store.features.shape[1] == (2 if use_all_layers else 1)
    reopened = open_store(tmp_path, tiny_encoder_handle, encoded, use_all_layers)  # what pwrite left on disk
    np.testing.assert_array_equal(reopened.features.read(0, reopened.features.shape[0]), stored)
    np.testing.assert_array_equal(np.load(store.directory / "features.npy"), stored)  # still a plain .npy file

    (features, labels), = store.dataset(np.array([2, 0]), batch_size=2, shuffle=False, seed=None)
    words = first.sum(1)
    assert features["word_features"].shape[:2] == (2, words.max())
    np.testing.assert_array_equal(labels.numpy()[1, words[0]:], IGNORE_LABEL)  # padding of the shorter row


def test_mean_pooled_vectors_average_each_words_pieces(tmp_path, tiny_encoder_handle):
    """`word_pooling="mean"`: each stored word is the mean of the encoder's vectors over the word's pieces,
    from its first piece to the next word's or to [SEP], averaged here with NumPy; its own cache key."""
    encoded = featurize(tiny_encoder_handle)
    encode = make_encode_fn(load_encoder(tiny_encoder_handle, trainable=False), True)
    store = open_store(tmp_path, tiny_encoder_handle, encoded, True, word_pooling="mean")
    assert store.directory != open_store(tmp_path, tiny_encoder_handle, encoded, True).directory
    store.fill(encoded, np.arange(3), encode)
    live = encode({name: getattr(encoded, name) for name in ("input_word_ids", "input_mask", "input_type_ids")})
    expected, pieces = [], []
    for row in range(3):
        starts = np.flatnonzero(encoded.label_ids[row] != IGNORE_LABEL).tolist()
        ends = starts[1:] + [int(encoded.input_mask[row].sum()) - 1]  # the last word ends at [SEP]
        expected += [live.numpy()[row, start:end].mean(axis=0) for start, end in zip(starts, ends)]
        pieces += [end - start for start, end in zip(starts, ends)]
    assert sorted(set(pieces)) == [1, 4]  # "army" and "today" are four pieces each in the tiny vocabulary
    np.testing.assert_allclose(store.features.read(0, store.features.shape[0]), np.stack(expected), atol=2e-3)


def test_hit_reuses_and_changes_miss(tmp_path, tiny_encoder_handle):
    encoded = featurize(tiny_encoder_handle)
    encode = make_encode_fn(load_encoder(tiny_encoder_handle, trainable=False), False)
    store = open_store(tmp_path, tiny_encoder_handle, encoded)
    assert store.fill(encoded, np.array([0, 2]), encode) == 2
    again = open_store(tmp_path, tiny_encoder_handle, encoded)          # hit: same directory, rows kept
    assert again.directory == store.directory
    assert again.missing_rows(np.arange(3)).tolist() == [1]             # another split needs only its new rows
    assert again.fill(encoded, np.arange(3), encode) == 1
    assert again.fill(encoded, np.arange(3), encode) == 0

    shorter = featurize(tiny_encoder_handle, max_seq_length=8)          # tokenisation changed → miss
    assert open_store(tmp_path, tiny_encoder_handle, shorter).directory != store.directory
    other = export_bert_savedmodel(make_random_bert_checkpoint(tmp_path / "ck2", tiny_test_vocab(), seed=5),
                                   tmp_path / "enc2")                  # encoder changed → miss
    assert open_store(tmp_path, str(other), encoded).directory != store.directory
    assert open_store(tmp_path, tiny_encoder_handle, encoded, use_all_layers=True).directory != store.directory
    with pytest.raises(RuntimeError, match="not cached yet"):
        open_store(tmp_path, str(other), encoded).dataset(np.arange(3), 2, shuffle=False, seed=None)


@pytest.mark.parametrize("model_type, encoder_layers, word_pooling", [
    ("bert_ner", "last", "first"), ("bert_ner", "mix", "first"), ("bert_ner", "concat", "first"),
    ("bert_crf", "mix", "mean")])
def test_cached_and_live_runs_give_identical_metrics(tmp_path, tiny_encoder_handle, model_type, encoder_layers,
                                                     word_pooling):
    config = tiny_config(tmp_path, tiny_encoder_handle, model_type, epochs=3)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, encoder_layers=encoder_layers,
                                                                   word_pooling=word_pooling))
    run_dir = train(config, verbose=False)
    assert any((tmp_path / "feature_cache").iterdir())
    give_run_random_scores(run_dir)  # three epochs leave the tiny model predicting O everywhere
    cached = evaluate(str(run_dir), verbose=False)
    assert (cached.latent_pred != cached.labels.index("O")).mean() > 0.3
    live = evaluate(str(run_dir), ["training.feature_cache=false"], verbose=False)
    np.testing.assert_array_equal(cached.report.token.confusion, live.report.token.confusion)
    assert cached.report.entity.f1 == live.report.entity.f1
    np.testing.assert_allclose(cached.latent, live.latent, atol=5e-2)


@pytest.mark.parametrize("name, size, problem", [
    ("features.npy", -8, r"features\.npy: 1,336 bytes, expected 1,344 \(header and 19 words of 64 bytes\); the "
                         r"file is truncated"),
    ("features.npy", 20, r"features\.npy: not a readable \.npy array \(EOF: reading array header, expected 118 "
                         r"bytes got 10\)"),
    ("filled.npy", -1, r"filled\.npy: not a readable \.npy array \(Failed to read all data for array\. Expected "
                       r"\(3,\) = 3 elements, could only read 2 elements\. \(file seems not fully written\?\)\)"),
    ("filled.npy", 0, r"filled\.npy: not a readable \.npy array \(No data left in file\)"),
])
def test_a_damaged_cache_file_is_reported_when_opened(tmp_path, tiny_encoder_handle, name, size, problem):
    encoded = featurize(tiny_encoder_handle)
    path = open_store(tmp_path, tiny_encoder_handle, encoded).directory / name
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size + size if size < 0 else size)
    with pytest.raises(NerError, match=rf"{problem}; expected a complete feature-cache file: delete the cache "
                                       rf"directory {path.parent} to rebuild it$"):
        open_store(tmp_path, tiny_encoder_handle, encoded)


def test_train_on_a_truncated_cache_is_one_error_line_and_keeps_the_run(tmp_path, tiny_encoder_handle):
    """What `ner train --overwrite` prints, and that the earlier weights survive: the cache is opened
    before anything in the run directory is replaced."""
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_ner", epochs=1)
    config_file = tmp_path / "tiny.yaml"
    save_config(config, config_file)
    run_dir = train(config, verbose=False)
    weights = {p.name: p.read_bytes() for p in (run_dir / "weights").iterdir()}
    [features] = (tmp_path / "feature_cache").glob("*/features.npy")
    with open(features, "r+b") as handle:
        handle.truncate(features.stat().st_size - 1)
    status, out, err = run_cli(["train", "--config", str(config_file), "--overwrite"])
    assert status == 2 and "Traceback" not in out + err and err.count("\n") == 1
    assert err.startswith(f"error: {features}: ") and err.endswith(f"delete the cache directory {features.parent} "
                                                                   "to rebuild it\n")
    assert {p.name: p.read_bytes() for p in (run_dir / "weights").iterdir()} == weights


def test_cached_batches_are_padded_to_length_buckets(tmp_path, tiny_encoder_handle):
    encoded = featurize(tiny_encoder_handle)  # 6, 4 and 9 words
    store = open_store(tmp_path, tiny_encoder_handle, encoded)
    store.fill(encoded, np.arange(3), make_encode_fn(load_encoder(tiny_encoder_handle, trainable=False), False))
    plain = [batch for batch in store.dataset(np.arange(3), batch_size=2, shuffle=False, seed=None)]
    bucketed = [batch for batch in store.dataset(np.arange(3), batch_size=2, shuffle=False, seed=None,
                                                 length_buckets=(5, 8, 16))]
    assert [labels.shape[1] for _, labels in plain] == [6, 9]
    assert [labels.shape[1] for _, labels in bucketed] == [8, 16]
    for (features, labels), (padded, padded_labels) in zip(plain, bucketed):
        width = labels.shape[1]
        np.testing.assert_array_equal(padded_labels[:, :width], labels)
        np.testing.assert_array_equal(padded_labels[:, width:], IGNORE_LABEL)
        for name, value in features.items():
            np.testing.assert_array_equal(padded[name][:, :width], value)
            assert not padded[name][:, width:].numpy().any()
    with pytest.raises(ConfigError, match=r"must reach the longest row \(9 words\)"):
        store.dataset(np.arange(3), batch_size=2, shuffle=False, seed=None, length_buckets=(4, 8))
