"""Mention replacement (`ner.augmentation`) and the labelled sentences it adds to a run's data."""
import dataclasses

from ner.augmentation import mention_replacement
from ner.data import prepare_data
from ner.evaluation import evaluate
from ner.experiment import train
from ner.preprocessor import DataSplit
from ner.readers import Sentence
from ner.uncertainty.entities import entity_spans
from tests.helpers import tiny_config

SENTENCES = [
    Sentence(1, ("Ann", "met", "Bob", "Lee", "in", "Rome"), ("B-per", "O", "B-per", "I-per", "O", "B-geo")),
    Sentence(2, ("It", "rained"), ("O", "O")),
    Sentence(3, ("Carl", "left", "Oslo"), ("B-per", "O", "B-geo")),
]
MENTIONS = {"per": {("Ann",), ("Bob", "Lee"), ("Carl",)}, "geo": {("Rome",), ("Oslo",)}}


def test_rate_zero_copies_each_sentence_with_an_entity_unchanged():
    made = mention_replacement(SENTENCES, copies=2, rate=0.0, seed=1, first_id=100)
    assert made == [dataclasses.replace(SENTENCES[i], sentence_id=100 + k) for k, i in enumerate([0, 0, 2, 2])]


def test_rate_one_replaces_every_entity_by_one_of_its_type():
    made = mention_replacement(SENTENCES, copies=20, rate=1.0, seed=1, first_id=100)
    assert [s.sentence_id for s in made] == list(range(100, 140))
    for copy, original in zip(made, [SENTENCES[0]] * 20 + [SENTENCES[2]] * 20):
        spans = entity_spans([copy.tags])
        assert [span[3] for span in spans] == [span[3] for span in entity_spans([original.tags])]
        outside = [w for w, t in zip(copy.words, copy.tags) if t == "O"]
        assert outside == [w for w, t in zip(original.words, original.tags) if t == "O"]
        for _, start, end, entity_type in spans:  # a mention's words, tagged B- then I-
            assert copy.words[start:end] in MENTIONS[entity_type]
            assert copy.tags[start:end] == ("B-" + entity_type,) + ("I-" + entity_type,) * (end - start - 1)
    assert sum(copy.words != SENTENCES[0].words for copy in made[:20]) > 0  # some copy was changed
    assert made == mention_replacement(SENTENCES, copies=20, rate=1.0, seed=1, first_id=100)
    assert made != mention_replacement(SENTENCES, copies=20, rate=1.0, seed=2, first_id=100)


def test_the_added_sentences_train_with_the_labelled_part_and_stay_out_of_the_split(tmp_path, tiny_encoder_handle):
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_ner", epochs=1)
    plain = prepare_data(config, verbose=False)
    config = dataclasses.replace(config, split=dataclasses.replace(config.split, mention_replacement_copies=1))
    data = prepare_data(config, verbose=False)
    assert data.split == plain.split  # the split holds the corpus's 60 sentences only
    labelled = data.parts()["labelled"]
    assert labelled[:32] == plain.split.labelled_ids and labelled[32:] == tuple(range(61, 93))  # every one has an entity
    assert len(data.rows("labelled")) == 64 and data.encoded_all.input_word_ids.shape[0] == 92
    again = prepare_data(config, split=DataSplit.from_json(data.split.to_json(tmp_path / "split.json")), verbose=False)
    assert again.part_sentences("labelled") == data.part_sentences("labelled")

    run_dir = train(config, verbose=False)
    assert DataSplit.from_json(run_dir / "split.json") == plain.split
    assert evaluate(str(run_dir), verbose=False).report.num_sentences == 12
