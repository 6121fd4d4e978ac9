"""`ner.load(run).predict(texts)`: raw text in, entities with offsets, types and confidences out."""
import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ner
from ner.api import Tagger, TaggedText
from ner.config import UncertaintyConfig
from ner.errors import NerError
from ner.data import ModelInputs, model_for, prepare_data
from ner.experiment import train
from ner.prediction import FirstPiecePredictor
from ner.preprocessor import DataSplit, Sentence, make_dataset
from ner.tagging import FIRST_PIECE_MASK
from ner.trainers.trainer import load_weights
from ner.utils import set_seed
from tests.helpers import give_run_random_scores, tiny_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory, tiny_encoder_handle) -> Path:
    """A tiny BIO baseline that has learnt the word-level patterns of `test_experiment.PATTERNS`."""
    config = tiny_config(tmp_path_factory.mktemp("baseline"), tiny_encoder_handle, "ner_baseline", "bio")
    return train(config, verbose=False)


@pytest.fixture(scope="module")
def tagger(baseline_run) -> Tagger:
    return ner.load(str(baseline_run))


def test_entities_have_offsets_types_and_confidences(tagger):
    text = "John Smith said the president in London today"  # the words of the training patterns
    [result] = tagger.predict([text], threshold=0.5)
    assert isinstance(result, TaggedText) and result.text == text
    assert [(e.text, e.type, e.start, e.end) for e in result.entities] == [
        ("John Smith", "per", 0, 10), ("London", "geo", 33, 39), ("today", "tim", 40, 45)]
    for entity in result.entities:
        assert text[entity.start:entity.end] == entity.text
        assert 0.5 < entity.confidence <= 1.0 and not entity.review
    [words] = result.sentences
    assert [w.tag for w in words] == ["B-per", "I-per", "O", "O", "O", "O", "B-geo", "B-tim"]
    [(label_ids, probabilities)] = tagger.predict_words([[w.text for w in words]])
    assert words[1].label == "I-per" and words[1].confidence == pytest.approx(probabilities[1].max())
    assert [tagger.label_map.labels[i] for i in label_ids] == [w.label for w in words]
    assert result.entities[0].confidence == pytest.approx((words[0].confidence + words[1].confidence) / 2)
    for threshold in (0.0, 0.9, 0.999, 1.0):
        assert all(e.review == (e.confidence < threshold) for e in tagger.predict([text], threshold=threshold)[0].entities)
    assert result.to_dict()["entities"][1] == {"text": "London", "type": "geo", "start": 33, "end": 39,
                                               "confidence": result.entities[1].confidence, "review": False}


def test_empty_and_whitespace_texts_give_no_entities_and_keep_their_place(tagger):
    results = tagger.predict(["", "  \n\t ", "The army said today", ""])
    assert [len(r.sentences) for r in results] == [0, 0, 1, 0]
    assert [r.text for r in results] == ["", "  \n\t ", "The army said today", ""]
    assert [e.type for e in results[2].entities] == ["org", "tim"]
    assert tagger.predict([]) == []


def test_a_very_long_text_is_chunked_and_every_word_is_tagged(tagger):
    text = " ".join(["john said the president in london"] * 300)  # one sentence of 1,800 words
    [result] = tagger.predict([text])
    [words] = result.sentences  # max_seq_length is 16: the sentence spans well over 100 rows
    assert len(words) == 1800
    assert [w.tag for w in words if w.text == "london"] == ["B-geo"] * 300
    assert sum(e.type == "per" for e in result.entities) == 300


def test_non_latin_scripts_do_not_crash(tagger):
    [result] = tagger.predict(["東京は日本の首都です。 Привет, мир! ☃ 🙂"])
    words = [w.text for sentence in result.sentences for w in sentence]
    assert words == ["東京は日本の首都です", "。", "Привет", ",", "мир", "!", "☃", "🙂"]
    assert all(0.0 < w.confidence <= 1.0 for sentence in result.sentences for w in sentence)


def test_mc_dropout_confidence_is_repeatable_after_set_seed(tiny_encoder_handle, tmp_path):
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_ner", epochs=2)
    # The head trains without dropout (rate 0), so sampling at the training rate would change nothing.
    config = dataclasses.replace(config, uncertainty=UncertaintyConfig(mc_dropout_rate=0.5))
    tagger = ner.load(str(train(config, verbose=False)))
    text = ["John Smith said the president in London today."]

    def confidences(mc_samples):
        set_seed(5)
        return [w.confidence for w in tagger.predict(text, mc_samples=mc_samples)[0].sentences[0]]

    assert confidences(8) == confidences(8)
    assert confidences(8) != pytest.approx(confidences(0))
    with pytest.raises(ValueError, match="mc_samples"):
        tagger.predict(text, mc_samples=-1)


def test_a_crf_models_entity_confidence_is_its_span_marginal(tiny_encoder_handle, tmp_path):
    """On a 3-word sentence, each entity's confidence against brute force: the probability of all 17³ label
    paths whose IOB2 reading holds the entity's exact span and type; with MC dropout, the mean word confidence."""
    import itertools

    from ner.uncertainty.entities import entity_spans

    run_dir = train(tiny_config(tmp_path, tiny_encoder_handle, "bert_crf", "bio", epochs=1), verbose=False)
    tagger = give_run_random_scores(run_dir, seed=10)  # three one-word entities, confidences 0.70 to 0.75
    [result] = tagger.predict(["John Smith London"])
    assert result.entities, "the random output weights predict no entity here; pick another seed"
    encoded = tagger.featurizer.featurize([Sentence(0, ("John", "Smith", "London"), ("O",) * 3)])
    features, _ = next(iter(make_dataset(encoded, 1, shuffle=False, seed=None, first_piece_mask=True)))
    _, scores = tagger.model.latent_and_scores(features, training=False)
    scores = scores.numpy()[0][features[FIRST_PIECE_MASK].numpy()[0] == 1]  # [3, C]
    transitions, start, end = (v.numpy() for v in tagger.model.crf.parameters(constrain=True))
    labels = tagger.label_map.labels
    paths = np.array(list(itertools.product(range(len(labels)), repeat=3)))
    path_scores = (start[paths[:, 0]] + end[paths[:, 2]] + scores[np.arange(3), paths].sum(axis=1)
                   + transitions[paths[:, 0], paths[:, 1]] + transitions[paths[:, 1], paths[:, 2]])
    weights = np.exp(path_scores - path_scores.max())
    weights /= weights.sum()
    words = result.sentences[0]
    for entity in result.entities:
        first = next(i for i, word in enumerate(words) if word.start == entity.start)
        last = next(i + 1 for i, word in enumerate(words) if word.end == entity.end)
        span = (0, first, last, entity.type)
        expected = sum(weight for path, weight in zip(paths, weights)
                       if span in entity_spans([tagger.label_map.to_bio([labels[i] for i in path])]))
        assert entity.confidence == pytest.approx(expected, rel=1e-4)
    set_seed(0)
    [sampled] = tagger.predict(["John Smith London"], mc_samples=2)
    for entity in sampled.entities:
        words = [w for w in sampled.sentences[0] if entity.start <= w.start < entity.end]
        assert entity.confidence == pytest.approx(np.mean([w.confidence for w in words]))


def test_a_run_trained_on_cached_features_predicts_live_with_the_same_weights(tiny_encoder_handle, tmp_path):
    """The head trained on cached encoder vectors (WordFeatureNER) is loaded under the live encoder."""
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_ner", epochs=3)
    assert config.training.feature_cache
    run_dir = train(config, verbose=False)
    data = prepare_data(config, split=DataSplit.from_json(run_dir / "split.json"), verbose=False)
    inputs = ModelInputs(config, data, model_for(config, data), verbose=False)
    load_weights(inputs.trainable_model, run_dir)
    cached = FirstPiecePredictor(inputs.trainable_model).predict(inputs.dataset("test", shuffle=False),
                                                                 probabilities=True)
    live = Tagger.from_run(str(run_dir)).predict_words([s.words for s in data.part_sentences("test")])
    np.testing.assert_allclose(np.concatenate([probabilities for _, probabilities in live]), cached.probabilities,
                               atol=2e-3)  # cache: float16


def test_clear_errors(tagger, tmp_path, baseline_run):
    with pytest.raises(NerError, match="run 'no_such_run' not found"):
        ner.load("no_such_run")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text((baseline_run / "config.yaml").read_text())
    with pytest.raises(NerError, match="has no final weights"):
        ner.load(str(unfinished))
    with pytest.raises(TypeError, match="sequence of texts"):
        tagger.predict("John Smith")
    with pytest.raises(ValueError, match="threshold"):
        tagger.predict(["John"], threshold=1.5)


def test_import_ner_stays_light():
    code = ("import sys, ner; assert 'tensorflow' not in sys.modules; assert callable(ner.load); "
            "assert 'tensorflow' in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True)
