"""The IOB1 and BILUO schemes, strict sequence checks and transition constraints (ner.tagging).

tests/test_tagging.py covers the label maps and the IO / BIO conversions; this file checks that every
scheme round-trips gold BIO tags, reads invalid predictions leniently, and rejects invalid sequences.
"""
import ner  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anything imports TensorFlow)

import itertools
import random

import pytest

from ner.errors import DataError
from ner.tagging import OUTSIDE, TAG_SCHEMES, LabelMap, iob1_to_bio

TYPES = ("per", "org")
# Valid BIO: touching spans of one type (B-org B-org, B-per I-per B-per), one-word and long spans.
GOLD = ["B-per", "I-per", "O", "B-org", "B-org", "I-org", "O", "B-per", "I-per", "I-per", "B-per", "B-org"]
IOB1 = ["I-per", "I-per", "O", "I-org", "B-org", "I-org", "O", "I-per", "I-per", "I-per", "B-per", "I-org"]
BILUO = ["B-per", "L-per", "O", "U-org", "B-org", "L-org", "O", "B-per", "I-per", "L-per", "U-per", "U-org"]


def label_map(scheme):
    return LabelMap.for_scheme(scheme, entity_types=TYPES)


def random_bio(rng, length):
    """A valid BIO sequence: each position is O, B-<type> or (inside a span) I-<its type>."""
    tags, current = [], None
    for _ in range(length):
        choice = rng.choice(["O", "B", "I"] if current else ["O", "B"])
        if choice == "O":
            tags.append(OUTSIDE)
            current = None
        elif choice == "B":
            current = rng.choice(TYPES)
            tags.append("B-" + current)
        else:
            tags.append("I-" + current)
    return tags


def test_label_sets():
    assert label_map("iob1").labels == label_map("bio").labels == ("O", "B-per", "I-per", "B-org", "I-org")
    assert label_map("biluo").labels == ("O", "B-per", "I-per", "L-per", "U-per", "B-org", "I-org", "L-org", "U-org")
    assert label_map("biluo").entity_types == TYPES
    assert LabelMap("biluo", label_map("biluo").labels) == label_map("biluo")
    assert LabelMap.entity_type("U-per") == LabelMap.entity_type("L-per") == "per"


@pytest.mark.parametrize("scheme, expected", [("bio", GOLD), ("iob1", IOB1), ("biluo", BILUO)])
def test_from_bio_and_back(scheme, expected):
    labels = label_map(scheme)
    assert labels.from_bio(GOLD) == expected
    assert labels.to_bio(expected) == GOLD
    labels.check_sequence(expected)


@pytest.mark.parametrize("scheme", TAG_SCHEMES)
def test_round_trip_on_random_valid_sequences(scheme):
    rng = random.Random(0)
    labels = label_map(scheme)
    for length in range(0, 9):
        for _ in range(40):
            gold = random_bio(rng, length)
            converted = labels.from_bio(gold)
            labels.check_sequence(converted)
            if scheme == "io":  # IO merges touching spans of one type; everything else is exact
                assert labels.to_bio(converted) == label_map("io").to_bio(label_map("io").from_bio(gold))
            else:
                assert labels.to_bio(converted) == gold


@pytest.mark.parametrize("scheme", TAG_SCHEMES)
def test_to_bio_turns_any_label_sequence_into_valid_bio(scheme):
    rng = random.Random(1)
    labels, strict_bio = label_map(scheme), label_map("bio")
    for _ in range(300):
        predicted = [rng.choice(labels.labels) for _ in range(rng.randint(0, 8))]
        strict_bio.check_sequence(labels.to_bio(predicted))


def test_stray_i_is_read_as_a_span_start():
    stray = ["O", "I-per", "I-per", "I-org"]  # as gold data sometimes has it
    assert label_map("bio").from_bio(stray) == stray  # kept, as before
    assert label_map("iob1").from_bio(stray) == ["O", "I-per", "I-per", "I-org"]
    assert label_map("biluo").from_bio(stray) == ["O", "B-per", "L-per", "U-org"]


def test_iob1_to_bio_reads_conll_2003_tags():
    assert iob1_to_bio(["I-ORG", "O", "I-PER", "I-PER", "B-PER", "I-LOC", "B-LOC"]) == [
        "B-ORG", "O", "B-PER", "I-PER", "B-PER", "B-LOC", "B-LOC"]


def test_biluo_to_bio_is_lenient():
    # L- without an open span starts (and ends) one; I- after U- starts a new span; B- then O is a one-word span.
    assert label_map("biluo").to_bio(["L-per", "U-org", "I-org", "B-per", "O", "I-per", "L-org"]) == [
        "B-per", "B-org", "B-org", "B-per", "O", "B-per", "B-org"]


@pytest.mark.parametrize("scheme, labels, position, message", [
    ("bio", ["B-org", "I-per"], 2, "'I-per' is not allowed after 'B-org' under the bio scheme"),
    ("bio", ["I-per"], 1, "'I-per' is not allowed at the start of a sentence under the bio scheme"),
    ("bio", ["O", "I-org"], 2, "after 'O'"),
    ("iob1", ["O", "B-per"], 2, "'B-per' is not allowed after 'O' under the iob1 scheme"),
    ("iob1", ["I-org", "B-per"], 2, "after 'I-org'"),
    ("biluo", ["B-per", "O"], 2, "'O' is not allowed after 'B-per' under the biluo scheme"),
    ("biluo", ["U-per", "L-per"], 2, "'L-per' is not allowed after 'U-per'"),
    ("biluo", ["B-per", "I-org"], 2, "'I-org' is not allowed after 'B-per'"),
    ("biluo", ["O", "B-per"], 2, "a sentence cannot end with 'B-per' under the biluo scheme"),
])
def test_check_sequence_rejects_invalid_sequences(scheme, labels, position, message):
    with pytest.raises(DataError, match=rf"train\.txt line 7, tag {position}: .*{message}.*; ") as error:
        label_map(scheme).check_sequence(labels, where="train.txt line 7")
    assert "must" in str(error.value)  # the scheme's rule is spelled out


def test_check_sequence_rejects_unknown_labels():
    with pytest.raises(DataError, match="'U-per'.*not in the bio labels"):
        label_map("bio").check_sequence(["U-per"])
    label_map("io").check_sequence(["per", "org", "O", "per"])  # every IO sequence is valid


@pytest.mark.parametrize("scheme", TAG_SCHEMES)
def test_allowed_transitions_agree_with_check_sequence(scheme):
    labels = label_map(scheme)
    start, transitions, end = labels.allowed_transitions()
    size = labels.num_labels
    assert len(start) == len(end) == len(transitions) == size and {len(row) for row in transitions} == {size}
    rng = random.Random(2)
    for _ in range(400):
        ids = [rng.randrange(size) for _ in range(rng.randint(1, 5))]
        valid = start[ids[0]] and end[ids[-1]] and all(transitions[a][b] for a, b in zip(ids, ids[1:]))
        try:
            labels.check_sequence([labels.id_to_label(i) for i in ids])
            accepted = True
        except DataError:
            accepted = False
        assert accepted == valid, [labels.id_to_label(i) for i in ids]


def test_bio_constraints_forbid_o_to_i_and_type_changes():
    labels = label_map("bio")
    start, transitions, end = labels.allowed_transitions()
    ids = labels.label_to_id
    assert not start[ids("I-per")] and start[ids("B-per")] and start[ids("O")]
    assert not transitions[ids("O")][ids("I-per")]
    assert not transitions[ids("B-org")][ids("I-per")]
    assert transitions[ids("B-per")][ids("I-per")] and transitions[ids("I-per")][ids("B-per")]
    assert all(end)
    assert all(all(row) for row in label_map("io").allowed_transitions().transitions)


def test_span_reading_of_bio_by_hand():
    """Labels O, B-per, I-per, B-org, I-org: only an I- right after a label of its own type continues."""
    types, continues = label_map("bio").span_reading()
    assert types == (0, 1, 1, 2, 2)
    assert {(i, j) for i in range(5) for j in range(5) if continues[i][j]} == {(1, 2), (2, 2), (3, 4), (4, 4)}


@pytest.mark.parametrize("scheme", TAG_SCHEMES)
def test_span_reading_replays_to_bio_on_every_short_sequence(scheme):
    """Reading each label against the one before only (`SpanReading`) gives `to_bio`'s tags on all label
    sequences of 1 to 3 labels."""
    labels = label_map(scheme)
    types, continues = labels.span_reading()
    for length in (1, 2, 3):
        for ids in itertools.product(range(labels.num_labels), repeat=length):
            names = [labels.id_to_label(i) for i in ids]
            replayed = [OUTSIDE if types[i] == 0 else
                        ("I-" if t > 0 and continues[ids[t - 1]][i] else "B-") + labels.entity_types[types[i] - 1]
                        for t, i in enumerate(ids)]
            assert replayed == labels.to_bio(names), names
