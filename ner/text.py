"""Raw text to sentences of words with character offsets: the rule-based splitter of `ner predict`.

Words are found left to right by the first of these rules that matches at a position:

1. an abbreviation of single letters each followed by a dot: "U.S.", "e.g.";
2. a number with inner separators: "10,000", "3.5", "12:30";
3. a run of letters, digits and underscores, with inner apostrophes or hyphens: "don't", "well-known",
   "3rd", "東京は日本の首都です" (scripts without spaces give long words; their word pieces may be [UNK]);
4. any other single character that is not whitespace (punctuation and symbols), on its own.

A sentence ends after a word ".", "!" or "?" when whitespace and then a word starting with a capital
letter follow it, or when the text ends. So "3.5", "U.S. Army" and "Fine. and then" stay one sentence,
while "Mr. Smith" is split after "Mr." (a known limit of the rule). A text with no words has no sentences.

Nothing here depends on TensorFlow.
"""
import re
from dataclasses import dataclass
from typing import List

_WORD = re.compile(r"(?:[^\W\d_]\.){2,}|\d+(?:[.,:]\d+)+|\w+(?:['’-]\w+)*|[^\w\s]")
SENTENCE_ENDS = frozenset(".!?")


@dataclass(frozen=True)
class Token:
    """A word of a text: `text == source[start:end]`."""

    text: str
    start: int
    end: int


def split_words(text: str) -> List[Token]:
    """The words of `text` with their character offsets, in order (rules 1-4 of the module docstring)."""
    return [Token(match.group(), match.start(), match.end()) for match in _WORD.finditer(text)]


def split_sentences(words: List[Token]) -> List[List[Token]]:
    """Groups the words of one text (from `split_words`) into sentences by the module's end-of-sentence rule."""
    sentences: List[List[Token]] = []
    current: List[Token] = []
    for index, word in enumerate(words):
        current.append(word)
        following = words[index + 1] if index + 1 < len(words) else None
        if word.text in SENTENCE_ENDS and (
                following is None or (following.start > word.end and following.text[0].isupper())):
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def tokenize(text: str) -> List[List[Token]]:
    """`text` as sentences of words with character offsets into `text`."""
    return split_sentences(split_words(text))
