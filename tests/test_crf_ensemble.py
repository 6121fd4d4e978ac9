"""CRF ensembles: the mean of the members' potentials, decoded with Viterbi, and `evaluate --ensemble`."""
import dataclasses
import itertools
import json

import numpy as np
import pytest

import ner  # noqa: F401
from ner.cli import main
from ner.crf_ensemble import (WordPotentials, average_potentials, check_member, marginal_probabilities,
                              span_marginal_probabilities, viterbi_label_ids)
from ner.errors import NerError
from ner.data import prepare_data
from ner.evaluation import evaluate, load_crf_member, write_results
from ner.models.crf_output import CrfOutput
from ner.preprocessor import DataSplit
from ner.tagging import LabelMap
from ner.experiment import train
from tests.helpers import give_run_random_scores, tiny_config


def _path_scores(emissions, transitions, start, end):
    """{path: score} for every label path of one row: start + emissions + transitions + end."""
    def score(path):
        total = start[path[0]] + end[path[-1]] + sum(emissions[t, label] for t, label in enumerate(path))
        return total + sum(transitions[a, b] for a, b in zip(path, path[1:]))
    return {path: score(path) for path in itertools.product(range(emissions.shape[1]), repeat=len(emissions))}


def test_viterbi_takes_the_transitions_into_account():
    """Two words, two labels. Alone, the emissions choose (0, 1) (2 + 1); a transition score of -5 from 0 to 1
    makes (0, 0) best (2 + 0 against 2 + 1 - 5, 0 + 1, 0 + 0)."""
    emissions = np.array([[2.0, 0.0], [0.0, 1.0]], np.float32)
    zeros = np.zeros(2, np.float32)
    free = WordPotentials(emissions, np.zeros((2, 2), np.float32), zeros, zeros)
    penalised = WordPotentials(emissions, np.array([[0.0, -5.0], [0.0, 0.0]], np.float32), zeros, zeros)
    assert viterbi_label_ids(free, [2]).tolist() == [0, 1]
    assert viterbi_label_ids(penalised, [2]).tolist() == [0, 0]


def test_viterbi_and_marginals_of_each_row_are_those_of_enumerating_its_paths():
    rng = np.random.default_rng(3)
    lengths = [4, 1, 0, 3, 2]
    potentials = WordPotentials(rng.normal(size=(sum(lengths), 3)).astype(np.float32),
                                *(rng.normal(size=shape).astype(np.float32) for shape in ((3, 3), 3, 3)))
    best, marginals = [], []
    for row in np.split(potentials.emissions, np.cumsum(lengths)[:-1]):
        if not len(row):
            continue
        scores = _path_scores(row, potentials.transitions, potentials.start, potentials.end)
        best.extend(max(scores, key=scores.get))
        weights = {path: np.exp(score) for path, score in scores.items()}
        row_marginals = np.zeros(row.shape)
        for path, weight in weights.items():
            row_marginals[np.arange(len(row)), path] += weight / sum(weights.values())
        marginals.append(row_marginals)
    assert viterbi_label_ids(potentials, lengths).tolist() == best
    np.testing.assert_allclose(marginal_probabilities(potentials, lengths), np.concatenate(marginals), atol=1e-5)
    with pytest.raises(ValueError, match="row lengths sum to 9 words, the emissions hold 10"):
        viterbi_label_ids(potentials, [4, 1, 0, 3, 1])
    no_words = dataclasses.replace(potentials, emissions=np.zeros((0, 3), np.float32))
    assert marginal_probabilities(no_words, []).shape == (0, 3) and viterbi_label_ids(no_words, []).shape == (0,)


def _bio_spans(tags):
    """{(start, end, type)} of IOB2 tags."""
    spans, start = set(), None
    for index, tag in enumerate([*tags, "O"]):
        if start is not None and not tag.startswith("I-"):
            spans.add((start, index, tags[start][2:]))
            start = None
        if tag.startswith("B-"):
            start = index
    return spans


def test_span_marginals_are_the_probability_of_each_words_span_by_enumeration():
    """IO labels over two types; rows of 4 and 3 words; the path scored is each row's Viterbi path. A word in
    an entity gets the probability of the paths holding exactly that span and type, an O word p(y = O)."""
    label_map = LabelMap.for_scheme("io", ("per", "geo"))
    rng = np.random.default_rng(5)
    lengths = [4, 3]
    potentials = WordPotentials(rng.normal(size=(7, 3)).astype(np.float32),
                                *(rng.normal(size=shape).astype(np.float32) for shape in ((3, 3), 3, 3)))
    paths = viterbi_label_ids(potentials, lengths)
    expected = []
    for row, path in zip(np.split(potentials.emissions, [4]), np.split(paths, [4])):
        weights = {candidate: np.exp(score) for candidate, score in
                   _path_scores(row, potentials.transitions, potentials.start, potentials.end).items()}
        total = sum(weights.values())
        bio = label_map.to_bio([label_map.labels[i] for i in path])
        for word, tag in enumerate(bio):
            if tag == "O":
                expected.append(sum(w for candidate, w in weights.items() if candidate[word] == 0) / total)
                continue
            span = next(span for span in _bio_spans(bio) if span[0] <= word < span[1])
            expected.append(sum(w for candidate, w in weights.items() if span in _bio_spans(
                label_map.to_bio([label_map.labels[i] for i in candidate]))) / total)
    np.testing.assert_allclose(span_marginal_probabilities(potentials, lengths, paths, label_map.span_reading()),
                               expected, atol=1e-5)


def test_check_member_names_the_run_and_what_differs():
    check_member("b", CrfOutput(), "bert_crf", ("O", "geo"), "a", ("O", "geo"))  # a CRF with the same labels
    with pytest.raises(NerError, match=r"run 'b' predicts the labels \['O', 'per'\], run 'a' \['O', 'geo'\]"):
        check_member("b", CrfOutput(), "bert_crf", ("O", "per"), "a", ("O", "geo"))
    with pytest.raises(NerError, match="run 'b' is a bert_ner model without a CRF"):
        check_member("b", object(), "bert_ner", ("O", "geo"), "a", ("O", "geo"))


def test_average_potentials_is_the_mean_of_each_part():
    first = WordPotentials(np.array([[1.0, 3.0]]), np.array([[0.0, 2.0], [4.0, 0.0]]), np.array([1.0, 1.0]),
                           np.array([0.0, 2.0]))
    second = WordPotentials(np.array([[3.0, -1.0]]), np.array([[2.0, 0.0], [0.0, 0.0]]), np.array([3.0, -1.0]),
                            np.array([2.0, 0.0]))
    mean = average_potentials([first, second])
    np.testing.assert_array_equal(mean.emissions, [[2.0, 1.0]])
    np.testing.assert_array_equal(mean.transitions, [[1.0, 1.0], [2.0, 0.0]])
    np.testing.assert_array_equal(mean.start, [2.0, 0.0])
    np.testing.assert_array_equal(mean.end, [1.0, 1.0])
    other_words = dataclasses.replace(second, emissions=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"member 1 scores emissions of shape \(2, 2\), member 0 of \(1, 2\)"):
        average_potentials([first, other_words])
    with pytest.raises(ValueError, match="at least one member"):
        average_potentials([])


@pytest.fixture(scope="module")
def two_crf_runs(tmp_path_factory, tiny_encoder_handle):
    """`(config of the first, first run dir, second run dir)`: two bert_crf runs of one split, with other casing
    sizes and initialisations, and random output scores (so that they tag differently)."""
    first = tiny_config(tmp_path_factory.mktemp("ensemble"), tiny_encoder_handle, "bert_crf", epochs=1)
    second = dataclasses.replace(first, run_name="second", model=dataclasses.replace(first.model, casing_dim=4),
                                 training=dataclasses.replace(first.training, seed=7))
    first_dir, second_dir = train(first, verbose=False), train(second, verbose=False)
    give_run_random_scores(first_dir, seed=1)
    give_run_random_scores(second_dir, seed=2)
    return first, first_dir, second_dir


def test_evaluate_decodes_a_crf_ensemble_and_writes_its_provenance(two_crf_runs, tmp_path, capsys):
    """With itself a run's ensemble tags as the run does; the pair's tags do not depend on the order of the
    members; the CLI writes `<run>_ensemble2/` naming the other member. A member without a CRF, or of another
    split, is refused."""
    first, first_dir, second_dir = two_crf_runs

    single = evaluate(str(first_dir), verbose=False)
    with_itself = evaluate(str(first_dir), verbose=False, ensemble=[str(first_dir)])
    assert with_itself.predicted_tags == single.predicted_tags
    pair = evaluate(str(first_dir), verbose=False, ensemble=[str(second_dir)])
    swapped = evaluate(str(second_dir), verbose=False, ensemble=[str(first_dir)])
    assert pair.predicted_tags == swapped.predicted_tags
    assert pair.predicted_tags != single.predicted_tags  # the second member's scores count
    assert list(pair.ensemble) == [second_dir]

    main(["evaluate", "--run", str(first_dir), "--ensemble", str(second_dir)])
    results = first.results_dir().with_name("bert_crf_io_ensemble2")
    assert f"entity F1 {pair.report.entity.f1:.4f}" in capsys.readouterr().out
    assert f"Decoded as a CRF ensemble with the run in `{second_dir}`" in (results / "report.md").read_text()
    assert list(json.loads((results / "manifest.json").read_text())["ensemble"]) == [str(second_dir)]
    assert write_results(pair, "test", tmp_path / "elsewhere") == tmp_path / "elsewhere"

    # A member keeps its own encoder: the environment's encoder handle (the evaluated run's) is not applied to it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NER_ENCODER_HANDLE", "/nowhere/encoder")
        data = prepare_data(first, split=DataSplit.from_json(first_dir / "split.json"), verbose=False)
        _, member = load_crf_member(str(second_dir), (), None, first, data)
    assert member.config.encoder.handle == first.encoder.handle

    no_crf = dataclasses.replace(first, run_name="no_crf", model=dataclasses.replace(first.model, type="bert_ner"))
    other_split = dataclasses.replace(first, run_name="other_split", split=dataclasses.replace(first.split, seed=5))
    for config, message in ((no_crf, "run '.*no_crf' is a bert_ner model without a CRF"),
                            (other_split, "ensemble run '.*other_split' has another split than run 'bert_crf_io'")):
        with pytest.raises(NerError, match=message):
            evaluate(str(first_dir), verbose=False, ensemble=[str(train(config, verbose=False))])


def test_evaluate_ensembles_example_scores_members_and_ensembles_as_evaluate_does(two_crf_runs, tmp_path, capsys):
    from examples.common import read_records
    from examples.evaluate_ensembles import main as evaluate_ensembles

    first, first_dir, second_dir = two_crf_runs
    seed = first.split.seed
    arguments = ["--seeds", str(seed), "--member", f"a={first_dir}", "--member", f"b={second_dir}",
                 "--ensemble", "a", "a+b", "--against", "a", "--output", str(tmp_path / "out")]
    evaluate_ensembles(arguments)
    rows = read_records(tmp_path / "out" / "runs.csv")
    assert [(row["model"], row["seed"]) for row in rows] == [("a", seed), ("a+b", seed)]
    assert rows[0]["entity_f1"] == evaluate(str(first_dir), verbose=False).report.entity.f1
    pair = evaluate(str(first_dir), verbose=False, ensemble=[str(second_dir)]).report
    assert rows[1]["entity_f1"] == pair.entity.f1 and rows[1]["mean_f1"] == pair.summary_row()["mean_f1"]
    table = (tmp_path / "out" / "ensembles.md").read_text()
    difference = pair.entity.f1 - rows[0]["entity_f1"]
    assert f"| a+b | 1 | " in table and f"{difference:+.4f} ± 0.0000 (1) |" in table
    evaluate_ensembles(arguments)  # recorded pairs are not evaluated again
    assert len(read_records(tmp_path / "out" / "runs.csv")) == 2
    base = ["--seeds", "1", "--member", "a=x", "--output", str(tmp_path)]
    with pytest.raises(SystemExit, match="--member 'b': expected NAME=VALUE"):
        evaluate_ensembles([*base, "--member", "b", "--ensemble", "a"])
    with pytest.raises(SystemExit, match="--member names may not hold"):
        evaluate_ensembles([*base, "--member", "b+c=y", "--ensemble", "a"])
    with pytest.raises(SystemExit):
        evaluate_ensembles([*base, "--ensemble", "a+c"])
    assert "--ensemble 'a+c' names c, which no --member defines" in capsys.readouterr().err


def test_an_ensemble_tagger_tags_as_the_ensemble_evaluates_and_as_one_run_with_itself(two_crf_runs, capsys):
    """`ner.load(run, ensemble=...)`: with itself a run tags as alone (labels, marginals, entity confidences);
    with another run it gives the test sentences the tags `evaluate --ensemble` scored; `ner predict
    --ensemble` writes the same entities; MC dropout, selection and a member without a CRF are refused."""
    first, first_dir, second_dir = two_crf_runs
    texts = ["john smith said the president in london today", "the army said today"]
    alone, with_itself = ner.load(str(first_dir)), ner.load(str(first_dir), ensemble=[str(first_dir)])
    words = [text.split() for text in texts]
    for (labels, probabilities), (want_labels, want_probabilities) in zip(with_itself.predict_words(words),
                                                                            alone.predict_words(words)):
        np.testing.assert_array_equal(labels, want_labels)
        np.testing.assert_allclose(probabilities, want_probabilities, atol=1e-5)
    for ours, theirs in zip(with_itself.predict(texts), alone.predict(texts)):
        assert [(e.text, e.type) for e in ours.entities] == [(e.text, e.type) for e in theirs.entities]
        assert [e.confidence for e in ours.entities] == pytest.approx([e.confidence for e in theirs.entities],
                                                                       abs=1e-5)

    pair = ner.load(str(first_dir), ensemble=[str(second_dir)])
    evaluation = evaluate(str(first_dir), verbose=False, ensemble=[str(second_dir)])
    tagged = pair.predict_words([sentence.words for sentence in evaluation.sentences])
    label_map = pair.label_map
    assert [label_map.to_bio([label_map.labels[i] for i in labels]) for labels, _ in tagged] == [
        list(tags) for tags in evaluation.predicted_tags]

    main(["predict", "--run", str(first_dir), "--ensemble", str(second_dir), "--format", "json", texts[0]])
    printed = json.loads(capsys.readouterr().out)
    assert [(e["text"], e["type"]) for e in printed["entities"]] == [
        (e.text, e.type) for e in pair.predict(texts[:1])[0].entities]

    with pytest.raises(ValueError, match="expected mc_samples 0"):
        pair.predict(texts, mc_samples=3)
    with pytest.raises(NerError, match="selection reads one model"):
        pair.select([text.split() for text in texts], budget=1)
    no_crf = dataclasses.replace(first, run_name="no_crf_tagger",
                                 model=dataclasses.replace(first.model, type="bert_ner"))
    with pytest.raises(NerError, match="run 'no_crf_tagger' is a bert_ner model without a CRF"):
        ner.load(str(first_dir), ensemble=[str(train(no_crf, verbose=False))])
