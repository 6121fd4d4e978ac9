"""`ner export`: a serving SavedModel that tokenises in the graph and agrees with `ner predict`: words, tags,
word confidences and entity confidences (a CRF model's span marginals, a softmax model's mean word
confidence).

The export is reloaded in a fresh Python process with plain `tf.saved_model.load` (plus tensorflow_text,
whose ops the tokenizer uses), from a directory outside the checkout, so no code of this package is used.
"""
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import ner
from ner.api import Tagger
from ner.encoders.bert_export import export_bert_savedmodel
from ner.encoders.hub_encoder import encoder_vocab
from ner.errors import NerError
from ner.experiment import train
from ner.models import build_model
from ner.serving import SIGNATURE, PieceFeaturizer, ServingModule, _span_scores, export_serving
from ner.tagging import LabelMap
from ner.utils import set_seed
from tests.helpers import (give_run_random_scores, lengthen_spans, make_random_mpnet_checkpoint, randomise_output_scores,
                           tiny_config, tiny_mpnet_vocab)

TEXTS = [
    "John Smith said the president in London today.",
    "The army said today!",
    # 40 words: several rows of max_seq_length 16; a word of 21 pieces (longer than a row); a word of
    # a control character only (no pieces: [UNK]); and non-Latin words ([UNK]).
    " ".join(["john smith in london"] * 9) + " qwertzuiopasdfghjklyx \x07 東京 мир",
]

LOAD_AND_SERVE = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the tokenizer's ops)
loaded = tf.saved_model.load(sys.argv[1])
serve = loaded.signatures[sys.argv[2]]
out = serve(sentences=tf.constant(json.loads(sys.stdin.read())))
strings = lambda t: [[x.decode("utf-8") for x in row] for row in t.numpy().tolist()]
print(json.dumps({"words": strings(out["words"]), "tags": strings(out["tags"]),
                  "scores": out["scores"].numpy().tolist(), "span_scores": out["span_scores"].numpy().tolist(),
                  "num_words": out["num_words"].numpy().tolist(),
                  "keras_model_saved": hasattr(loaded, "model"), "variables": len(loaded.model_variables),
                  "ner_imported": any(name == "ner" or name.startswith("ner.") for name in sys.modules)}))
"""


def serve_in_fresh_process(export_dir, sentences, cwd):
    completed = subprocess.run([sys.executable, "-c", LOAD_AND_SERVE, str(export_dir), SIGNATURE],
                               input=json.dumps(sentences), capture_output=True, text=True, cwd=cwd,
                               env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def sentences_of(results):
    """`predict`'s results as one list per sentence of `(word, expected span score)`: the confidence of
    the entity that holds the word, or the word's own confidence for a word outside every entity."""
    sentences = []
    for result in results:
        for sentence in result.sentences:
            sentences.append([(word, next((e.confidence for e in result.entities
                                           if e.start <= word.start and word.end <= e.end), word.confidence))
                              for word in sentence])
    return sentences


def assert_agree(sentences, served):
    """`served` (the signature's outputs as lists, one row per sentence) equals `predict`'s words and
    entity confidences (`sentences_of`)."""
    assert served["num_words"][:len(sentences)] == [len(s) for s in sentences]
    for row, sentence in enumerate(sentences):
        count = len(sentence)
        assert served["words"][row][:count] == [w.text for w, _ in sentence]
        assert served["tags"][row][:count] == [w.label for w, _ in sentence]
        np.testing.assert_allclose(served["scores"][row][:count], [w.confidence for w, _ in sentence], atol=1e-5)
        np.testing.assert_allclose(served["span_scores"][row][:count], [score for _, score in sentence], atol=1e-5)
        assert set(served["tags"][row][count:]) <= {""}
        assert not any(served["scores"][row][count:]) and not any(served["span_scores"][row][count:])


@pytest.mark.parametrize("model_type,word_features", [("bert_ner", False), ("bert_crf", True)])
def test_export_round_trips_and_agrees_with_predict(tmp_path, tiny_encoder_handle, model_type, word_features):
    """bert_crf with casing, the extended lexical features, a character CNN and each word's pieces averaged:
    the graph computes all four as the featurizer does and decodes with Viterbi as `predict` does."""
    config = tiny_config(tmp_path, tiny_encoder_handle, model_type, epochs=3)
    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, casing_dim=4 if word_features else 0, lexical_features=word_features,
        lexical_templates="extended", char_cnn_filters=4 if word_features else 0,
        word_pooling="mean" if word_features else "first"))
    tagger = ner.load(str(train(config, verbose=False)))
    export_dir = export_serving(tagger, tmp_path / "export")

    results = tagger.predict(TEXTS)
    assert any(result.entities for result in results)
    sentences = sentences_of(results)
    assert len(sentences) == 3 and len(sentences[-1]) == 40
    served = serve_in_fresh_process(export_dir, [" ".join(w.text for w, _ in s) for s in sentences] + [""],
                                    tmp_path)
    assert not served["ner_imported"]
    assert not served["keras_model_saved"] and served["variables"] == len(tagger.model.variables)  # weights only
    assert_agree(sentences, served)
    assert served["num_words"][-1] == 0  # an empty sentence


@pytest.mark.parametrize("scheme", ["bio", "biluo"])
def test_the_serving_graph_gives_a_crf_its_first_pieces(tmp_path, tiny_encoder_handle, scheme):
    """The CRF tagger reads `first_piece_mask`: the graph builds it as the featurizer does, tags with the
    same Viterbi path as `predict` and gives each entity `predict`'s span marginal. Untrained weights do
    (agreement, not skill), with random output scores of std 3 and transitions raised by 6 where a label
    continues a span, so that spans of several words occur; the save-and-reload path is the test above."""
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_bilstm_crf", scheme)
    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, rnn=dataclasses.replace(config.model.rnn, units=8)))
    vocab = encoder_vocab(tiny_encoder_handle)
    label_map = LabelMap.for_scheme(scheme)
    set_seed(0)
    model = build_model(config.model, config.encoder, label_map.num_labels, vocab.vocab_size, label_map=label_map)
    randomise_output_scores(model)
    lengthen_spans(model, label_map, 6.0)
    tagger = Tagger(config, model, vocab, label_map)
    module = ServingModule(tagger.model, PieceFeaturizer.of_tagger(tagger), label_map)
    results = tagger.predict(TEXTS)
    assert any(len(entity.text.split()) > 1 for result in results for entity in result.entities)
    sentences = sentences_of(results)
    out = module.serve(tf.constant([" ".join(w.text for w, _ in s) for s in sentences]))
    assert_agree(sentences, {"words": [[w.decode() for w in row] for row in out["words"].numpy().tolist()],
                             "tags": [[t.decode() for t in row] for row in out["tags"].numpy().tolist()],
                             **{name: out[name].numpy().tolist() for name in ("scores", "span_scores", "num_words")}})


@pytest.mark.parametrize("crf", [True, False])
def test_span_scores_by_hand(crf):
    """BIO labels O, B-a, I-a. Sentence 1: B-a I-a | O | B-a I-a I-a, its last span cut between rows 0
    and 1; sentence 2: a stray I-a (a span start), then padding. A CRF model's words take their row's span
    marginal, except in the cut span, which takes the mean of its words' scores (0.6 + 0.5 + 0.4) / 3; a
    softmax model's take the mean of their span's scores; an O word keeps its own score (0.8, not its CRF
    span marginal 0.79); padding gets 0."""
    reading = LabelMap.for_scheme("bio", entity_types=("a",)).span_reading()
    label_ids = tf.constant([[1, 2, 0, 1, 2, 2], [2, 0, 0, 0, 0, 0]])
    scores = tf.constant([[0.9, 0.7, 0.8, 0.6, 0.5, 0.4], [0.3, 0, 0, 0, 0, 0]])
    rows = tf.constant([[0, 0, 0, 0, 1, 1], [2, -1, -1, -1, -1, -1]], tf.int64)
    marginals = tf.constant([[0.55, 0.55, 0.79, 0.2, 0.3, 0.3], [0.25, 0, 0, 0, 0, 0]])
    got = _span_scores(label_ids, scores, rows, marginals if crf else None, reading).numpy()
    expected = ([[0.55, 0.55, 0.8, 0.5, 0.5, 0.5], [0.25, 0, 0, 0, 0, 0]] if crf else
                [[0.8, 0.8, 0.8, 0.5, 0.5, 0.5], [0.3, 0, 0, 0, 0, 0]])
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_export_replaces_only_a_previous_export(tmp_path, tiny_encoder_handle):
    tagger = ner.load(str(train(tiny_config(tmp_path, tiny_encoder_handle, "ner_baseline", epochs=1), verbose=False)))
    export_dir = export_serving(tagger, tmp_path / "export")
    export_serving(tagger, export_dir)  # a previous export is replaced
    assert (export_dir / "saved_model.pb").is_file() and (export_dir / "assets" / "vocab.txt").is_file()
    other = tmp_path / "not_an_export"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(NerError, match="exists and is not a SavedModel"):
        export_serving(tagger, other)
    assert (other / "notes.txt").read_text() == "keep me"


def test_the_serving_graph_keeps_the_configured_pieces_per_word(tmp_path, tiny_encoder_handle):
    """With `data.max_pieces_per_word: 1` (seed 001's input) the graph feeds the encoder each word's first
    piece only, as `predict` does: they agree, and both differ from the same weights reading every piece."""
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_ner")
    one_piece = dataclasses.replace(config, data=dataclasses.replace(config.data, max_pieces_per_word=1))
    vocab = encoder_vocab(tiny_encoder_handle)
    label_map = LabelMap.for_scheme(config.data.tag_scheme)
    set_seed(0)
    model = build_model(config.model, config.encoder, label_map.num_labels, vocab.vocab_size, label_map=label_map)
    randomise_output_scores(model)
    served = {}
    for name, run_config in (("all", config), ("one", one_piece)):
        tagger = Tagger(run_config, model, vocab, label_map)
        module = ServingModule(model, PieceFeaturizer.of_tagger(tagger), label_map)
        sentences = sentences_of(tagger.predict(TEXTS))
        out = module.serve(tf.constant([" ".join(w.text for w, _ in s) for s in sentences]))
        served[name] = {"words": [[w.decode() for w in row] for row in out["words"].numpy().tolist()],
                        "tags": [[t.decode() for t in row] for row in out["tags"].numpy().tolist()],
                        **{key: out[key].numpy().tolist() for key in ("scores", "span_scores", "num_words")}}
        assert_agree(sentences, served[name])
    assert served["one"]["scores"] != served["all"]["scores"]


def test_an_ensemble_exports_as_one_crf_that_tags_as_predict_does(tmp_path, tiny_encoder_handle):
    """`ner export --ensemble`: two CRF runs on other encoders (BERT and MPNet vocabularies, rows of 16 and 12
    pieces, other word features) in one SavedModel that, reloaded without this package, gives the words the
    tags, marginals and span marginals of `ner.load(run, ensemble=...)`, which differ from the first run's
    alone; it holds both vocab files and both models' weights."""
    from ner.cli import main

    mpnet_handle = str(export_bert_savedmodel(
        make_random_mpnet_checkpoint(tmp_path / "mpnet_checkpoint", tiny_mpnet_vocab()), tmp_path / "mpnet"))
    first = tiny_config(tmp_path, tiny_encoder_handle, "bert_crf", epochs=1)
    first = dataclasses.replace(first, model=dataclasses.replace(
        first.model, casing_dim=4, lexical_features=True, lexical_templates="extended", word_pooling="mean"))
    second = dataclasses.replace(first, run_name="second", encoder=dataclasses.replace(first.encoder,
                                                                                       handle=mpnet_handle),
                                 data=dataclasses.replace(first.data, max_seq_length=12),
                                 model=dataclasses.replace(first.model, casing_dim=2, lexical_features=False),
                                 training=dataclasses.replace(first.training, seed=7))
    first_dir, second_dir = train(first, verbose=False), train(second, verbose=False)
    give_run_random_scores(first_dir, seed=1, continue_bonus=6.0)
    give_run_random_scores(second_dir, seed=2, continue_bonus=6.0)
    pair = ner.load(str(first_dir), ensemble=[str(second_dir)])
    assert [m.config.encoder.handle for m in (pair, *pair.members)] == [tiny_encoder_handle, mpnet_handle]

    results = pair.predict(TEXTS)
    assert any(len(entity.text.split()) > 1 for result in results for entity in result.entities)
    sentences = sentences_of(results)
    main(["export", "--run", str(first_dir), "--ensemble", str(second_dir), "--output", str(tmp_path / "export")])
    served = serve_in_fresh_process(tmp_path / "export", [" ".join(w.text for w, _ in s) for s in sentences] + [""],
                                    tmp_path)
    assert not served["ner_imported"]
    assert served["variables"] == len(pair.model.variables) + len(pair.members[0].model.variables)
    assert_agree(sentences, served)
    assert served["num_words"][-1] == 0  # an empty sentence
    alone = sentences_of(ner.load(str(first_dir)).predict(TEXTS))
    assert [[w.label for w, _ in s] for s in alone] != served["tags"][:len(alone)]
    assets = sorted(path.read_text() for path in (tmp_path / "export" / "assets").iterdir())
    assert assets == sorted(encoder_vocab(handle).vocab_path.read_text() for handle in (tiny_encoder_handle,
                                                                                         mpnet_handle))
