"""Tests for ner.readers: the CoNLL column reader (CoNLL-2003, WNUT-17) and the re-exported GMB reader.

Every test writes its own small file under tmp_path; the last two read the real corpora beside the
checkout and are skipped when those files are absent.
"""
import ner  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

from collections import Counter
from pathlib import Path

import pytest

from ner import preprocessor, readers
from ner.errors import ConfigError, DataError
from ner.readers import corpus_entity_types, read_conll
from ner.tagging import TAG_SCHEMES, LabelMap

CONLL_2003 = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
   
-DOCSTART- -X- O O

Spain NNP I-NP I-LOC
Portugal NNP I-NP B-LOC
and CC O O
Hans NNP I-NP I-PER
Paris NNP I-NP I-LOC"""


def write(tmp_path, text, name="data.txt", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_read_conll_2003_iob1(tmp_path):
    sentences = read_conll(write(tmp_path, CONLL_2003))
    assert [s.sentence_id for s in sentences] == [1, 2, 3]
    assert sentences[0].words == ("EU", "rejects", "German", "call", ".")
    assert sentences[0].tags == ("B-ORG", "O", "B-MISC", "O", "O")
    assert sentences[1].tags == ("B-PER", "I-PER")  # the whitespace-only line ended it
    # IOB1's B-LOC marks a second location directly after the first; the last sentence has no blank line.
    assert sentences[2].words == ("Spain", "Portugal", "and", "Hans", "Paris")
    assert sentences[2].tags == ("B-LOC", "B-LOC", "O", "B-PER", "B-LOC")
    assert corpus_entity_types(sentences) == ("LOC", "MISC", "ORG", "PER")


def test_read_wnut_style_tab_separated_bio(tmp_path):
    text = "@paulwalk\tO\nIt\tO\n's\tO\nthe\tB-location\nEmpire\tI-location\n\t\nFüße\tB-product\n😀\tO\n\n"
    sentences = read_conll(write(tmp_path, text), scheme_in="bio")
    assert [s.words for s in sentences] == [("@paulwalk", "It", "'s", "the", "Empire"), ("Füße", "😀")]
    assert sentences[0].tags == ("O", "O", "O", "B-location", "I-location")
    assert corpus_entity_types(sentences) == ("location", "product")


def test_bio_input_is_kept_as_written(tmp_path):
    sentences = read_conll(write(tmp_path, "a I-x\nb I-x\n"), scheme_in="bio")
    assert sentences[0].tags == ("I-x", "I-x")
    assert read_conll(write(tmp_path, "a I-x\nb I-x\n"), scheme_in="iob1")[0].tags == ("B-x", "I-x")


def test_columns_can_be_chosen(tmp_path):
    path = write(tmp_path, "EU NNP I-NP I-ORG\nrejects VBZ I-VP O\n")
    assert read_conll(path, word_column=1, tag_column=2)[0] == readers.Sentence(1, ("NNP", "VBZ"), ("B-NP", "B-VP"))


@pytest.mark.parametrize("scheme", TAG_SCHEMES)
def test_label_maps_from_the_data(tmp_path, scheme):
    sentences = read_conll(write(tmp_path, CONLL_2003))
    label_map = LabelMap.for_scheme(scheme, entity_types=corpus_entity_types(sentences))
    for sentence in sentences:
        back = label_map.to_bio(label_map.from_bio(sentence.tags, where=f"sentence {sentence.sentence_id}"))
        if scheme == "io":  # IO merges touching spans of one type (Spain / Portugal)
            assert [label_map.entity_type(tag) for tag in back] == [label_map.entity_type(t) for t in sentence.tags]
        else:
            assert back == list(sentence.tags)


@pytest.mark.parametrize("text, message", [
    ("a O\nb NN O\n", r"data\.txt line 2: 3 fields; expected 2 like line 1"),
    # A one-field line names the field count, not the word as a tag or the first line's count.
    ("a O\n\nb\n", r"data\.txt line 3 has 1 field; expected at least 2 \(word \.\.\. tag\)"),
    ("EU\nrejects\n", r"data\.txt line 1 has 1 field; expected at least 2 \(word \.\.\. tag\)"),
    ("EU NNP I-NP B-ORG\nrejects\n", r"data\.txt line 2 has 1 field; expected at least 2"),
    ("a NN\n", r"data\.txt line 1: invalid tag 'NN'; expected O, B-<type> or I-<type>"),
    ("a O\nb B-\n", r"data\.txt line 2: invalid tag 'B-'"),
    ("-DOCSTART- -X- O O\n\n a\n", r"data\.txt line 3 has 1 field; expected at least 2 \(word \.\.\. tag\)"),
    ("\n\n-DOCSTART- O\n  \n", r"data\.txt holds no sentences"),
])
def test_malformed_files_name_file_and_line(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_conll(write(tmp_path, text))


def test_tag_column_out_of_range(tmp_path):
    with pytest.raises(DataError, match=r"line 1: 2 fields; expected a word column 0 and a different tag column 3"):
        read_conll(write(tmp_path, "a O\n"), tag_column=3)


def test_missing_file_bad_encoding_and_bad_options(tmp_path):
    with pytest.raises(DataError, match="CoNLL data file not found: .*absent.txt"):
        read_conll(tmp_path / "absent.txt")
    path = write(tmp_path, "a O\nb O\n\n".encode() + b"caf\xe9 O\n")
    with pytest.raises(DataError, match=r"data\.txt line 4: bytes are not valid utf-8"):
        read_conll(path)
    assert read_conll(path, encoding="latin-1")[1].words == ("café",)
    with pytest.raises(ConfigError, match="unknown text encoding 'utf-99'"):
        read_conll(path, encoding="utf-99")
    with pytest.raises(ConfigError, match="unknown scheme_in 'biluo'.*iob1, bio"):
        read_conll(path, scheme_in="biluo")


def test_gmb_reader_moved_but_still_importable_from_preprocessor():
    assert preprocessor.read_gmb_csv is readers.read_gmb_csv
    assert preprocessor.Sentence is readers.Sentence


GMB_ACCENTED = ("Sentence #,Word,POS,Tag\n"
                "Sentence: 1,Zürich,NNP,B-geo\n,and,CC,O\n,Genève,NNP,B-geo\n,côte,NN,O\n,Müller,NNP,B-per\n")


def test_a_utf8_gmb_file_declared_latin_1_is_an_error_not_mojibake(tmp_path):
    path = write(tmp_path, GMB_ACCENTED, "utf8.csv", encoding="utf-8")
    with pytest.raises(DataError, match=r"utf8\.csv: declared latin-1 but looks like UTF-8 .*'ü'.*'Ã¼'.*"
                                        r"set data\.encoding: utf-8"):
        readers.read_gmb_csv(path)  # latin-1 is the default
    assert readers.read_gmb_csv(path, encoding="utf-8")[0].words == ("Zürich", "and", "Genève", "côte", "Müller")
    # The same text really in latin-1 reads as before: é followed by ASCII is not UTF-8.
    latin = write(tmp_path, GMB_ACCENTED, "latin.csv", encoding="latin-1")
    assert readers.read_gmb_csv(latin)[0].words[0] == "Zürich"
    # One or two UTF-8-looking pairs are not enough evidence (latin-1 "Ã©" is a legal, if odd, text).
    few = write(tmp_path, "Sentence #,Word,Tag\nSentence: 1,Zürich,B-geo\n", "few.csv", encoding="utf-8")
    assert readers.read_gmb_csv(few)[0].words == ("ZÃ¼rich",)


def test_a_utf8_conll_file_read_as_latin_1_is_an_error(tmp_path):
    path = write(tmp_path, "Zürich B-LOC\nGenève B-LOC\nMüller B-PER\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"data\.txt: declared latin-1 but looks like UTF-8"):
        read_conll(path, encoding="latin-1")
    assert read_conll(path)[0].words == ("Zürich", "Genève", "Müller")


# ----------------------------------------------------------------------------------------------------
# The real corpora (SOURCE.md beside each gives the counts checked here)

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CONLL_DIR, WNUT_DIR = DATA / "conll2003", DATA / "wnut17"


def entity_counts(sentences):
    return Counter(tag[2:] for s in sentences for tag in s.tags if tag.startswith("B-"))


@pytest.mark.skipif(not (CONLL_DIR / "train.txt").is_file(), reason="CoNLL-2003 not found beside the checkout")
@pytest.mark.parametrize("name, sentences, tokens, entities", [
    ("train.txt", 14041, 203621, {"LOC": 7140, "MISC": 3438, "ORG": 6321, "PER": 6600}),
    ("valid.txt", 3250, 51362, {"LOC": 1837, "MISC": 922, "ORG": 1341, "PER": 1842}),
    ("test.txt", 3453, 46435, {"LOC": 1668, "MISC": 702, "ORG": 1661, "PER": 1617}),
])
def test_real_conll_2003_counts(name, sentences, tokens, entities):
    read = read_conll(CONLL_DIR / name, scheme_in="iob1")
    assert len(read) == sentences
    assert sum(len(s.words) for s in read) == tokens
    assert entity_counts(read) == entities  # entity starts after IOB1 -> BIO: the published entity counts
    bio = LabelMap.for_scheme("bio", entity_types=corpus_entity_types(read))
    for sentence in read:
        bio.check_sequence(sentence.tags, where=f"{name} sentence {sentence.sentence_id}")


@pytest.mark.skipif(not (WNUT_DIR / "wnut17train.conll").is_file(), reason="WNUT-17 not found beside the checkout")
@pytest.mark.parametrize("name, sentences, tokens, entities", [
    ("wnut17train.conll", 3394, 62730, (660, 548, 264, 140, 221, 142)),
    ("emerging.dev.conll", 1009, 15733, (470, 74, 39, 105, 34, 114)),
    ("emerging.test.annotated", 1287, 23394, (429, 150, 165, 142, 66, 127)),
])
def test_real_wnut_17_counts(name, sentences, tokens, entities):
    read = read_conll(WNUT_DIR / name, scheme_in="bio")
    assert len(read) == sentences
    assert sum(len(s.words) for s in read) == tokens
    types = ("person", "location", "group", "creative-work", "corporation", "product")
    assert tuple(entity_counts(read)[t] for t in types) == entities
    assert set(corpus_entity_types(read)) == set(types)


# ----------------------------------------------------------------------------------------------------
# The conll corpus's three files


def test_the_conll_corpus_refuses_one_file_as_two_parts(tmp_path):
    from ner.config import DataConfig
    from ner.corpora import read_conll_corpus

    for name in ("train.txt", "valid.txt", "test.txt"):
        write(tmp_path, "EU B-ORG\nrejects O\n", name)
    paths = {key: str(tmp_path / name) for key, name in
             (("conll_train_path", "train.txt"), ("conll_validation_path", "valid.txt"), ("conll_test_path", "test.txt"))}
    corpus = read_conll_corpus(DataConfig(corpus="conll", conll_tags="bio", **paths))
    assert corpus.fixed_parts == {"labelled": (1,), "validation": (2,), "test": (3,)}
    same_test = dict(paths, conll_test_path=str(tmp_path / "sub" / ".." / "train.txt"))
    (tmp_path / "sub").mkdir()
    with pytest.raises(ConfigError, match=r"data\.conll_train_path \(.*train\.txt\) and data\.conll_test_path "
                                          r"\(.*sub/\.\./train\.txt\) are the same file"):
        read_conll_corpus(DataConfig(corpus="conll", conll_tags="bio", **same_test))
    (tmp_path / "link.txt").symlink_to(tmp_path / "valid.txt")
    same_validation = dict(paths, conll_test_path=str(tmp_path / "link.txt"))
    with pytest.raises(ConfigError, match=r"data\.conll_validation_path .* and data\.conll_test_path .* same file"):
        read_conll_corpus(DataConfig(corpus="conll", conll_tags="bio", **same_validation))
