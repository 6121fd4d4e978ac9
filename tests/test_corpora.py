"""Choosing the corpus in config: CoNLL files with fixed parts, GMB split by fractions, and the run's labels."""
import dataclasses

import numpy as np
import pytest

import ner  # noqa: F401
from ner.api import Tagger
from ner.config import CONFIG_DIR, SplitConfig, load_config
from ner.errors import DataError, NerError
from ner.data import prepare_data
from ner.evaluation import evaluate
from ner.experiment import train
from ner.runs import LABELS_FILE, read_label_map
from ner.models import build_model
from ner.models.layer_mix import ScalarMix
from tests.helpers import tiny_config, write_gmb_csv

# CoNLL-2003 style (word POS chunk tag, IOB1: a span starts with I-), entities predictable from the word.
CONLL_PATTERNS = [
    [("Paris", "I-LOC"), ("is", "O"), ("big", "O")],
    [("John", "I-PER"), ("Smith", "I-PER"), ("visited", "O"), ("Paris", "I-LOC")],
    [("Acme", "I-ORG"), ("hired", "O"), ("John", "I-PER")],
    [("Rome", "I-LOC"), ("Paris", "B-LOC"), ("met", "O")],  # B- after a span of the same type: two spans
]


def write_conll(path, sentences: int) -> None:
    lines = ["-DOCSTART- -X- -X- O", ""]
    for number in range(sentences):
        lines += [f"{word} NNP I-NP {tag}" for word, tag in CONLL_PATTERNS[number % len(CONLL_PATTERNS)]] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")


def conll_config(tmp_path, encoder_handle, model_type="ner_baseline", epochs=15):
    """The tiny GMB test config with its data section pointed at three CoNLL files the test writes."""
    conll_dir = tmp_path / "conll"
    conll_dir.mkdir()
    for name, sentences in (("train.txt", 40), ("valid.txt", 8), ("test.txt", 12)):
        write_conll(conll_dir / name, sentences)
    config = tiny_config(tmp_path, encoder_handle, model_type, "bio", epochs=epochs)
    data = dataclasses.replace(config.data, corpus="conll", encoding="utf-8", conll_tags="iob1",
                               conll_train_path=str(conll_dir / "train.txt"),
                               conll_validation_path=str(conll_dir / "valid.txt"),
                               conll_test_path=str(conll_dir / "test.txt"))
    return dataclasses.replace(config, data=data, run_name=f"conll_{model_type}")


def test_conll_corpus_keeps_its_files_as_parts_and_its_own_labels(tmp_path, tiny_encoder_handle):
    config = conll_config(tmp_path, tiny_encoder_handle)
    data = prepare_data(config, verbose=False)
    parts = data.split.parts()
    assert [len(parts[p]) for p in ("labelled", "validation", "test", "unlabelled")] == [40, 8, 12, 0]
    assert data.label_map.entity_types == ("LOC", "ORG", "PER")
    assert data.sentences[parts["test"][3]].tags == ("B-LOC", "B-LOC", "O")  # IOB1 read as two spans

    run_dir = train(config, verbose=False)
    assert read_label_map(run_dir) == data.label_map
    test = evaluate(str(run_dir), verbose=False).report
    validation = evaluate(str(run_dir), verbose=False, part="validation").report
    assert test.num_sentences == 12 and validation.num_sentences == 8
    assert test.entity.f1 > 0.9 and set(test.entity.per_type) == {"LOC", "ORG", "PER"}

    tagged = Tagger.from_run(str(run_dir)).predict(["John visited Paris"])[0]
    assert [(entity.text, entity.type) for entity in tagged.entities] == [("John", "PER"), ("Paris", "LOC")]


def test_conll_directory_from_the_environment_keeps_the_file_names():
    config = load_config(CONFIG_DIR / "bert_ner.yaml", ["data.conll_test_path=elsewhere/test_b.txt"],
                         environ={"NER_CONLL_DIR": "/data/conll"})
    assert (config.data.conll_train_path, config.data.conll_validation_path, config.data.conll_test_path) == (
        "/data/conll/train.txt", "/data/conll/valid.txt", "/data/conll/test_b.txt")


def test_split_fractions_replace_the_sizes(tmp_path, tiny_encoder_handle):
    config = tiny_config(tmp_path, tiny_encoder_handle, "ner_baseline")
    config = dataclasses.replace(config, split=dataclasses.replace(config.split, fractions=(0.1, 0.8, 0.1)))
    split = prepare_data(config, verbose=False).split
    assert [len(ids) for ids in split.parts().values()] == [6, 48, 6, 0]
    assert SplitConfig(fractions=(0.1, 0.8, 0.1)).sizes(47959) == (4796, 38367, 4796)
    assert SplitConfig().sizes(47959) == (9600, 2560, 960)


def test_a_split_from_another_corpus_is_refused_not_shrunk(tmp_path, tiny_encoder_handle):
    """Evaluating a run on a corpus that lacks some of its split's sentences must not drop them silently."""
    config = tiny_config(tmp_path, tiny_encoder_handle, "ner_baseline", epochs=1)
    run_dir = train(config, verbose=False)
    write_gmb_csv(tmp_path / "gmb.csv", sentences=20)
    with pytest.raises(DataError, match="does not have"):
        evaluate(str(run_dir), verbose=False)


def test_a_run_without_labels_file_is_reported(tmp_path, tiny_encoder_handle):
    config = tiny_config(tmp_path, tiny_encoder_handle, "ner_baseline", epochs=1)
    run_dir = train(config, verbose=False)
    (run_dir / LABELS_FILE).unlink()
    with pytest.raises(NerError, match=LABELS_FILE):
        Tagger.from_run(str(run_dir))


@pytest.mark.parametrize("model_type", ["bert_gru", "bert_bilstm_crf"])
def test_fine_tuned_rnn_models_read_a_layer_mix(tmp_path, tiny_encoder_handle, model_type):
    config = tiny_config(tmp_path, tiny_encoder_handle, model_type, "bio")
    data = prepare_data(config, verbose=False)
    model = build_model(dataclasses.replace(config.model, encoder_layers="mix", rnn=dataclasses.replace(
        config.model.rnn, units=8)), config.encoder, data.label_map.num_labels, data.featurizer.vocab_size,
        label_map=data.label_map)
    assert isinstance(model.layer_mix, ScalarMix)
    assert model.layer_mix.layer_weights.shape == (2,)  # one weight per layer of the tiny encoder
    ids = np.array([[2, 5, 6, 3]], np.int32)
    features = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids),
                "first_piece_mask": np.array([[0, 1, 1, 0]], np.int32)}
    _, probabilities = model(features, training=False)
    assert probabilities.shape == (1, 4, data.label_map.num_labels)
