"""Tests for ner.preprocessor: the GMB reader, splits, WordPiece featurization and the tf.data pipeline.

Every test builds its own tiny CSV and vocab under tmp_path; only the last test reads the real GMB file,
and it is skipped when that file is absent.
"""
import ner  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ner.errors import ConfigError, DataError
from ner.preprocessor import (
    IGNORE_LABEL,
    DataSplit,
    Sentence,
    WordPieceFeaturizer,
    add_labelled_from_file,
    length_grouped_batches,
    make_dataset,
    make_split,
    outside_fractions,
    read_gmb_csv,
    row_order,
)
from ner.tagging import LabelMap

HEADER = "Sentence #,Word,POS,Tag"
VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",  # 0-4
    "the", "cat", "sat", "on", "mat",  # 5-9
    "london", "u", ".", "s", "play", "##ing", "##s",  # 10-16
    "un", "##believ", "##able", "john", ",",  # 17-21
]
ID = {token: i for i, token in enumerate(VOCAB)}
BIO = LabelMap.for_scheme("bio")


def write_csv(tmp_path: Path, lines: list[str], name: str = "ner.csv", encoding: str = "latin-1") -> Path:
    """Writes `lines` with CRLF endings, like the Kaggle file."""
    path = tmp_path / name
    path.write_bytes("".join(line + "\r\n" for line in lines).encode(encoding))
    return path


@pytest.fixture
def vocab_path(tmp_path: Path) -> Path:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return path


def featurizer(vocab_path: Path, max_seq_length: int = 16, long_sentences: str = "split",
               label_map: LabelMap = BIO) -> WordPieceFeaturizer:
    return WordPieceFeaturizer(vocab_path, True, max_seq_length, label_map, long_sentences)


def sentence(sentence_id: int, words: list[str], tags: list[str] | None = None) -> Sentence:
    return Sentence(sentence_id, tuple(words), tuple(tags or ["O"] * len(words)))


# ---------------------------------------------------------------------------------------------------
# read_gmb_csv


def test_read_gmb_csv(tmp_path):
    path = write_csv(tmp_path, [
        HEADER,
        "Sentence: 1,None,NNP,B-per",
        ",Müller,NNP,I-per",
        ',"10,000",CD,O',
        ',"""",``,O',
        "Sentence: 5,°C,NN,O",
        ",London,NNP,B-geo",
    ])
    sentences = read_gmb_csv(path)
    assert sentences == [
        Sentence(1, ("None", "Müller", "10,000", '"'), ("B-per", "I-per", "O", "O")),
        Sentence(5, ("°C", "London"), ("O", "B-geo")),
    ]


def test_read_gmb_csv_column_order_and_extra_columns(tmp_path):
    path = write_csv(tmp_path, ["Tag,Word,Sentence #,Extra", "O,Hi,Sentence: 2,x", "B-geo,Paris,,y"])
    assert read_gmb_csv(path) == [Sentence(2, ("Hi", "Paris"), ("O", "B-geo"))]


def test_read_gmb_csv_missing_file(tmp_path):
    with pytest.raises(DataError) as error:
        read_gmb_csv(tmp_path / "absent.csv")
    message = str(error.value)
    assert "absent.csv" in message and "data.gmb_path" in message and "NER_GMB_PATH" in message


def test_read_gmb_csv_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="empty.csv is empty"):
        read_gmb_csv(path)


BAD_FILES = {
    "missing column": (["Sentence #,Word,POS", "Sentence: 1,a,DT"], 1, "lacks columns ['Tag']"),
    "too few fields": ([HEADER, "Sentence: 1,a,DT,O", ",b,DT"], 3, "expected 4 fields"),
    "too many fields": ([HEADER, "Sentence: 1,a,DT,O", ",b,c,DT,O"], 3, "found 5"),
    "blank line": ([HEADER, "Sentence: 1,a,DT,O", "", ",b,DT,O"], 3, "found 0"),
    "no first id": ([HEADER, ",a,DT,O"], 2, "no sentence id"),
    "malformed id": ([HEADER, "Sentence: 1,a,DT,O", "Sent 2,b,DT,O"], 3, "malformed sentence id 'Sent 2'"),
    "repeated id": ([HEADER, "Sentence: 1,a,DT,O", "Sentence: 1,b,DT,O"], 3, "already used on line 2"),
    "bad tag": (
        [HEADER, "Sentence: 1,a,DT,O", ",b,DT,O", ",c,NNP,B-foo"], 4, "invalid tag 'B-foo'; expected one of O, B-geo"
    ),
    "lower-case tag": ([HEADER, "Sentence: 1,a,DT,o"], 2, "invalid tag 'o'"),
    "empty word": ([HEADER, "Sentence: 1,a,DT,O", ",,DT,O"], 3, "empty word"),
    "bad quoting": ([HEADER, "Sentence: 1,a,DT,O", ',"b"c,DT,O'], 3, "malformed CSV"),
    "header only": ([HEADER], None, "no data rows"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_read_gmb_csv_bad_input(tmp_path, case):
    lines, line, expected = BAD_FILES[case]
    path = write_csv(tmp_path, lines, name="bad_input.csv")
    with pytest.raises(DataError) as error:
        read_gmb_csv(path)
    message = str(error.value)
    assert "bad_input.csv" in message
    assert expected in message
    if line is not None:
        assert f"line {line}:" in message


def test_read_gmb_csv_undecodable(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"Sentence #,Word,POS,Tag\r\nSentence: 1,a,DT,O\r\n,\x85,:,O\r\n")
    with pytest.raises(DataError, match=r"latin\.csv line 3: bytes are not valid utf-8"):
        read_gmb_csv(path, encoding="utf-8")
    assert read_gmb_csv(path)[0].words == ("a", "\x85")  # latin-1 decodes every byte


def test_read_gmb_csv_other_entity_types(tmp_path):
    path = write_csv(tmp_path, [HEADER, "Sentence: 1,Ann,NNP,B-person"])
    with pytest.raises(DataError, match="line 2"):
        read_gmb_csv(path)
    assert read_gmb_csv(path, entity_types=("person",))[0].tags == ("B-person",)


def test_sentence_needs_one_tag_per_word():
    with pytest.raises(DataError, match="sentence 4: 2 words but 1 tags"):
        Sentence(4, ("a", "b"), ("O",))


# ---------------------------------------------------------------------------------------------------
# Splits


def test_make_split_partitions_ids():
    ids = list(range(100, 200))
    split = make_split(ids, test_size=30, labelled_size=20, seed=1, validation_size=10)
    parts = list(split.parts().values())
    assert [len(p) for p in parts] == [30, 20, 10, 40]
    assert sorted(sum(map(list, parts), [])) == ids  # disjoint and covering
    assert split.seed == 1


def test_make_split_is_seeded():
    ids = list(range(100))
    assert make_split(ids, 30, 20, seed=1) == make_split(ids, 30, 20, seed=1)
    assert make_split(ids, 30, 20, seed=1) == make_split(ids[::-1], 30, 20, seed=1)  # order-independent
    assert make_split(ids, 30, 20, seed=1).test_ids != make_split(ids, 30, 20, seed=2).test_ids


def test_make_split_rejects_bad_sizes():
    with pytest.raises(ConfigError, match="add up to 11, more than the 10 sentences"):
        make_split(range(10), test_size=6, labelled_size=5, seed=0)
    with pytest.raises(ConfigError):
        make_split(range(10), test_size=-1, labelled_size=5, seed=0)
    with pytest.raises(DataError, match="repeat"):
        make_split([1, 2, 2], test_size=1, labelled_size=1, seed=0)


def test_make_split_random_order_is_unchanged():
    """The ids and order the random split gave before `labelled_selection` existed (saved runs rely on it)."""
    expected = DataSplit(test_ids=(116, 112, 118, 108, 103), labelled_ids=(113, 115, 110, 106),
                         validation_ids=(101, 102, 111), unlabelled_ids=(117, 100, 114, 109, 104, 107, 105, 119),
                         seed=3)
    ids = list(range(100, 120))
    assert make_split(ids, test_size=5, labelled_size=4, seed=3, validation_size=3) == expected
    fractions = {i: 1.0 - (i % 7) / 7 for i in ids}
    assert make_split(ids, 5, 4, seed=3, validation_size=3, labelled_selection="random",
                      outside_fraction=fractions) == expected


def test_add_labelled_from_file_moves_the_listed_unlabelled_ids_in_file_order(tmp_path):
    split = DataSplit(test_ids=(1, 2), labelled_ids=(3,), validation_ids=(4,), unlabelled_ids=(5, 6, 7, 8), seed=0)
    (tmp_path / "ids.txt").write_text("7\n5\n", encoding="utf-8")
    assert add_labelled_from_file(split, tmp_path / "ids.txt") == DataSplit(
        test_ids=(1, 2), labelled_ids=(3, 7, 5), validation_ids=(4,), unlabelled_ids=(6, 8), seed=0)
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    assert add_labelled_from_file(split, tmp_path / "empty.txt") == split


@pytest.mark.parametrize("text, message", [
    ("5\nsix\n", "ids.txt:2: expected one integer sentence id a line, found 'six'"),
    ("5\n\n6\n", "ids.txt:2: expected one integer sentence id a line, found ''"),
    ("5\n6\n5\n", "ids.txt:3: sentence id 5 repeats line 1"),
    ("6\n2\n", "ids.txt:2: sentence id 2 is in the split's test part; expected ids of unlabelled sentences"),
    ("4\n", "ids.txt:1: sentence id 4 is in the split's validation part"),
    ("3\n", "ids.txt:1: sentence id 3 is in the split's labelled part"),
    ("99\n", "ids.txt:1: sentence id 99 is not in the corpus"),
])
def test_add_labelled_from_file_names_the_file_and_line_of_a_bad_id(tmp_path, text, message):
    split = DataSplit(test_ids=(1, 2), labelled_ids=(3,), validation_ids=(4,), unlabelled_ids=(5, 6, 7, 8), seed=0)
    (tmp_path / "ids.txt").write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(message)):
        add_labelled_from_file(split, tmp_path / "ids.txt")
    with pytest.raises(DataError, match="added labelled ids file not found: .*missing.txt"):
        add_labelled_from_file(split, tmp_path / "missing.txt")


def _tagged_corpus(n: int = 80, length: int = 10) -> list:
    """Sentences whose O fraction varies from 0.1 to 1.0: sentence i has (i·7 mod 10) entity words."""
    return [Sentence(i, tuple(f"w{k}" for k in range(length)),
                     tuple("B-geo" if k < (i * 7) % 10 else "O" for k in range(length))) for i in range(n)]


def test_outside_fractions():
    corpus = _tagged_corpus(3)
    assert outside_fractions(corpus) == {0: 1.0, 1: 0.3, 2: pytest.approx(0.6)}
    assert outside_fractions([Sentence(5, (), ())]) == {5: 1.0}


def test_make_split_fewer_outside_prefers_entity_dense_sentences():
    corpus = _tagged_corpus()
    fractions = outside_fractions(corpus)
    ids = [s.sentence_id for s in corpus]
    random = make_split(ids, test_size=20, labelled_size=15, seed=4, validation_size=10)
    biased = make_split(ids, test_size=20, labelled_size=15, seed=4, validation_size=10,
                        labelled_selection="fewer_outside", outside_fraction=fractions)
    parts = list(biased.parts().values())
    assert [len(p) for p in parts] == [20, 15, 10, 35]
    assert sorted(sum(map(list, parts), [])) == ids  # disjoint and covering
    assert biased.test_ids == random.test_ids  # the test part is the random split's
    labelled = [fractions[i] for i in biased.labelled_ids]
    assert np.mean(labelled) < np.mean([fractions[i] for i in random.labelled_ids])
    assert labelled == sorted(labelled)
    others = biased.validation_ids + biased.unlabelled_ids
    assert max(labelled) <= min(fractions[i] for i in others)  # no unchosen sentence has fewer O
    # validation and unlabelled keep the shuffled order of the ids after the test part
    rest = random.labelled_ids + random.validation_ids + random.unlabelled_ids
    assert list(others) == [i for i in rest if i not in set(biased.labelled_ids)]
    again = make_split(ids[::-1], test_size=20, labelled_size=15, seed=4, validation_size=10,
                       labelled_selection="fewer_outside", outside_fraction=fractions)
    assert again == biased  # seeded and order-independent


def test_make_split_rejects_bad_labelled_selection():
    with pytest.raises(ConfigError, match=r"split\.labelled_selection must be one of .*'by_length'"):
        make_split(range(10), 2, 2, seed=0, labelled_selection="by_length")
    with pytest.raises(ValueError, match="needs outside_fraction"):
        make_split(range(10), 2, 2, seed=0, labelled_selection="fewer_outside")
    with pytest.raises(DataError, match="lacks 1 of the sentence ids"):
        make_split(range(10), 2, 2, seed=0, labelled_selection="fewer_outside",
                   outside_fraction={i: 0.5 for i in range(9)})


def test_split_json_round_trip(tmp_path):
    split = make_split(range(50), 10, 5, seed=3, validation_size=4)
    path = split.to_json(tmp_path / "sub" / "split.json")
    assert DataSplit.from_json(path) == split


def test_split_from_bad_json(tmp_path):
    path = tmp_path / "split.json"
    path.write_text('{"seed": 1, "test_ids": [1], "labelled_ids": []}', encoding="utf-8")
    with pytest.raises(DataError, match=r"split\.json: expected exactly the keys"):
        DataSplit.from_json(path)
    path.write_text('{"seed": 1, "test_ids": [1], "labelled_ids": [1], "validation_ids": [], "unlabelled_ids": []}',
                    encoding="utf-8")
    with pytest.raises(DataError, match="share 1 sentence ids"):
        DataSplit.from_json(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="not a JSON split file"):
        DataSplit.from_json(path)
    with pytest.raises(DataError, match="not found"):
        DataSplit.from_json(tmp_path / "absent.json")


# ---------------------------------------------------------------------------------------------------
# WordPieceFeaturizer


def test_featurize_aligns_labels_to_first_pieces(vocab_path):
    words = ["The", "cat", "playing", "U.S.", "xyz", "\x00"]
    tags = ["O", "B-per", "I-per", "B-geo", "O", "B-org"]
    encoded = featurizer(vocab_path).featurize([sentence(9, words, tags)])
    pieces = [ID[t] for t in ["[CLS]", "the", "cat", "play", "##ing", "u", ".", "s", ".", "[UNK]", "[UNK]", "[SEP]"]]
    labels = [-1, BIO.label_to_id("O"), BIO.label_to_id("B-per"), BIO.label_to_id("I-per"), -1,
              BIO.label_to_id("B-geo"), -1, -1, -1, BIO.label_to_id("O"), BIO.label_to_id("B-org"), -1]
    n = len(pieces)
    assert encoded.input_word_ids.shape == (1, 16) and encoded.input_word_ids.dtype == np.int32
    assert encoded.input_word_ids[0].tolist() == pieces + [0] * (16 - n)
    assert encoded.label_ids[0].tolist() == labels + [IGNORE_LABEL] * (16 - n)
    assert encoded.input_mask[0].tolist() == [1] * n + [0] * (16 - n)
    assert encoded.input_type_ids.tolist() == [[0] * 16]
    assert encoded.sentence_ids.tolist() == [9] and encoded.num_words.tolist() == [6]
    assert encoded.stats.words_unk == 1  # "\x00" has no pieces and became one [UNK]
    assert encoded.stats.rows == 1 and encoded.stats.sentences_split == 0


def test_featurize_io_scheme(vocab_path):
    io = LabelMap.for_scheme("io")
    encoded = featurizer(vocab_path, label_map=io).featurize([sentence(1, ["John", "London"], ["B-per", "B-geo"])])
    assert encoded.label_ids[0, :4].tolist() == [-1, io.label_to_id("per"), io.label_to_id("geo"), -1]


def test_featurize_splits_long_sentence_and_words_labels_rejoins(vocab_path):
    tags = ["B-per", "I-per", "O", "B-geo", "I-geo", "O", "O", "B-tim", "I-tim", "O"]
    sentences = [sentence(1, ["the"]), sentence(2, ["cat"] * 10, tags), sentence(3, ["sat", "on"])]
    encoded = featurizer(vocab_path, max_seq_length=6).featurize(sentences)  # 4 pieces per row
    assert encoded.sentence_ids.tolist() == [1, 2, 2, 2, 3]
    assert encoded.word_offsets.tolist() == [0, 0, 4, 8, 0]
    assert encoded.num_words.tolist() == [1, 4, 4, 2, 2]
    assert encoded.input_word_ids[2].tolist() == [ID["[CLS]"]] + [ID["cat"]] * 4 + [ID["[SEP]"]]
    assert encoded.input_word_ids[3].tolist() == [ID["[CLS]"], ID["cat"], ID["cat"], ID["[SEP]"], 0, 0]
    stats = encoded.stats
    assert (stats.sentences, stats.rows, stats.sentences_split, stats.sentences_truncated) == (3, 5, 1, 0)
    assert stats.summary().startswith("featurized 3 sentences into 5 rows (max_seq_length 6): 1 split")

    labels = featurizer(vocab_path, max_seq_length=6).words_labels(encoded, encoded.label_ids)
    assert list(labels) == [1, 2, 3]
    assert labels[2] == [BIO.label_to_id(t) for t in tags]


def test_featurize_cuts_a_word_longer_than_a_row(vocab_path):
    # "unbelievables" = un ##believ ##able ##s: 4 pieces, a row of width 5 holds 3.
    sentences = [sentence(1, ["unbelievables", "cat"], ["B-per", "O"])]
    encoded = featurizer(vocab_path, max_seq_length=5).featurize(sentences)
    assert encoded.input_word_ids.tolist() == [
        [ID["[CLS]"], ID["un"], ID["##believ"], ID["##able"], ID["[SEP]"]],
        [ID["[CLS]"], ID["cat"], ID["[SEP]"], 0, 0],
    ]
    assert encoded.label_ids[0, 1] == BIO.label_to_id("B-per")
    assert encoded.stats.words_cut == 1 and encoded.stats.sentences_split == 1


@pytest.mark.parametrize("max_pieces", [1, 2])
def test_featurize_keeps_each_words_first_pieces(vocab_path, max_pieces):
    """`max_pieces_per_word` (1: seed 001's one piece per word) caps every word, not only those longer than a
    row; that is configured, so no word counts as cut to fit."""
    sentences = [sentence(1, ["unbelievables", "playing", "cat"], ["B-per", "O", "O"])]
    encoded = WordPieceFeaturizer(vocab_path, True, 16, BIO, max_pieces_per_word=max_pieces).featurize(sentences)
    word_pieces = {1: [["un"], ["play"], ["cat"]], 2: [["un", "##believ"], ["play", "##ing"], ["cat"]]}[max_pieces]
    pieces = [ID[piece] for word in word_pieces for piece in word]
    assert encoded.input_word_ids[0].tolist() == [ID["[CLS]"], *pieces, ID["[SEP]"]] + [0] * (14 - len(pieces))
    first_columns = np.flatnonzero(encoded.label_ids[0] != IGNORE_LABEL).tolist()
    assert first_columns == {1: [1, 2, 3], 2: [1, 3, 5]}[max_pieces]
    assert encoded.stats.words_cut == 0


def test_featurize_rejects_zero_pieces_per_word(vocab_path):
    with pytest.raises(ConfigError, match="max_pieces_per_word must be at least 1"):
        WordPieceFeaturizer(vocab_path, True, 16, BIO, max_pieces_per_word=0)


def test_featurize_truncate_counts_lost_words(vocab_path):
    tags = ["B-per", "I-per", "O", "B-geo", "I-geo", "O", "O"]
    sentences = [sentence(1, ["cat"] * 7, tags), sentence(2, ["the", "mat"])]
    feat = featurizer(vocab_path, max_seq_length=6, long_sentences="truncate")
    encoded = feat.featurize(sentences)
    assert encoded.sentence_ids.tolist() == [1, 2]
    assert encoded.sentence_lengths.tolist() == [7, 2]
    stats = encoded.stats
    assert (stats.rows, stats.sentences_split, stats.sentences_truncated, stats.words_truncated) == (2, 0, 1, 3)
    assert "1 truncated (3 words lost)" in stats.summary()
    labels = feat.words_labels(encoded, encoded.label_ids)
    assert labels[1] == [BIO.label_to_id(t) for t in tags[:4]] + [BIO.label_to_id("O")] * 3


def test_words_labels_accepts_trimmed_predictions(vocab_path):
    feat = featurizer(vocab_path)
    encoded = feat.featurize([sentence(1, ["cat", "sat"], ["B-per", "O"]), sentence(2, ["on"], ["B-geo"])])
    predicted = np.full((2, 4), 3)  # width 4 = longest row ([CLS] cat sat [SEP])
    assert feat.words_labels(encoded, predicted) == {1: [3, 3], 2: [3]}
    with pytest.raises(ValueError, match="width 2"):
        feat.words_labels(encoded, predicted[:, :2])
    with pytest.raises(ValueError, match="shape"):
        feat.words_labels(encoded, predicted[:1])


def test_featurize_rejects_bad_input(vocab_path):
    feat = featurizer(vocab_path)
    with pytest.raises(DataError, match="repeated sentence ids"):
        feat.featurize([sentence(1, ["cat"]), sentence(1, ["sat"])])
    with pytest.raises(DataError, match="sentence 5, tag 2: invalid tag 'B-foo'"):
        feat.featurize([sentence(5, ["cat", "sat"], ["O", "B-foo"])])


def test_featurizer_config_and_vocab_errors(vocab_path, tmp_path):
    assert featurizer(vocab_path).vocab_size == len(VOCAB)
    with pytest.raises(ConfigError, match="split, truncate"):
        featurizer(vocab_path, long_sentences="drop")
    with pytest.raises(ConfigError, match="at least 3"):
        featurizer(vocab_path, max_seq_length=2)
    with pytest.raises(DataError, match="vocab file not found"):
        featurizer(tmp_path / "absent.txt")
    no_cls = tmp_path / "no_cls.txt"
    no_cls.write_text("[PAD]\n[UNK]\n[SEP]\ncat\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no_cls\.txt: vocab lacks the special tokens \['\[CLS\]'\]"):
        featurizer(no_cls)
    repeated = tmp_path / "repeated.txt"
    repeated.write_text("[CLS]\n[SEP]\n[UNK]\ncat\ncat\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"repeated\.txt line 5: token 'cat' already on line 4"):
        featurizer(repeated)


# ---------------------------------------------------------------------------------------------------
# make_dataset


def encoded_rows(vocab_path: Path):
    """11 rows with 1..11 words, so a row's word count identifies it."""
    sentences = [sentence(i, ["cat"] * i) for i in range(1, 12)]
    return featurizer(vocab_path, max_seq_length=16).featurize(sentences)


def test_make_dataset_trims_each_batch(vocab_path):
    encoded = encoded_rows(vocab_path)
    batches = list(make_dataset(encoded, batch_size=4, shuffle=False, seed=None).as_numpy_iterator())
    assert [len(labels) for _, labels in batches] == [4, 4, 3]  # the partial batch is kept
    assert [labels.shape[1] for _, labels in batches] == [6, 10, 13]  # longest row + [CLS], [SEP]
    for b, (features, labels) in enumerate(batches):
        rows = slice(4 * b, 4 * b + 4)
        width = labels.shape[1]
        assert set(features) == {"input_word_ids", "input_mask", "input_type_ids", "word_casing"}
        assert all(f.dtype == np.int32 for f in features.values()) and labels.dtype == np.int32
        np.testing.assert_array_equal(features["word_casing"], encoded.word_casing[rows, :width])
        np.testing.assert_array_equal(features["input_word_ids"], encoded.input_word_ids[rows, :width])
        np.testing.assert_array_equal(features["input_mask"], encoded.input_mask[rows, :width])
        np.testing.assert_array_equal(features["input_type_ids"], encoded.input_type_ids[rows, :width])
        np.testing.assert_array_equal(labels, encoded.label_ids[rows, :width])
        assert not encoded.input_mask[rows, width:].any()  # only padding was cut


@pytest.mark.parametrize("shuffle, group_by_length", [(False, False), (True, False), (True, True)])
def test_make_dataset_pads_batches_to_length_buckets(vocab_path, shuffle, group_by_length):
    encoded = encoded_rows(vocab_path)  # rows of 3..13 pieces in width 16; 20 pads beyond it
    buckets = (4, 8, 12, 20)
    dataset = make_dataset(encoded, batch_size=4, shuffle=shuffle, seed=3, first_piece_mask=True,
                           group_by_length=group_by_length, length_buckets=buckets)
    seen = []
    for features, labels in dataset.as_numpy_iterator():
        longest = features["input_mask"].sum(1).max()
        width = labels.shape[1]
        assert width == min(w for w in buckets if w >= longest)
        assert {value.shape[1] for value in features.values()} == {width}
        for row_features, row_labels in zip(features["input_mask"], labels):
            row = int(row_features.sum()) - 3  # the row with n words has n + 2 pieces, n >= 1
            seen.append(row)
            np.testing.assert_array_equal(row_labels, np.pad(encoded.label_ids[row], (0, 20 - 16),
                                                             constant_values=-1)[:width])
        np.testing.assert_array_equal(features["first_piece_mask"], labels != -1)
        assert not features["input_word_ids"][features["input_mask"] == 0].any()  # padding is 0
    assert sorted(seen) == list(range(11))  # every row exactly once


def test_make_dataset_refuses_buckets_shorter_than_a_row(vocab_path):
    with pytest.raises(ConfigError, match=r"length_buckets \[4, 8\] must reach the longest row \(13 word pieces\)"):
        make_dataset(encoded_rows(vocab_path), batch_size=4, shuffle=False, seed=None, length_buckets=(4, 8))


def test_make_dataset_can_mark_first_pieces(vocab_path):
    sentences = [sentence(1, ["the", "playing", "u.s."]), sentence(2, ["cat"])]  # play ##ing, u . s .
    encoded = featurizer(vocab_path, max_seq_length=16).featurize(sentences)
    features, labels = next(make_dataset(encoded, batch_size=2, shuffle=False, seed=None,
                                         first_piece_mask=True).as_numpy_iterator())
    assert set(features) == {"input_word_ids", "input_mask", "input_type_ids", "word_casing", "first_piece_mask"}
    np.testing.assert_array_equal(features["first_piece_mask"], labels != -1)
    # the, playing: lower (1); u.s.: letters and dots, no capital or digit: other (10); cat: lower
    assert features["word_casing"][features["first_piece_mask"] > 0].tolist() == [1, 1, 10, 1]
    assert features["first_piece_mask"].dtype == np.int32 and features["first_piece_mask"].sum() == 4
    assert (features["input_mask"] - features["first_piece_mask"]).sum() == 4 + 4  # [CLS], [SEP], 4 later pieces


def test_make_dataset_shuffle_is_seeded(vocab_path):
    encoded = encoded_rows(vocab_path)

    def order(seed, drop_remainder=False):
        dataset = make_dataset(encoded, batch_size=3, shuffle=True, seed=seed, drop_remainder=drop_remainder)
        return [int(n) for _, labels in dataset.as_numpy_iterator() for n in (labels >= 0).sum(axis=1)]

    first = order(7)
    assert first == order(7)
    assert first != order(8)
    assert sorted(first) == list(range(1, 12))  # every row exactly once
    assert len(order(7, drop_remainder=True)) == 9


def grouped_passes(lengths, seed, epochs, batch_size=32, **kwargs) -> list:
    """The batches (tuples of row indices) of each pass in `epochs` of one length-grouped dataset."""
    epoch = tf.Variable(0, dtype=tf.int64)
    dataset = length_grouped_batches(lengths, batch_size, seed, epoch, **kwargs)
    passes = []
    for k in epochs:
        epoch.assign(k)
        passes.append([tuple(batch.tolist()) for batch in dataset.as_numpy_iterator()])
    return passes


def permutation(num_rows, seed, epoch) -> np.ndarray:
    return np.array(list(row_order(num_rows, shuffle=True, seed=seed, epoch=tf.Variable(epoch, dtype=tf.int64))
                         .as_numpy_iterator()))


def test_length_grouped_batches_cover_every_row_once_in_batches_of_similar_length():
    lengths = np.random.default_rng(0).integers(3, 100, size=1000)  # [N] pieces per row
    passes = grouped_passes(lengths, seed=5, epochs=[0, 1, 2], window_batches=4)
    for k, batches in enumerate(passes):
        assert sorted(row for batch in batches for row in batch) == list(range(1000))  # every row once
        assert sorted(len(batch) for batch in batches) == [8] + [32] * 31  # the short batch is kept
        # The epoch's permutation, cut into windows of 4 batches, each sorted (stably) by length and cut up:
        order = permutation(1000, seed=5, epoch=k)
        windows = [order[start:start + 128] for start in range(0, 1000, 128)]
        expected = [tuple(window[np.argsort(lengths[window], kind="stable")][start:start + 32].tolist())
                    for window in windows for start in range(0, len(window), 32)]
        assert sorted(batches) == sorted(expected) and batches != expected  # ... in shuffled batch order

    def padded(batches):  # word pieces the encoder runs on, padding included
        return sum(len(batch) * lengths[list(batch)].max() for batch in batches)

    random_batches = [tuple(batch) for batch in np.array_split(permutation(1000, seed=5, epoch=0), range(32, 1000, 32))]
    assert padded(passes[0]) < 0.8 * padded(random_batches)


def test_length_grouped_batches_are_keyed_by_seed_and_epoch():
    lengths = np.random.default_rng(0).integers(3, 100, size=300)
    first, second, third = grouped_passes(lengths, seed=5, epochs=[0, 1, 2], window_batches=2)
    assert len({tuple(first), tuple(second), tuple(third)}) == 3
    # A new dataset object (a resumed run) at the same epochs reads the same batches, in any order of epochs.
    assert grouped_passes(lengths, seed=5, epochs=[2, 0], window_batches=2) == [third, first]
    assert grouped_passes(lengths, seed=6, epochs=[0], window_batches=2) != [first]
    with pytest.raises(ValueError, match="needs a seed"):
        grouped_passes(lengths, seed=None, epochs=[0])
    with pytest.raises(ConfigError, match="window_batches"):
        length_grouped_batches(lengths, 32, seed=5, window_batches=0)

    # Without an epoch, tf.data reshuffles on each pass of one object; a new object starts again.
    unkeyed = length_grouped_batches(lengths, 32, seed=5, window_batches=2)
    passes = [[tuple(batch) for batch in unkeyed.as_numpy_iterator()] for _ in range(2)]
    assert passes[0] != passes[1]
    assert all(sorted(row for batch in batches for row in batch) == list(range(300)) for batches in passes)
    assert [tuple(batch) for batch in length_grouped_batches(lengths, 32, seed=5, window_batches=2)] == passes[0]


def test_length_grouped_batches_drop_the_rows_an_ungrouped_pass_drops():
    lengths = np.random.default_rng(0).integers(3, 100, size=1000)
    epoch = tf.Variable(1, dtype=tf.int64)
    dataset = length_grouped_batches(lengths, 32, seed=5, epoch=epoch, drop_remainder=True, window_batches=4)
    assert dataset.element_spec.shape == [32]
    batches = list(dataset.as_numpy_iterator())
    assert len(batches) == 31 and all(len(batch) == 32 for batch in batches)
    assert sorted(np.concatenate(batches)) == sorted(permutation(1000, seed=5, epoch=1)[:992])


def test_make_dataset_can_group_rows_by_length(vocab_path):
    encoded = encoded_rows(vocab_path)  # rows of 1 .. 11 words
    epoch = tf.Variable(3, dtype=tf.int64)

    def batches(shuffle, group_by_length, drop_remainder=False):
        dataset = make_dataset(encoded, batch_size=3, shuffle=shuffle, seed=7, drop_remainder=drop_remainder,
                               epoch=epoch, group_by_length=group_by_length)
        return [((labels >= 0).sum(axis=1).tolist(), labels.shape[1]) for _, labels in dataset.as_numpy_iterator()]

    grouped = batches(shuffle=True, group_by_length=True)
    # All 11 rows fit one window: sorted by length and cut into threes (in shuffled batch order).
    assert sorted(words for words, _ in grouped) == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11]]
    assert all(width == max(words) + 2 for words, width in grouped)  # trimmed to the longest row + [CLS], [SEP]
    assert batches(shuffle=True, group_by_length=True) == grouped  # same seed and epoch, same batches
    assert [len(words) for words, _ in batches(shuffle=True, group_by_length=True, drop_remainder=True)] == [3, 3, 3]
    assert batches(shuffle=False, group_by_length=True) == batches(shuffle=False, group_by_length=False)


# ---------------------------------------------------------------------------------------------------
# The real GMB file


def gmb_path() -> Path:
    configured = os.environ.get("NER_GMB_PATH")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gmb" / "ner_dataset.csv"


@pytest.mark.skipif(not gmb_path().is_file(), reason="GMB ner_dataset.csv not found (set NER_GMB_PATH)")
def test_read_real_gmb_file():
    start = time.perf_counter()
    sentences = read_gmb_csv(gmb_path())
    seconds = time.perf_counter() - start
    words = [w for s in sentences for w in s.words]
    assert len(sentences) == 47_959
    assert len(words) == 1_048_575
    assert words.count("None") == 10
    assert [s.sentence_id for s in sentences] == list(range(1, 47_960))
    assert max(len(s.words) for s in sentences) == 104
    print(f"read {len(words):,} words of {len(sentences):,} sentences in {seconds:.2f} s")
