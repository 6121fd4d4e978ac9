"""Casing features for an uncased encoder (`ner.casing`), lexical features (`ner.lexical`), the character
CNN (`ner.chars`) and the CRF on the frozen-encoder BERT NER.

The casing class of a word must be the same wherever it is computed: the featurizer (NumPy, `re`), the
feature cache, and the serving graph (RE2). A bert_crf model must give the same probabilities and the
same Viterbi path from cached word vectors as from the live encoder.
"""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import ner  # noqa: F401
from ner.casing import NUM_CASING_IDS, OTHER, WORD_CASING, casing_ids, casing_ids_in_graph
from ner.chars import CHAR_IDS, MAX_WORD_CHARS, char_ids_in_graph
from ner.config import ModelConfig
from ner.data import ModelInputs, model_for, prepare_data
from ner.lexical import LEXICAL_IDS, NUM_BUCKETS, TEMPLATE_SETS, lexical_ids_in_graph
from ner.models.word_shape import CharCNN
from ner.readers import Sentence
from ner.registry import LEXICAL_TEMPLATE_SETS
from ner.tagging import IGNORE_LABEL
from ner.utils import set_seed
from tests.helpers import tiny_config

# word → (class name, id) by hand from the table in ner.casing
HAND_CLASSES = {"the": 1, "London": 2, "UN": 3, "I": 4, "iPhone": 5, "McDonald": 5, "1990": 6, "F-16": 7,
                "3.5": 7, ",": 8, "--": 8, "O'Neil": 9, "U.S.": 9, "Zürich": 9, "über": OTHER, "東京": 8,
                "e-mail": OTHER}


def test_casing_ids_match_the_table_by_hand():
    words = list(HAND_CLASSES)
    assert casing_ids(words).tolist() == list(HAND_CLASSES.values())
    assert NUM_CASING_IDS == OTHER + 1 == 11


def test_graph_and_numpy_casing_agree():
    words = list(HAND_CLASSES) + ["a\nb", "ÉCOLE", "x1", "Ab1", "'s", "AbC", "\x07", "ǅ", "ß", "Ⅻ", "١٢٣"]
    in_graph = casing_ids_in_graph(tf.constant(words)).numpy()
    assert in_graph.tolist() == casing_ids(words).tolist()


def test_featurizer_puts_each_words_class_on_its_first_piece(tmp_path, tiny_encoder_handle):
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_ner")
    data = prepare_data(config, verbose=False)
    encoded = data.encoded_all
    first = encoded.label_ids != IGNORE_LABEL
    assert (encoded.word_casing[~first] == 0).all()
    words = [w for i in sorted(data.sentences) for w in data.sentences[i].words]
    assert encoded.word_casing[first].tolist() == casing_ids(words).tolist()  # row-major order = word order
    sentence = Sentence(1, ("Paris", "and", "NATO"), ("B-geo", "O", "B-org"))
    single = data.featurizer.featurize([sentence])
    assert single.word_casing[single.label_ids != IGNORE_LABEL].tolist() == [2, 1, 3]


@pytest.mark.parametrize("model_type", ["bert_ner", "bert_crf"])
def test_cached_word_vectors_give_the_live_models_outputs(tmp_path, tiny_encoder_handle, model_type):
    """The twin on cached vectors and the live model share weights: the same probabilities on every word,
    and for the CRF the same Viterbi path; the casing ids reach both."""
    set_seed(0)
    config = tiny_config(tmp_path, tiny_encoder_handle, model_type)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, casing_dim=3, encoder_layers="mix"))
    data = prepare_data(config, verbose=False)
    model = model_for(config, data)
    # Non-zero casing rows and a non-trivial head, so that a missing or misplaced casing id would show.
    embedding = model.casing.embedding
    embedding.set_weights([np.random.default_rng(0).normal(0, 3.0, embedding.get_weights()[0].shape)])
    cached = ModelInputs(config, data, model, verbose=False)
    assert cached.trainable_model is not model
    live = ModelInputs(dataclasses.replace(config, training=dataclasses.replace(config.training, feature_cache=False)),
                       data, model, verbose=False)
    for (cached_x, cached_y), (live_x, live_y) in zip(cached.dataset("test", shuffle=False),
                                                      live.dataset("test", shuffle=False)):
        first = live_y.numpy() != IGNORE_LABEL
        _, cached_p = cached.trainable_model(cached_x, training=False)
        _, live_p = model(live_x, training=False)
        words = cached_y.numpy() != IGNORE_LABEL
        np.testing.assert_allclose(cached_p.numpy()[words], live_p.numpy()[first], atol=2e-3)
        _, without_casing = model({**live_x, WORD_CASING: tf.zeros_like(live_x[WORD_CASING])}, training=False)
        assert np.abs(without_casing.numpy()[first] - live_p.numpy()[first]).max() > 1e-2  # the ids are read
        if model_type == "bert_crf":
            cached_path = cached.trainable_model.decode(cached_x).numpy()[words]
            live_path = model.decode(live_x).numpy()[first]
            assert cached_path.tolist() == live_path.tolist()


def test_lexical_ids_follow_the_templates_and_neighbours():
    """Same (offset, template, value) → same id, wherever the word is; sentence ends read as <s> / </s>."""
    words = tf.ragged.constant([["Paris", "is", "big"], ["Paris"], []])
    ids = lexical_ids_in_graph(words).numpy()
    assert ids.shape == (4, 12) and ids.min() >= 0 and ids.max() < NUM_BUCKETS
    first, alone = ids[0], ids[3]
    assert (first[4:8] == alone[4:8]).all()       # the word's own templates: "paris", "is", "ris", "Xx"
    assert (first[0:4] == alone[0:4]).all()       # both start a sentence: <s>
    assert not (first[8:12] == alone[8:12]).any()  # "is" follows one, </s> the other
    assert not (ids[1][0:4] == first[4:8]).any()  # the same word at another offset: other ids
    expected = tf.strings.to_hash_bucket_fast(["0:lower:paris", "0:suffix2:is", "0:suffix3:ris", "0:shape:Xx",
                                               "1:lower:is", "-1:shape:Xx"], NUM_BUCKETS).numpy()
    assert [first[4], first[5], first[6], first[7], first[8], ids[1][3]] == expected.tolist()


def test_template_sets_are_the_registrys_choices():
    assert tuple(TEMPLATE_SETS) == LEXICAL_TEMPLATE_SETS


def test_extended_lexical_ids_add_prefixes_words_two_away_and_bigrams():
    """The extended set: the feature CRF's 12 ids, then prefix2, prefix3, lower and shape two words to the
    left, the same to the right, and the bigrams with the left and the right neighbour, hashed by hand."""
    words = tf.ragged.constant([["New", "York", "rises"]])
    crf, extended = lexical_ids_in_graph(words).numpy(), lexical_ids_in_graph(words, "extended").numpy()
    assert extended.shape == (3, 20)
    np.testing.assert_array_equal(extended[:, :12], crf)
    expected = tf.strings.to_hash_bucket_fast([
        ["0:prefix2:ne", "0:prefix3:new", "-2:lower:<s>", "-2:shape:<s>", "2:lower:rises", "2:shape:x",
         "-1:lower|0:lower:<s>|new", "0:lower|1:lower:new|york"],
        ["0:prefix2:yo", "0:prefix3:yor", "-2:lower:<s>", "-2:shape:<s>", "2:lower:</s>", "2:shape:</s>",
         "-1:lower|0:lower:new|york", "0:lower|1:lower:york|rises"],
        ["0:prefix2:ri", "0:prefix3:ris", "-2:lower:new", "-2:shape:Xx", "2:lower:</s>", "2:shape:</s>",
         "-1:lower|0:lower:york|rises", "0:lower|1:lower:rises|</s>"]], NUM_BUCKETS).numpy()
    np.testing.assert_array_equal(extended[:, 12:], expected)


def test_char_ids_by_hand():
    """1 + code point mod 511 per character, the first MAX_WORD_CHARS characters, 0 after."""
    ids = char_ids_in_graph(tf.constant(["Ab", "Zürich", "x" * 25, "", "東"])).numpy()
    assert ids.shape == (5, MAX_WORD_CHARS)
    assert ids[0, :3].tolist() == [66, 99, 0]                     # "A" 65, "b" 98
    assert ids[1, :7].tolist() == [91, 253, 115, 106, 100, 105, 0]  # "ü" 252
    assert ids[2].tolist() == [121] * MAX_WORD_CHARS              # cut to its first 20 characters
    assert not ids[3].any()
    assert ids[4, :2].tolist() == [1 + 0x6771 % 511, 0]


def test_char_cnn_max_pools_each_words_windows():
    """One filter reading the middle character's first embedding value, id / 100: each word gets tanh of
    its largest id / 100; a position without characters gets 0; the input features are kept in front."""
    layer = CharCNN(1)
    chars = char_ids_in_graph(tf.constant(["Ab", "cd", "", "e"])).numpy().reshape(2, 2, MAX_WORD_CHARS)
    features = tf.constant(np.arange(8, dtype=np.float32).reshape(2, 2, 2))
    layer(features, tf.constant(chars))
    embedding = np.zeros(layer.embedding.get_weights()[0].shape, np.float32)
    embedding[:, 0] = np.arange(len(embedding)) / 100
    kernel = np.zeros(layer.convolution.get_weights()[0].shape, np.float32)  # [width 3, 30, 1]
    kernel[1, 0, 0] = 1.0
    layer.embedding.set_weights([embedding])
    layer.convolution.set_weights([kernel, np.zeros(1, np.float32)])
    out = layer(features, tf.constant(chars), training=False).numpy()
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[..., :2], features.numpy())
    np.testing.assert_allclose(out[..., 2], np.tanh([[0.99, 1.01], [0.0, 1.02]]), rtol=1e-6)  # b 99, d 101, e 102


def test_char_cnn_needs_a_model_type_that_takes_it():
    assert ModelConfig(type="bert_gru", char_cnn_filters=8).problems() == [
        ("char_cnn_filters", "0: a character CNN goes beside the encoder's vectors of bert_ner, bert_crf", 8)]
    assert ModelConfig(type="bert_ner", char_cnn_filters=-1).problems() == [
        ("char_cnn_filters", "0 (no character CNN) or a positive integer", -1)]


@pytest.mark.parametrize("word_ids", [LEXICAL_IDS, CHAR_IDS])
def test_word_ids_reach_the_cached_and_live_crf_alike(tmp_path, tiny_encoder_handle, word_ids):
    """Lexical feature ids and character ids: placed on first pieces, read by the cached twin and the live
    model alike (same marginals and Viterbi path), and read at all (zeroing them changes the outputs)."""
    set_seed(0)
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_crf")
    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, lexical_features=word_ids == LEXICAL_IDS, char_cnn_filters=4 if word_ids == CHAR_IDS else 0))
    data = prepare_data(config, verbose=False)
    first = data.encoded_all.label_ids != IGNORE_LABEL
    placed = data.encoded_all.lexical_ids if word_ids == LEXICAL_IDS else data.encoded_all.char_ids
    assert placed.shape[-1] == (12 if word_ids == LEXICAL_IDS else MAX_WORD_CHARS)  # the feature CRF's 12
    assert (placed[~first] == 0).all()
    model = model_for(config, data)
    table = model.lexical.weights_per_id if word_ids == LEXICAL_IDS else model.chars.embedding
    table.set_weights([np.random.default_rng(1).normal(0, 1.0, table.get_weights()[0].shape)])
    cached = ModelInputs(config, data, model, verbose=False)
    live = ModelInputs(dataclasses.replace(config, training=dataclasses.replace(config.training, feature_cache=False)),
                       data, model, verbose=False)
    for (cached_x, cached_y), (live_x, live_y) in zip(cached.dataset("test", shuffle=False),
                                                      live.dataset("test", shuffle=False)):
        words, pieces = cached_y.numpy() != IGNORE_LABEL, live_y.numpy() != IGNORE_LABEL
        _, cached_p = cached.trainable_model(cached_x, training=False)
        _, live_p = model(live_x, training=False)
        np.testing.assert_allclose(cached_p.numpy()[words], live_p.numpy()[pieces], atol=2e-3)
        assert cached.trainable_model.decode(cached_x).numpy()[words].tolist() == \
            model.decode(live_x).numpy()[pieces].tolist()
        _, without = model({**live_x, word_ids: tf.zeros_like(live_x[word_ids])}, training=False)
        assert np.abs(without.numpy()[pieces] - live_p.numpy()[pieces]).max() > 1e-2  # the ids are read


def test_a_word_rnn_reads_the_same_words_from_cached_vectors_and_live_pieces(tmp_path, tiny_encoder_handle):
    """`model.word_rnn`: the stack skips every piece but the first of a word, so the live model (word
    pieces) and its twin (one cached vector per word) give the same marginals and Viterbi path; and the
    stack carries context, so a word's marginals change when only its neighbours' vectors do."""
    set_seed(0)
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_crf")
    rnn = dataclasses.replace(config.model.rnn, units=8)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, word_rnn=True, casing_dim=3, rnn=rnn))
    data = prepare_data(config, verbose=False)
    model = model_for(config, data)
    assert model.word_rnn is not None and model.word_rnn.cell == "lstm"
    cached = ModelInputs(config, data, model, verbose=False)
    assert cached.trainable_model.word_rnn is model.word_rnn
    stack = {id(v) for v in model.word_rnn.trainable_variables}
    for trained in (model, cached.trainable_model):  # what the trainer optimises and checkpoints
        assert len(stack) == 6 and stack <= {id(v) for v in trained.trainable_variables}
    live = ModelInputs(dataclasses.replace(config, training=dataclasses.replace(config.training, feature_cache=False)),
                       data, model, verbose=False)
    several_pieces = 0
    for (cached_x, cached_y), (live_x, live_y) in zip(cached.dataset("test", shuffle=False),
                                                      live.dataset("test", shuffle=False)):
        words, pieces = cached_y.numpy() != IGNORE_LABEL, live_y.numpy() != IGNORE_LABEL
        rows = live_x["input_mask"].shape[0]
        several_pieces += int(live_x["input_mask"].numpy().sum() - pieces.sum() - 2 * rows)  # less [CLS], [SEP]
        _, cached_p = cached.trainable_model(cached_x, training=False)
        _, live_p = model(live_x, training=False)
        np.testing.assert_allclose(cached_p.numpy()[words], live_p.numpy()[pieces], atol=2e-3)
        assert cached.trainable_model.decode(cached_x).numpy()[words].tolist() == \
            model.decode(live_x).numpy()[pieces].tolist()
    assert several_pieces > 0  # some words have pieces after their first, which the stack must skip too
    vectors = cached_x["word_features"].numpy()
    changed = vectors.copy()
    changed[:, 1:] += 1.0  # every word but the first of each sentence
    _, before = cached.trainable_model.head(cached.trainable_model.head_inputs(cached_x))
    _, after = cached.trainable_model.head(cached.trainable_model.head_inputs({**cached_x, "word_features": changed}))
    assert np.abs(before.numpy()[:, 0] - after.numpy()[:, 0]).max() > 1e-3  # word 0 reads its neighbours


def test_word_rnn_needs_a_model_type_that_takes_it(tmp_path, tiny_encoder_handle):
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_ner")
    problems = dataclasses.replace(config.model, word_rnn=True).problems()
    assert problems == [("word_rnn", "false: a recurrent stack over the words goes under the head of bert_crf", True)]
