"""The lines of a corpus to tag in bulk (`ner tag-corpus`), each a text to tag or a reason it cannot be.

A corpus is a UTF-8 file read line by line (lines end at "\\n"; a "\\r" before it is dropped; a final
newline ends the last line, it does not start an empty one), numbered from 1. In the `text` format each
line is one text; in the `jsonl` format each line is a JSON object whose `text_field` (default "text")
is the text. A line is bad, with the reason, when its bytes are not UTF-8, it is not JSON, not a JSON
object, has no `text_field` or a value there that is not a string, or its text has no words
(`ner.text.split_words`: empty or whitespace only). Every line comes out once, as a `CorpusLine` or a
`BadLine`, in file order, so nothing is dropped unannounced.

Nothing here depends on TensorFlow or on the bulk engine.
"""
import json
from dataclasses import dataclass
from typing import Iterator, Union

from ner.text import split_words
from ner.utils import PathLike

INPUT_FORMATS = ("text", "jsonl")


@dataclass(frozen=True)
class CorpusLine:
    """A line with a text to tag: its number (from 1) and the text."""

    line: int
    text: str


@dataclass(frozen=True)
class BadLine:
    """A line that cannot be tagged: its number (from 1) and why."""

    line: int
    error: str

    def to_dict(self) -> dict:
        """`{"line": ..., "error": ...}`, one line of an errors file."""
        return {"line": self.line, "error": self.error}


def read_corpus(path: PathLike, input_format: str = "text",
                text_field: str = "text") -> Iterator[Union[CorpusLine, BadLine]]:
    """Each line of the corpus at `path`, in order, as a `CorpusLine` or a `BadLine` (module docstring).

    Raises ValueError for an `input_format` not in `INPUT_FORMATS`.
    """
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            yield _parse_line(number, raw.rstrip(b"\n").rstrip(b"\r"), input_format, text_field)


def _parse_line(number: int, raw: bytes, input_format: str, text_field: str) -> Union[CorpusLine, BadLine]:
    """One line's bytes (without its line end) as a `CorpusLine` or a `BadLine`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return BadLine(number, f"bytes are not valid UTF-8 ({error.reason})")
    if input_format == "jsonl":
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            return BadLine(number, f"not valid JSON ({error.msg})")
        if not isinstance(record, dict):
            return BadLine(number, f"not a JSON object (got {type(record).__name__})")
        if text_field not in record:
            return BadLine(number, f"no {text_field!r} field")
        text = record[text_field]
        if not isinstance(text, str):
            return BadLine(number, f"the {text_field!r} field is not a string (got {type(text).__name__})")
    if not split_words(text):
        return BadLine(number, "no words (an empty or blank text)")
    return CorpusLine(number, text)
