"""The rule-based splitter of `ner predict`: words with character offsets, sentences."""
import pytest

from ner.text import split_words, tokenize


def words(text):
    return [token.text for token in split_words(text)]


@pytest.mark.parametrize("text, expected", [
    ("John Smith's well-known dog.", ["John", "Smith's", "well-known", "dog", "."]),
    ("It cost $10,000 (3.5%) at 12:30, e.g. today.",
     ["It", "cost", "$", "10,000", "(", "3.5", "%", ")", "at", "12:30", ",", "e.g.", "today", "."]),
    ("The U.S. Army's 3rd unit!?", ["The", "U.S.", "Army's", "3rd", "unit", "!", "?"]),
    ("東京は日本の首都です。", ["東京は日本の首都です", "。"]),
    ("Привет, мир", ["Привет", ",", "мир"]),
    ("", []),
    (" \t\n ", []),
])
def test_split_words(text, expected):
    assert words(text) == expected


def test_offsets_point_into_the_text():
    text = "  Dr. Ann  Lee,\tin  Paris!\n"
    for token in split_words(text):
        assert text[token.start:token.end] == token.text
    assert [(t.start, t.end) for t in split_words("ab, c")] == [(0, 2), (2, 3), (4, 5)]


@pytest.mark.parametrize("text, expected", [
    ("John left. He came back! Did he? Yes", [["John", "left", "."], ["He", "came", "back", "!"],
                                                ["Did", "he", "?"], ["Yes"]]),
    ("Prices rose 3.5 percent in the U.S. Army bases.", [["Prices", "rose", "3.5", "percent", "in", "the", "U.S.",
                                                          "Army", "bases", "."]]),
    ("Fine. and then?! Next", [["Fine", ".", "and", "then", "?", "!"], ["Next"]]),
    ("He said.\"Stop\" now.", [["He", "said", ".", '"', "Stop", '"', "now", "."]]),
    ("Mr. Smith", [["Mr", "."], ["Smith"]]),  # the documented limit of the rule
    ("...", [[".", ".", "."]]),
    ("", []),
])
def test_sentences_end_at_end_punctuation_before_a_capital_or_the_end(text, expected):
    assert [[token.text for token in sentence] for sentence in tokenize(text)] == expected
