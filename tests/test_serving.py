"""`ner export`: a serving SavedModel that tokenises in the graph and agrees with `ner predict`.

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
from ner.encoders.hub_encoder import encoder_vocab
from ner.errors import NerError
from ner.experiment import train
from ner.models import build_model
from ner.serving import SIGNATURE, ServingModule, export_serving
from ner.tagging import LabelMap
from tests.helpers import tiny_config

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
serve = tf.saved_model.load(sys.argv[1]).signatures[sys.argv[2]]
out = serve(sentences=tf.constant(json.loads(sys.stdin.read())))
strings = lambda t: [[x.decode("utf-8") for x in row] for row in t.numpy().tolist()]
print(json.dumps({"words": strings(out["words"]), "tags": strings(out["tags"]),
                  "scores": out["scores"].numpy().tolist(), "num_words": out["num_words"].numpy().tolist(),
                  "ner_imported": any(name == "ner" or name.startswith("ner.") for name in sys.modules)}))
"""


def serve_in_fresh_process(export_dir, sentences, cwd):
    completed = subprocess.run([sys.executable, "-c", LOAD_AND_SERVE, str(export_dir), SIGNATURE],
                               input=json.dumps(sentences), capture_output=True, text=True, cwd=cwd,
                               env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def assert_agree(sentences, served):
    """`served` (the signature's outputs as lists, one row per sentence) equals `predict`'s words."""
    assert served["num_words"][:len(sentences)] == [len(s) for s in sentences]
    for row, sentence in enumerate(sentences):
        count = len(sentence)
        assert served["words"][row][:count] == [w.text for w in sentence]
        assert served["tags"][row][:count] == [w.label for w in sentence]
        np.testing.assert_allclose(served["scores"][row][:count], [w.confidence for w in sentence], atol=1e-5)
        assert set(served["tags"][row][count:]) <= {""} and not any(served["scores"][row][count:])


@pytest.mark.parametrize("model_type,casing_dim,lexical", [("bert_ner", 0, False), ("bert_crf", 4, True)])
def test_export_round_trips_and_agrees_with_predict(tmp_path, tiny_encoder_handle, model_type, casing_dim, lexical):
    """bert_crf with casing and lexical features: the graph computes both as the featurizer does and
    decodes with Viterbi as `predict` does."""
    config = tiny_config(tmp_path, tiny_encoder_handle, model_type, epochs=3)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, casing_dim=casing_dim,
                                                                   lexical_features=lexical))
    tagger = ner.load(str(train(config, verbose=False)))
    export_dir = export_serving(tagger, tmp_path / "export")

    sentences = [sentence for result in tagger.predict(TEXTS) for sentence in result.sentences]
    assert len(sentences) == 3 and len(sentences[-1]) == 40
    served = serve_in_fresh_process(export_dir, [" ".join(w.text for w in s) for s in sentences] + [""], tmp_path)
    assert not served["ner_imported"]
    assert_agree(sentences, served)
    assert served["num_words"][-1] == 0  # an empty sentence


def test_the_serving_graph_gives_a_crf_its_first_pieces(tmp_path, tiny_encoder_handle):
    """The CRF tagger reads `first_piece_mask`: the graph builds it as the featurizer does, and tags with
    the same Viterbi path as `predict`. Untrained weights do (agreement, not skill); the save-and-reload
    path is the test above."""
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_bilstm_crf", "bio")
    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, rnn=dataclasses.replace(config.model.rnn, units=8)))
    vocab = encoder_vocab(tiny_encoder_handle)
    label_map = LabelMap.for_scheme("bio")
    tagger = Tagger(config, build_model(config.model, config.encoder, label_map.num_labels, vocab.vocab_size,
                                        label_map=label_map), vocab, label_map)
    module = ServingModule(tagger.model, vocab, config.data.max_seq_length, label_map.labels, first_piece_mask=True)
    sentences = [sentence for result in tagger.predict(TEXTS) for sentence in result.sentences]
    out = module.serve(tf.constant([" ".join(w.text for w in s) for s in sentences]))
    assert_agree(sentences, {"words": [[w.decode() for w in row] for row in out["words"].numpy().tolist()],
                             "tags": [[t.decode() for t in row] for row in out["tags"].numpy().tolist()],
                             "scores": out["scores"].numpy().tolist(), "num_words": out["num_words"].numpy().tolist()})


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
