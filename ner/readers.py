"""Corpus readers: from annotated text files to `Sentence` records with gold IOB2 (BIO) tags.

* `read_gmb_csv` reads the Kaggle GMB CSV (`ner_dataset.csv`).
* `read_conll` reads column files: CoNLL-2003 (`word POS chunk NER`, IOB1 tags) and WNUT-17
  (`token<TAB>tag`, BIO tags). IOB1 is converted to BIO on reading.
* `corpus_entity_types` lists the entity types a corpus uses, for `LabelMap.for_scheme(..., entity_types=)`.

Every reader raises `DataError` naming the file and the 1-based line for input it cannot read, and
`ConfigError` for an unknown encoding or option. `ner.preprocessor` re-exports `Sentence` and
`read_gmb_csv`, where they used to live.
"""
import codecs
import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, TextIO

from ner.errors import ConfigError, DataError
from ner.tagging import ENTITY_TYPES, OUTSIDE, LabelMap, bio_tags, iob1_to_bio
from ner.utils import PathLike

_GMB_COLUMNS = ("Sentence #", "Word", "Tag")
_SENTENCE_ID = re.compile(r"Sentence:\s*(\d+)")
CONLL_SCHEMES = ("iob1", "bio")
DOCSTART = "-DOCSTART-"
_CONLL_TAG = re.compile(r"O|[BI]-\S+")
_EXCERPT_CHARS = 40
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")
_UTF8_CHECK_BYTES = 4 << 20  # the prefix the UTF-8-declared-latin-1 check reads
_UTF8_MIN_SEQUENCES = 3  # multi-byte sequences it needs before it calls a file UTF-8
_LATIN_1_NAMES = frozenset({"iso8859-1", "cp1252"})


def _excerpt(text: str, limit: int = _EXCERPT_CHARS) -> str:
    """`text` for an error message: its repr, cut to about `limit` characters (a binary file's garbage
    would otherwise fill the screen), with the full length said when cut."""
    shown = repr(text)
    if len(shown) <= limit:
        return shown
    return f"{shown[:limit]}... ({len(text)} characters)"


@dataclass(frozen=True)
class Sentence:
    """One sentence: its id, words and gold IOB2 tags (same length).

    The id is the file's own for GMB ("Sentence: N" -> N) and the 1-based position in the file for CoNLL.
    """

    sentence_id: int
    words: tuple[str, ...]
    tags: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.words) != len(self.tags):
            raise DataError(
                f"sentence {self.sentence_id}: {len(self.words)} words but {len(self.tags)} tags; "
                "expected one tag per word"
            )


# ----------------------------------------------------------------------------------------------------
# GMB


def read_gmb_csv(
    path: PathLike, encoding: str = "latin-1", entity_types: Sequence[str] = ENTITY_TYPES
) -> list[Sentence]:
    """Reads the GMB `ner_dataset.csv` (columns "Sentence #", "Word", "Tag"; others such as POS ignored).

    A sentence starts at a row whose "Sentence #" is "Sentence: N" and runs until the next such row.
    Every word is kept as written (including the literal word "None"). Raises DataError naming the
    file and the 1-based line for a missing or empty file, a bad header, a row with the wrong number
    of fields, a missing or malformed sentence id, an empty word, a tag outside IOB2 over
    `entity_types`, bytes that are not valid `encoding`, or (for latin-1, which decodes any bytes) a
    file whose bytes look like UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"GMB data file not found: {path}. Put ner_dataset.csv there or set data.gmb_path / NER_GMB_PATH"
        )
    _check_encoding(encoding, path)
    _check_not_utf8_as_latin_1(path, encoding, "data.encoding: utf-8")
    try:
        with path.open(encoding=encoding, newline="") as f:
            return _parse_gmb_rows(f, path, entity_types)
    except UnicodeDecodeError as error:
        line = _first_undecodable_line(path, encoding)
        where = f"{path} line {line}" if line is not None else str(path)
        raise DataError(
            f"{where}: bytes are not valid {encoding} ({error.reason}); pass the file's encoding"
        ) from None


def _parse_gmb_rows(f: TextIO, path: Path, entity_types: Sequence[str]) -> list[Sentence]:
    """Groups the CSV rows of the open file `f` into sentences; `reader.line_num` is a row's 1-based line."""
    reader = csv.reader(f, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise DataError(f"{path} line {reader.line_num}: malformed CSV ({error})") from None
    if header is None:
        raise DataError(f"{path} is empty; expected a header line with columns {', '.join(_GMB_COLUMNS)}")
    header = [name.strip() for name in header]
    missing = [name for name in _GMB_COLUMNS if name not in header]
    if missing:
        raise DataError(
            f"{path} line 1: header lacks columns {missing}; expected {list(_GMB_COLUMNS)}, "
            f"found {_excerpt(','.join(header))}"
        )
    id_col, word_col, tag_col = (header.index(name) for name in _GMB_COLUMNS)
    num_fields = len(header)
    allowed_tags = frozenset(bio_tags(entity_types))

    sentences: list[Sentence] = []
    seen_ids: dict[int, int] = {}  # sentence id -> line it started on
    sentence_id, words, tags = None, [], []
    try:
        for row in reader:
            if len(row) != num_fields:
                raise DataError(
                    f"{path} line {reader.line_num}: expected {num_fields} fields ({','.join(header)}), "
                    f"found {len(row)}"
                )
            id_text, word, tag = row[id_col], row[word_col], row[tag_col]
            if id_text:
                match = _SENTENCE_ID.fullmatch(id_text.strip())
                if match is None:
                    raise DataError(
                        f"{path} line {reader.line_num}: malformed sentence id {_excerpt(id_text)}; "
                        'expected "Sentence: <number>"'
                    )
                if sentence_id is not None:
                    sentences.append(Sentence(sentence_id, tuple(words), tuple(tags)))
                sentence_id, words, tags = int(match.group(1)), [], []
                if sentence_id in seen_ids:
                    raise DataError(
                        f"{path} line {reader.line_num}: sentence id {sentence_id} already used on line "
                        f"{seen_ids[sentence_id]}; expected each sentence id once"
                    )
                seen_ids[sentence_id] = reader.line_num
            elif sentence_id is None:
                raise DataError(
                    f"{path} line {reader.line_num}: the first data row has no sentence id; "
                    'expected "Sentence: <number>" in column "Sentence #"'
                )
            if not word:
                raise DataError(f"{path} line {reader.line_num}: empty word; expected a non-empty \"Word\"")
            if tag not in allowed_tags:
                raise DataError(
                    f"{path} line {reader.line_num}: invalid tag {_excerpt(tag)}; expected one of "
                    f"{', '.join(bio_tags(entity_types))}"
                )
            words.append(word)
            tags.append(tag)
    except csv.Error as error:
        raise DataError(f"{path} line {reader.line_num}: malformed CSV ({error})") from None
    if sentence_id is None:
        raise DataError(f"{path} has a header but no data rows")
    sentences.append(Sentence(sentence_id, tuple(words), tuple(tags)))
    return sentences


def _first_undecodable_line(path: Path, encoding: str) -> int | None:
    """The 1-based line holding the first byte sequence `encoding` cannot decode, or None if not found."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError:
                return number
    return None


def _check_not_utf8_as_latin_1(path: Path, encoding: str, fix: str) -> None:
    """Raises DataError if `encoding` is latin-1 (or cp1252) but the file's bytes look like UTF-8.

    Latin-1 decodes any bytes, so a UTF-8 file read as latin-1 loads silently as mojibake ("ZÃ¼rich").
    The file (its first `_UTF8_CHECK_BYTES`) is called UTF-8 when it holds at least
    `_UTF8_MIN_SEQUENCES` UTF-8 multi-byte sequences and decodes cleanly as UTF-8: genuine latin-1 text
    has accented letters followed by ASCII, which is not valid UTF-8, so it fails the decode at once.
    """
    if codecs.lookup(encoding).name not in _LATIN_1_NAMES:
        return
    with path.open("rb") as f:
        head = f.read(_UTF8_CHECK_BYTES)
    sequences = _UTF8_SEQUENCE.findall(head)
    if len(sequences) < _UTF8_MIN_SEQUENCES:
        return
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < _UTF8_CHECK_BYTES)
    except UnicodeDecodeError:
        return
    sample = sequences[0].decode("utf-8")
    raise DataError(
        f"{path}: declared {encoding} but looks like UTF-8 ({len(sequences)} UTF-8 multi-byte sequences such as "
        f"{sample!r}, which {encoding} would read as {sequences[0].decode(encoding, errors='replace')!r}); set {fix}"
    )


def _check_encoding(encoding: str, path: Path) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(f"unknown text encoding {encoding!r} for {path}") from None


# ----------------------------------------------------------------------------------------------------
# CoNLL column files


def read_conll(
    path: PathLike, word_column: int = 0, tag_column: int = -1, scheme_in: str = "iob1", encoding: str = "utf-8"
) -> list[Sentence]:
    """Reads a CoNLL-style column file: one word per line, fields separated by spaces or tabs.

    A blank or whitespace-only line ends a sentence; `-DOCSTART-` lines (document boundaries) are
    skipped and end a sentence too. Words come from field `word_column`, tags from field `tag_column`
    (negative counts from the end). Tags are read as `scheme_in`: "iob1" (CoNLL-2003: a span starts
    with I-, B- only after a span of the same type) is converted to BIO; "bio" is kept as written.
    Sentence ids are 1, 2, ... in file order. Entity types are whatever the tags name (see
    `corpus_entity_types`).

    Raises DataError naming the file and 1-based line for a missing or empty file, a word line with fewer
    than two fields (word and tag), a line whose number of fields differs from the file's first word line or lacks the word or tag column, a tag that is
    not "O", "B-<type>" or "I-<type>", bytes that are not valid `encoding`, or a file read as latin-1
    whose bytes look like UTF-8; ConfigError for an
    unknown `scheme_in` or encoding.
    """
    path = Path(path)
    if scheme_in not in CONLL_SCHEMES:
        raise ConfigError(f"unknown scheme_in {scheme_in!r} for {path}; expected one of {', '.join(CONLL_SCHEMES)}")
    if not path.is_file():
        raise DataError(f"CoNLL data file not found: {path}")
    _check_encoding(encoding, path)
    _check_not_utf8_as_latin_1(path, encoding, "data.encoding: utf-8 (or pass encoding='utf-8')")
    try:
        with path.open(encoding=encoding, newline="") as f:
            sentences = _parse_conll_lines(f, path, word_column, tag_column)
    except UnicodeDecodeError as error:
        line = _first_undecodable_line(path, encoding)
        where = f"{path} line {line}" if line is not None else str(path)
        raise DataError(f"{where}: bytes are not valid {encoding} ({error.reason}); pass the file's encoding") from None
    if not sentences:
        raise DataError(f"{path} holds no sentences; expected lines of `word ... tag` separated by blank lines")
    if scheme_in == "iob1":
        sentences = [Sentence(s.sentence_id, s.words, tuple(iob1_to_bio(s.tags))) for s in sentences]
    return sentences


def _parse_conll_lines(f: TextIO, path: Path, word_column: int, tag_column: int) -> list[Sentence]:
    """Groups the word lines of the open file `f` into sentences (tags as written)."""
    sentences: list[Sentence] = []
    words, tags = [], []
    num_fields, first_line = None, None

    def end_sentence() -> None:
        if words:
            sentences.append(Sentence(len(sentences) + 1, tuple(words), tuple(tags)))
            words.clear()
            tags.clear()

    for number, line in enumerate(f, start=1):
        fields = line.split()
        if not fields:
            end_sentence()
            continue
        if fields[0] == DOCSTART:
            end_sentence()
            continue
        if len(fields) < 2:
            raise DataError(
                f"{path} line {number} has {len(fields)} field; expected at least 2 (word ... tag) "
                "separated by spaces or tabs"
            )
        if num_fields is None:
            in_range = all(-len(fields) <= column < len(fields) for column in (word_column, tag_column))
            if not in_range or word_column % len(fields) == tag_column % len(fields):
                raise DataError(
                    f"{path} line {number}: {len(fields)} fields; expected a word column {word_column} and "
                    f"a different tag column {tag_column}"
                )
            num_fields, first_line = len(fields), number
        elif len(fields) != num_fields:
            raise DataError(
                f"{path} line {number}: {len(fields)} fields; expected {num_fields} like line {first_line}"
            )
        tag = fields[tag_column]
        if not _CONLL_TAG.fullmatch(tag):
            raise DataError(f"{path} line {number}: invalid tag {_excerpt(tag)}; expected O, B-<type> or I-<type>")
        words.append(fields[word_column])
        tags.append(tag)
    end_sentence()
    return sentences


def corpus_entity_types(sentences: Iterable[Sentence]) -> tuple[str, ...]:
    """The entity types the sentences' BIO tags name, sorted (CoNLL-2003: LOC, MISC, ORG, PER)."""
    return tuple(sorted({LabelMap.entity_type(tag) for s in sentences for tag in s.tags} - {OUTSIDE}))
