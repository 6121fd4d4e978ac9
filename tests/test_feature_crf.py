"""The feature-CRF reference (`ner.baselines.feature_crf`): its features by hand, and a CRF that learns."""
from ner.baselines.feature_crf import FeatureCRF, sentence_features, word_shape


def test_word_shape_collapses_runs():
    assert [word_shape(w) for w in ["McDonald's", "1990", "F-16", "U.S.", "the"]] == ["XxXx'x", "d", "X-d", "X.X.", "x"]


def test_sentence_features_by_hand():
    first, last = sentence_features(["Paris", "1990"])
    assert first == {"bias": True, "lower": "paris", "suffix2": "is", "suffix3": "ris", "title": True,
                     "upper": False, "digit": False, "shape": "Xx", "BOS": True,
                     "+1:lower": "1990", "+1:suffix2": "90", "+1:suffix3": "990", "+1:title": False,
                     "+1:upper": False, "+1:digit": True, "+1:shape": "d"}
    assert last["EOS"] is True and last["-1:lower"] == "paris" and last["digit"] is True and "BOS" not in last


def test_extended_sentence_features_add_the_extended_lexical_templates():
    """The same additions as the `extended` lexical ids (`ner.lexical`), by hand."""
    words = ["New", "York", "rises"]
    plain, extended = sentence_features(words), sentence_features(words, "extended")
    assert {key: extended[0][key] for key in set(extended[0]) - set(plain[0])} == {
        "prefix2": "ne", "prefix3": "new", "-2:lower": "<s>", "-2:shape": "<s>", "+2:lower": "rises",
        "+2:shape": "x", "-1|0:lower": "<s>|new", "0|+1:lower": "new|york"}
    assert extended[2]["-2:shape"] == "Xx" and extended[2]["0|+1:lower"] == "rises|</s>"
    assert all(extended[i].items() >= plain[i].items() for i in range(3))


def test_the_crf_learns_a_capitalisation_rule_and_a_transition():
    # Capitalised words are entities; a capitalised word right after one continues it (I-), else B-.
    train = [["Anna", "met", "Bob", "Smith", "today"], ["we", "saw", "Carl"], ["Dora", "Evans", "left"]] * 5
    tags = [["B-per", "O", "B-per", "I-per", "O"], ["O", "O", "B-per"], ["B-per", "I-per", "O"]] * 5
    crf = FeatureCRF().fit(train, tags)
    assert crf.predict([["Fred", "Jones", "ran"], ["they", "met", "Gina"]]) == [["B-per", "I-per", "O"],
                                                                                   ["O", "O", "B-per"]]


def test_predict_on_split_tags_the_test_part_that_evaluate_on_split_scores(tmp_path):
    from ner.baselines.feature_crf import evaluate_on_split, predict_on_split
    from ner.model_evaluator import build_report
    from ner.tagging import bio_tags
    from tests.helpers import tiny_config

    config = tiny_config(tmp_path, "unused: the feature CRF reads no encoder", "bert_ner", "bio")
    predictions = predict_on_split(config)
    sentences, predicted = predictions.parts["test"]
    assert tuple(s.sentence_id for s in sentences) == predictions.split.test_ids
    assert [len(tags) for tags in predicted] == [len(s.words) for s in sentences]
    reports, _ = evaluate_on_split(config)
    expected = build_report([list(s.tags) for s in sentences], predicted, bio_tags(predictions.entity_types))
    assert reports["test"].summary_row() == expected.summary_row()
    assert reports["test"].entity == expected.entity
