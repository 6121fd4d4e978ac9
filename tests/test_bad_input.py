"""Bad input not covered elsewhere (truncated files, an empty CoNLL file, an empty sentence), and a fuzz
test: the readers either parse random input or raise the package's own `NerError`, never anything else.

The other bad-input cases live beside the code they check: tests/test_preprocessor.py and
tests/test_readers.py (files), test_tag_schemes.py (strict sequences), test_config.py, test_encoder.py,
test_api.py and test_cli.py (raw text for prediction).
"""
import csv
import io
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ner  # noqa: F401
from ner.errors import DataError, NerError
from ner.preprocessor import Sentence, WordPieceFeaturizer, read_gmb_csv
from ner.readers import read_conll
from ner.tagging import LabelMap

GMB_TEXT = ('Sentence #,Word,POS,Tag\n'
            'Sentence: 1,John,NNP,B-per\n'
            ',"10,000",CD,O\n'
            'Sentence: 2,London,NNP,B-geo\n'
            ',today,NN,B-tim\n')
CONLL_TEXT = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP I-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP I-PER\n"
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("reader, text", [(read_gmb_csv, GMB_TEXT), (read_conll, CONLL_TEXT)])
def test_a_truncated_file_parses_up_to_a_line_end_or_names_the_file(tmp_path, reader, text):
    """Cut at every byte: the part either parses (the cut fell where a line may end) or fails with
    DataError naming the file, e.g. a quoted field left open (`"10,0`) or a line without its tag."""
    path = tmp_path / "truncated.txt"
    failures = 0
    for cut in range(len(text)):
        path.write_text(text[:cut], encoding="utf-8")
        try:
            reader(path)
        except DataError as error:
            assert "truncated.txt" in str(error)
            failures += 1
    assert failures > len(text) // 2


def test_a_quoted_field_cut_at_the_end_of_a_gmb_file(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_text(GMB_TEXT[:GMB_TEXT.index("10,000") + 4], encoding="latin-1")
    with pytest.raises(DataError, match=r"cut\.csv line 3: malformed CSV \(unexpected end of data\)"):
        read_gmb_csv(path)


def test_an_empty_conll_file(tmp_path):
    path = tmp_path / "empty.conll"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.conll holds no sentences"):
        read_conll(path)


# Bytes 0..255 over and over without whitespace (as latin-1), quotes or commas: one huge field of garbage.
GARBAGE = bytes(b for b in range(256) if not chr(b).isspace() and b not in b'",') * 12


@pytest.mark.parametrize("reader, content, message", [
    (read_gmb_csv, GARBAGE, r"garbage\.bin line 1: header lacks columns .*found ['\"].*\.\.\. \(\d+ characters\)$"),
    (read_gmb_csv, b"Sentence #,Word,Tag\n" + GARBAGE + b",a,O\n",
     r"garbage\.bin line 2: malformed sentence id ['\"].*\.\.\. \(\d+ characters\); expected"),
    (read_gmb_csv, b"Sentence #,Word,Tag\nSentence: 1,a," + GARBAGE + b"\n",
     r"garbage\.bin line 2: invalid tag ['\"].*\.\.\. \(\d+ characters\); expected one of O, B-geo"),
    (read_conll, b"EU B-ORG\nrejects " + GARBAGE + b"\n",
     r"garbage\.bin line 2: invalid tag ['\"].*\.\.\. \(\d+ characters\); expected O, B-<type> or I-<type>"),
])
def test_a_binary_files_error_shows_a_short_escaped_excerpt(tmp_path, reader, content, message):
    """A binary file read as latin-1 decodes to a screenful of garbage; the error quotes a short escaped
    excerpt of the offending field (and its length), not the whole of it."""
    path = tmp_path / "garbage.bin"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as error:
        reader(path, encoding="latin-1")
    text = str(error.value)
    assert "\n" not in text and len(text.replace(str(path), "")) < 250, text
    quoted = re.search(r"(?:found|id|tag) (['\"].*?\.\.\.) \(\d+ characters\)", text).group(1)
    assert len(quoted) <= 45 and quoted.isprintable() and quoted.isascii()


def test_an_empty_sentence_is_kept_as_a_row_and_gets_no_labels(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\njohn\n", encoding="utf-8")
    featurizer = WordPieceFeaturizer(vocab, True, 8, LabelMap.for_scheme("io"))
    encoded = featurizer.featurize([Sentence(1, (), ()), Sentence(2, ("john",), ("B-per",))])
    np.testing.assert_array_equal(encoded.input_word_ids[0, :3], [2, 3, 0])  # [CLS] [SEP]
    assert encoded.stats.rows == 2 and not (encoded.label_ids[0] >= 0).any()
    assert featurizer.words_labels(encoded, np.zeros((2, 8), np.int32)) == {1: [], 2: [0]}


# ----------------------------------------------------------------------------------------------------
# Fuzz


def read_or_raise_own_error(reader, path, **options) -> None:
    try:
        sentences = reader(path, **options)
    except NerError:
        return
    assert sentences and all(len(s.words) == len(s.tags) > 0 for s in sentences)


@FUZZ
@given(data=st.binary(max_size=400), encoding=st.sampled_from(["latin-1", "utf-8"]))
def test_readers_on_random_bytes(tmp_path, data, encoding):
    path = tmp_path / "random.bin"
    path.write_bytes(data)
    read_or_raise_own_error(read_gmb_csv, path, encoding=encoding)
    read_or_raise_own_error(read_conll, path, encoding=encoding)
    read_or_raise_own_error(read_conll, path, encoding=encoding, scheme_in="bio", tag_column=1)


FIELD = st.one_of(
    st.sampled_from(["", "Sentence: 1", "Sentence: 2", "Sentence:", "O", "B-geo", "I-per", "B-xyz", "NNP",
                     "None", '"', ",", "\n", "Sentence #", "Word", "Tag"]),
    st.text(max_size=6),
)
ROW = st.lists(FIELD, min_size=0, max_size=5)


@FUZZ
@given(header=st.sampled_from([["Sentence #", "Word", "POS", "Tag"], ["Tag", "Word", "Sentence #"],
                               ["Sentence #", "Word"], []]),
       rows=st.lists(ROW, max_size=12))
def test_readers_on_random_csv_rows(tmp_path, header, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in ([header] if header else []) + rows:
        writer.writerow(row)
    path = tmp_path / "rows.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    read_or_raise_own_error(read_gmb_csv, path, encoding="utf-8")
    path.write_text("\n".join(" ".join(row) for row in rows), encoding="utf-8")
    read_or_raise_own_error(read_conll, path)


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", r"bad\.yaml: not UTF-8 text \(byte 0x89 at offset 0\); expected a YAML "
                                           r"config file"),
    (b"training: {epochs: [\n", r"bad\.yaml line 2 column 1: not valid YAML \(expected the node content, but found "
                                r"'<stream end>'\); expected a YAML config file"),
    (b"run_name: a\x01b\n", r"bad\.yaml position 11: not valid YAML \(unacceptable character #x0001: special "
                            r"characters are not allowed\)"),
    (b"", r"bad\.yaml is empty; expected a YAML config file"),
    (b"# only a comment\n", r"bad\.yaml is empty; expected a YAML config file"),
])
def test_an_unreadable_config_file_is_one_line_naming_it(tmp_path, content, message):
    """Binary, broken YAML and empty files give one line naming the file (and line) and what was expected."""
    from ner.config import load_config
    from ner.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as raised:
        load_config(path, environ={})
    assert "\n" not in str(raised.value)


def test_a_run_with_truncated_weights_is_one_line_naming_the_file(tmp_path, tiny_encoder_handle):
    """`ner predict` and `ner evaluate` on a run whose weights file was cut short: exit 2, one error line."""
    import contextlib

    from ner.cli import main
    from ner.experiment import train
    from tests.helpers import tiny_config

    run_dir = train(tiny_config(tmp_path, tiny_encoder_handle, "ner_baseline", epochs=1), verbose=False)
    (data_file,) = (run_dir / "weights").glob("model.data-*")
    data_file.write_bytes(data_file.read_bytes()[:100])
    for argv in (["predict", "--run", str(run_dir), "John said"], ["evaluate", "--run", str(run_dir)]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
        (line,) = err.getvalue().strip().splitlines()[-1:]
        assert line.startswith(f"error: {run_dir / 'weights' / 'model'}: the run's weights cannot be read (")
        assert line.endswith("expected the complete weights of a finished training; retrain the run "
                             "(ner train --overwrite)")
