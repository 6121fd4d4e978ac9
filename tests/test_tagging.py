"""Tests for ner.tagging: label sets, id maps and BIO conversions of the "io" and "bio" schemes."""
import ner  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anything imports TensorFlow)

import pytest

from ner.errors import ConfigError, DataError
from ner.tagging import ENTITY_TYPES, OUTSIDE, TAG_SCHEMES, LabelMap, bio_tags, validate_bio


def spans(tags):
    """(type, start, end) of each IOB2 span; a stray I- starts a span, as seqeval reads it."""
    found, current = [], None
    for i, tag in enumerate(list(tags) + [OUTSIDE]):
        kind = tag[2:]
        if current and (tag == OUTSIDE or tag.startswith("B-") or kind != current[0]):
            found.append((current[0], current[1], i))
            current = None
        if tag != OUTSIDE and current is None:
            current = (kind, i)
    return found


GOLD = ["B-per", "I-per", "O", "B-geo", "O", "B-org", "I-org", "I-org", "B-tim", "B-geo", "I-geo"]


def test_label_sets():
    io = LabelMap.for_scheme("io")
    bio = LabelMap.for_scheme("bio")
    assert io.labels == ("O", "geo", "gpe", "per", "org", "tim", "art", "nat", "eve")
    assert io.num_labels == 9
    assert bio.labels[:5] == ("O", "B-geo", "I-geo", "B-gpe", "I-gpe")
    assert bio.labels == bio_tags(ENTITY_TYPES)
    assert bio.num_labels == 17
    assert io.entity_types == bio.entity_types == ENTITY_TYPES
    assert TAG_SCHEMES == ("io", "bio", "iob1", "biluo")


def test_ids_round_trip():
    for scheme in TAG_SCHEMES:
        label_map = LabelMap.for_scheme(scheme)
        for i, label in enumerate(label_map.labels):
            assert label_map.label_to_id(label) == i
            assert label_map.id_to_label(i) == label
        assert label_map.label_to_id(OUTSIDE) == 0


def test_unknown_label_and_id():
    label_map = LabelMap.for_scheme("io")
    with pytest.raises(DataError, match="B-geo"):
        label_map.label_to_id("B-geo")
    with pytest.raises(DataError, match="9"):
        label_map.id_to_label(9)


def test_entity_type():
    label_map = LabelMap.for_scheme("bio")
    assert label_map.entity_type("B-geo") == "geo"
    assert label_map.entity_type("I-tim") == "tim"
    assert label_map.entity_type("per") == "per"
    assert label_map.entity_type("O") == "O"


def test_from_bio():
    assert LabelMap.for_scheme("io").from_bio(["B-per", "I-per", "O", "B-geo"]) == ["per", "per", "O", "geo"]
    assert LabelMap.for_scheme("bio").from_bio(["B-per", "I-per", "O", "I-geo"]) == ["B-per", "I-per", "O", "I-geo"]


def test_from_bio_rejects_bad_tag():
    with pytest.raises(DataError, match=r"sentence 7, tag 2: invalid tag 'B-foo'"):
        LabelMap.for_scheme("io").from_bio(["O", "B-foo"], where="sentence 7")


def test_io_to_bio_starts_each_run_with_b():
    io = LabelMap.for_scheme("io")
    assert io.to_bio(["per", "per", "O", "geo", "per", "org", "org"]) == [
        "B-per", "I-per", "O", "B-geo", "B-per", "B-org", "I-org"
    ]


def test_bio_to_bio_repairs_stray_i():
    bio = LabelMap.for_scheme("bio")
    assert bio.to_bio(["I-per", "I-per", "O", "I-geo", "B-geo", "I-org", "B-tim", "I-tim"]) == [
        "B-per", "I-per", "O", "B-geo", "B-geo", "B-org", "B-tim", "I-tim"
    ]


@pytest.mark.parametrize("scheme", TAG_SCHEMES)
def test_to_bio_round_trip_keeps_spans(scheme):
    label_map = LabelMap.for_scheme(scheme)
    assert label_map.to_bio(label_map.from_bio(GOLD)) == GOLD
    assert spans(label_map.to_bio(label_map.from_bio(GOLD))) == spans(GOLD)


def test_io_merges_adjacent_spans_of_one_type():
    # IO cannot tell two touching spans of one type apart: B-geo B-geo comes back as one span.
    io = LabelMap.for_scheme("io")
    assert io.to_bio(io.from_bio(["B-geo", "B-geo"])) == ["B-geo", "I-geo"]
    assert LabelMap.for_scheme("bio").to_bio(["B-geo", "B-geo"]) == ["B-geo", "B-geo"]


def test_to_bio_rejects_unknown_label():
    with pytest.raises(DataError, match="B-per"):
        LabelMap.for_scheme("io").to_bio(["O", "B-per"])


def test_unknown_scheme():
    with pytest.raises(ConfigError, match="'bioes'.*io, bio, iob1, biluo"):
        LabelMap.for_scheme("bioes")


def test_custom_entity_types():
    label_map = LabelMap.for_scheme("bio", entity_types=("per", "loc"))
    assert label_map.labels == ("O", "B-per", "I-per", "B-loc", "I-loc")
    with pytest.raises(ConfigError):
        LabelMap.for_scheme("io", entity_types=("per", "per"))
    with pytest.raises(ConfigError):
        LabelMap.for_scheme("io", entity_types=("O",))


def test_direct_construction_checks_labels():
    assert LabelMap("io", LabelMap.for_scheme("io").labels) == LabelMap.for_scheme("io")
    with pytest.raises(ConfigError, match="not io labels"):
        LabelMap("io", LabelMap.for_scheme("bio").labels)
    with pytest.raises(ConfigError, match="not bio labels"):
        LabelMap("bio", ("O", "B-geo"))
    with pytest.raises(ConfigError, match="valid schemes"):
        LabelMap("iob", ("O",))


@pytest.mark.parametrize("tag", ["X", "B-foo", "b-geo", "B_geo", "", "I-"])
def test_validate_bio_rejects(tag):
    with pytest.raises(DataError, match=r"file\.csv line 12: invalid tag") as error:
        validate_bio([tag], "file.csv line 12")
    assert "B-geo" in str(error.value)  # lists the allowed tags


def test_validate_bio_accepts_gold():
    validate_bio(GOLD + ["I-art"], "here")
