"""Tests for ner.preprocessor: the GMB reader, splits, WordPiece featurization and the tf.data pipeline.

Every test builds its own tiny CSV and vocab under tmp_path; only the last test reads the real GMB file,
and it is skipped when that file is absent.
"""
import ner  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

import os
import time
from pathlib import Path

import numpy as np
import pytest

from ner.errors import ConfigError, DataError
from ner.preprocessor import (
    IGNORE_LABEL,
    DataSplit,
    Sentence,
    WordPieceFeaturizer,
    make_dataset,
    make_split,
    read_gmb_csv,
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
        assert set(features) == {"input_word_ids", "input_mask", "input_type_ids"}
        assert all(f.dtype == np.int32 for f in features.values()) and labels.dtype == np.int32
        np.testing.assert_array_equal(features["input_word_ids"], encoded.input_word_ids[rows, :width])
        np.testing.assert_array_equal(features["input_mask"], encoded.input_mask[rows, :width])
        np.testing.assert_array_equal(features["input_type_ids"], encoded.input_type_ids[rows, :width])
        np.testing.assert_array_equal(labels, encoded.label_ids[rows, :width])
        assert not encoded.input_mask[rows, width:].any()  # only padding was cut


def test_make_dataset_can_mark_first_pieces(vocab_path):
    sentences = [sentence(1, ["the", "playing", "u.s."]), sentence(2, ["cat"])]  # play ##ing, u . s .
    encoded = featurizer(vocab_path, max_seq_length=16).featurize(sentences)
    features, labels = next(make_dataset(encoded, batch_size=2, shuffle=False, seed=None,
                                         first_piece_mask=True).as_numpy_iterator())
    assert set(features) == {"input_word_ids", "input_mask", "input_type_ids", "first_piece_mask"}
    np.testing.assert_array_equal(features["first_piece_mask"], labels != -1)
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
