"""Error kinds and mention novelty (`ner.error_analysis`) on rows whose answers are counted by hand."""
from collections import Counter

from ner.error_analysis import (EntityError, bracketed, entity_errors, error_kind_counts, mention_texts,
                                recall_by_novelty, sample_errors)

WORDS = [["John", "Smith", "visited", "New", "York", "today"],
         ["The", "UN", "met", "in", "Paris"],
         ["Rain", "fell"]]
GOLD = [["B-per", "I-per", "O", "B-geo", "I-geo", "B-tim"],
        ["O", "B-org", "O", "O", "B-geo"],
        ["O", "O"]]
PREDICTED = [["B-per", "O", "O", "B-org", "I-org", "B-tim"],   # Smith cut off; New York typed org
             ["O", "O", "O", "B-geo", "I-geo"],                  # UN missed; "in Paris" too long
             ["B-nat", "O"]]                                     # Rain spurious


def test_each_gold_error_gets_one_kind_and_unmatched_predictions_are_spurious():
    errors = entity_errors(GOLD, PREDICTED)
    assert errors == [
        EntityError("boundary", 0, (0, 0, 2, "per"), ((0, 0, 1, "per"),)),
        EntityError("wrong type", 0, (0, 3, 5, "geo"), ((0, 3, 5, "org"),)),
        EntityError("missed", 1, (1, 1, 2, "org"), ()),
        EntityError("boundary", 1, (1, 4, 5, "geo"), ((1, 3, 5, "geo"),)),
        EntityError("spurious", 2, None, ((2, 0, 1, "nat"),)),
    ]
    assert error_kind_counts(errors) == Counter({("boundary", "per", "-"): 1, ("wrong type", "geo", "org"): 1,
                                                 ("missed", "org", "-"): 1, ("boundary", "geo", "-"): 1,
                                                 ("spurious", "-", "nat"): 1})


def test_a_perfect_prediction_has_no_errors():
    assert entity_errors(GOLD, GOLD) == []


def test_recall_by_novelty_counts_gold_mentions_and_exact_hits():
    labelled = mention_texts([["Mr", "john", "smith"], ["new", "york", "!"]],
                             [["O", "B-per", "I-per"], ["B-org", "I-org", "O"]])
    unlabelled = mention_texts([["UN", "and", "Paris"]], [["B-org", "O", "B-geo"]])
    assert labelled == {"john smith", "new york"}
    recall = recall_by_novelty(WORDS, GOLD, PREDICTED, labelled, unlabelled)
    # labelled: John Smith (missed by a word), New York (seen as org there, a gold mention all the same; typed org)
    # unlabelled only: UN (missed), Paris (too long); new: today (found)
    assert recall == {("labelled", "per"): (1, 0), ("labelled", "geo"): (1, 0), ("labelled", "all"): (2, 0),
                      ("new", "tim"): (1, 1), ("new", "all"): (1, 1),
                      ("unlabelled only", "org"): (1, 0), ("unlabelled only", "geo"): (1, 0),
                      ("unlabelled only", "all"): (2, 0)}


def test_bracketed_marks_spans_and_cuts_them_at_the_window():
    spans = [(0, 0, 2, "per"), (0, 3, 5, "geo")]
    assert bracketed(WORDS[0], spans, 0, 6) == "[John Smith]per visited [New York]geo today"
    assert bracketed(WORDS[0], spans, 1, 4) == "[Smith]per visited [New]geo"


def test_sample_errors_is_seeded_and_takes_all_when_fewer():
    errors = entity_errors(GOLD, PREDICTED)
    assert sample_errors(errors, 3, seed=1) == sample_errors(errors, 3, seed=1)
    assert len(sample_errors(errors, 3, seed=1)) == 3
    assert sorted(sample_errors(errors, 10, seed=1), key=errors.index) == errors


def test_the_example_writes_its_tables_for_a_trained_run(tmp_path, tiny_encoder_handle):
    from examples.error_analysis import analyse, tagged_test_part
    from ner.experiment import evaluate, train
    from tests.helpers import tiny_config

    run_dir = train(tiny_config(tmp_path, tiny_encoder_handle, "bert_ner", "io", epochs=1), verbose=False)
    evaluation = evaluate(str(run_dir), verbose=False)
    gold = [s.tags for s in evaluation.sentences]
    directory = analyse(tagged_test_part(str(run_dir), None, []), 3, 1, tmp_path / "analysis",
                        "python -m examples.error_analysis")
    kinds = (directory / "error_kinds.csv").read_text().splitlines()
    assert kinds[0] == "kind,gold_type,predicted_type,count"
    assert sum(int(line.rsplit(",", 1)[1]) for line in kinds[1:]) == len(entity_errors(gold, evaluation.predicted_tags))
    novelty = (directory / "recall_by_novelty.csv").read_text().splitlines()
    gold_mentions = sum(int(line.split(",")[2]) for line in novelty[1:] if line.split(",")[1] == "all")
    assert gold_mentions == sum(1 for row in gold for tag in row if tag.startswith("B-"))
    summary = (directory / "summary.md").read_text()
    assert "Made by `python -m examples.error_analysis`" in summary
    assert "| kind | entity | gold | predicted | judgement |" in summary


def test_spans_by_row_groups_entities_and_leaves_out_rows_without_any():
    from ner.error_analysis import spans_by_row
    assert spans_by_row(GOLD) == {0: [(0, 0, 2, "per"), (0, 3, 5, "geo"), (0, 5, 6, "tim")],
                                  1: [(1, 1, 2, "org"), (1, 4, 5, "geo")]}
