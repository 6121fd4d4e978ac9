"""From the GMB CSV to model inputs: reading sentences, seeded splits, WordPiece features and tf.data.

* `read_gmb_csv` reads the Kaggle GMB file into `Sentence` records, raising `DataError` on any bad row
  (it lives in `ner.readers`, beside the CoNLL reader, and is re-exported here).
* `make_split` draws the test / labelled / unlabelled sentence ids; `DataSplit` saves and loads them;
  `add_labelled_from_file` moves listed unlabelled sentences into the labelled part.
* `WordPieceFeaturizer` turns sentences into fixed-width id arrays (`EncodedSentences`) with the
  encoder's vocabulary, and maps per-piece predictions back to one label per word (`words_labels`).
* `make_dataset` batches `EncodedSentences` into a `tf.data.Dataset`, trimming each batch's padding (or
  padding it up to one of a few `length_buckets` widths);
  `row_order` is the order in which it (and the feature cache's dataset) reads the rows on each pass;
  `length_grouped_batches` groups that order into batches of similar length.

Label ids follow one convention everywhere: a word's label id sits on its first wordpiece and every
other position ([CLS], [SEP], later pieces, padding) holds `IGNORE_LABEL` (-1), which the loss masks.
"""
import json
import logging
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from ner.errors import ConfigError, DataError
from ner.readers import Sentence, read_gmb_csv  # noqa: F401  (read_gmb_csv: re-exported, it used to live here)
from ner.registry import LABELLED_SELECTIONS, LONG_SENTENCE_POLICIES
from ner.casing import WORD_CASING, casing_ids
from ner.chars import CHAR_IDS, char_ids_in_graph
from ner.lexical import LEXICAL_IDS, lexical_ids_in_graph
from ner.tagging import FIRST_PIECE_MASK, IGNORE_LABEL, OUTSIDE, LabelMap
from ner.utils import PathLike, read_vocab_lines, write_text_atomic

logger = logging.getLogger(__name__)

_TOKENIZE_CHUNK = 8192  # sentences per BertTokenizer call: bounds memory, keeps op overhead negligible


# ----------------------------------------------------------------------------------------------------
# Splits

SPLIT_PARTS = ("test", "labelled", "validation", "unlabelled")
_SPLIT_KEYS = ("seed",) + tuple(f"{name}_ids" for name in SPLIT_PARTS)


@dataclass(frozen=True)
class DataSplit:
    """Disjoint sentence ids for testing, labelled training, validation and unlabelled training.

    Validation sentences come out of the unlabelled pool; they are monitored during training, and with
    early stopping (`training.early_stopping_patience`) they choose the epoch whose weights are kept.
    """

    test_ids: tuple[int, ...]
    labelled_ids: tuple[int, ...]
    validation_ids: tuple[int, ...]
    unlabelled_ids: tuple[int, ...]
    seed: int

    def __post_init__(self) -> None:
        parts = self.parts()
        for name, ids in parts.items():
            if len(set(ids)) != len(ids):
                raise DataError(f"split part {name!r} repeats sentence ids; expected each id once")
        names = list(parts)
        for i, first in enumerate(names):
            for second in names[i + 1:]:
                shared = set(parts[first]) & set(parts[second])
                if shared:
                    raise DataError(
                        f"split parts {first!r} and {second!r} share {len(shared)} sentence ids "
                        f"(e.g. {min(shared)}); expected disjoint parts"
                    )

    def parts(self) -> dict[str, tuple[int, ...]]:
        """The parts by name, in `SPLIT_PARTS` order."""
        return {name: getattr(self, f"{name}_ids") for name in SPLIT_PARTS}

    def to_json(self, path: PathLike) -> Path:
        """Writes the split as JSON atomically (one key per line) and returns the path."""
        values = {"seed": self.seed, **{f"{name}_ids": ids for name, ids in self.parts().items()}}
        body = ",\n".join(f"  {json.dumps(key)}: {json.dumps(values[key])}" for key in _SPLIT_KEYS)
        return write_text_atomic(path, "{\n" + body + "\n}\n")

    @classmethod
    def from_json(cls, path: PathLike) -> "DataSplit":
        """Reads a split written by `to_json`; DataError naming the file and key if it is not one."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"split file not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DataError(f"{path}: not a JSON split file ({error})") from None
        if not isinstance(data, dict) or set(data) != set(_SPLIT_KEYS):
            found = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise DataError(f"{path}: expected exactly the keys {list(_SPLIT_KEYS)}, found {found}")
        if type(data["seed"]) is not int:
            raise DataError(f"{path}: key 'seed' must be an integer, found {data['seed']!r}")
        for key in _SPLIT_KEYS[1:]:
            ids = data[key]
            if not isinstance(ids, list) or any(type(i) is not int for i in ids):
                raise DataError(f"{path}: key {key!r} must be a list of integer sentence ids")
        return cls(seed=data["seed"], **{key: tuple(data[key]) for key in _SPLIT_KEYS[1:]})


def add_labelled_from_file(split: DataSplit, path: PathLike) -> DataSplit:
    """`split` with the sentence ids listed in the text file `path` (one integer a line) moved from its
    unlabelled part to the end of its labelled part, in file order: how an active-learning round's
    labelled set reaches training (`split.added_labelled_file`). DataError naming the file and line for
    a line that is not an integer, an id listed twice, or an id outside the split's unlabelled part."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"added labelled ids file not found: {path}")
    part_of = {i: name for name, ids in split.parts().items() for i in ids}
    added, line_of = [], {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            sentence_id = int(line.strip())
        except ValueError:
            raise DataError(f"{path}:{number}: expected one integer sentence id a line, found {line!r}") from None
        if sentence_id in line_of:
            raise DataError(f"{path}:{number}: sentence id {sentence_id} repeats line {line_of[sentence_id]}")
        part = part_of.get(sentence_id)
        if part != "unlabelled":
            where = f"is in the split's {part} part" if part else "is not in the corpus"
            raise DataError(f"{path}:{number}: sentence id {sentence_id} {where}; expected ids of unlabelled sentences")
        line_of[sentence_id] = number
        added.append(sentence_id)
    chosen = set(added)
    return dataclasses.replace(split, labelled_ids=split.labelled_ids + tuple(added),
                               unlabelled_ids=tuple(i for i in split.unlabelled_ids if i not in chosen))


def outside_fractions(sentences: Iterable[Sentence]) -> dict[int, float]:
    """Sentence id → fraction of its words tagged `O` (1.0 for an empty sentence)."""
    return {sentence.sentence_id: sum(tag == OUTSIDE for tag in sentence.tags) / len(sentence.tags)
            if sentence.tags else 1.0 for sentence in sentences}


def make_split(sentence_ids: Sequence[int], test_size: int, labelled_size: int, seed: int,
               validation_size: int = 0, labelled_selection: str = "random",
               outside_fraction: Optional[Mapping[int, float]] = None) -> DataSplit:
    """Shuffles the ids with `np.random.default_rng(seed)`: the first `test_size` are test, the next
    `labelled_size` labelled, the next `validation_size` validation, the rest unlabelled. Depends only on
    the set of ids, not their order; each part keeps the shuffled order, so any prefix of a part is itself
    a random sample.

    With `labelled_selection` "fewer_outside" the labelled part is biased instead: the ids after the test
    part are ranked by `outside_fraction` (sentence id → fraction of its words tagged `O`, e.g. from
    `outside_fractions`) ascending, ties in the shuffled order, and the first `labelled_size` are labelled
    (in that ranked order). The test part is the random split's; validation and unlabelled are the
    remaining ids in the shuffled order."""
    if labelled_selection not in LABELLED_SELECTIONS:
        raise ConfigError(f"split.labelled_selection must be one of {LABELLED_SELECTIONS}, "
                          f"got {labelled_selection!r}")
    ids = np.asarray(sentence_ids, dtype=np.int64)
    if ids.ndim != 1:
        raise DataError(f"sentence_ids must be a flat sequence of integers, got shape {ids.shape}")
    unique = np.unique(ids)
    if len(unique) != len(ids):
        raise DataError(f"sentence ids repeat ({len(ids) - len(unique)} duplicates); expected unique ids")
    sizes = {"test_size": test_size, "labelled_size": labelled_size, "validation_size": validation_size}
    if any(size < 0 for size in sizes.values()):
        raise ConfigError(f"split sizes must not be negative, got {sizes}")
    if sum(sizes.values()) > len(ids):
        raise ConfigError(
            f"split sizes {sizes} add up to {sum(sizes.values())}, "
            f"more than the {len(ids)} sentences available"
        )
    if labelled_selection == "fewer_outside":
        if outside_fraction is None:
            raise ValueError("labelled_selection 'fewer_outside' needs outside_fraction (sentence id → O fraction)")
        missing = [i for i in unique.tolist() if i not in outside_fraction]
        if missing:
            raise DataError(f"outside_fraction lacks {len(missing)} of the sentence ids (e.g. {missing[0]}); "
                            "expected one fraction per id")
    order = np.random.default_rng(seed).permutation(unique).tolist()
    bounds = np.cumsum([0, test_size, labelled_size, validation_size]).tolist()
    if labelled_selection == "fewer_outside":
        rest = order[test_size:]
        labelled = sorted(rest, key=lambda i: outside_fraction[i])[:labelled_size]  # stable: ties keep `rest` order
        chosen = set(labelled)
        order = order[:test_size] + labelled + [i for i in rest if i not in chosen]
    return DataSplit(
        test_ids=tuple(order[bounds[0]:bounds[1]]),
        labelled_ids=tuple(order[bounds[1]:bounds[2]]),
        validation_ids=tuple(order[bounds[2]:bounds[3]]),
        unlabelled_ids=tuple(order[bounds[3]:]),
        seed=seed,
    )


# ----------------------------------------------------------------------------------------------------
# WordPiece features


@dataclass(frozen=True)
class FeaturizeStats:
    """What `featurize` did with long input; nothing is dropped without being counted here."""

    max_seq_length: int
    sentences: int
    rows: int
    sentences_split: int
    sentences_truncated: int
    words_truncated: int  # words dropped from truncated sentences (no label, no prediction)
    words_cut: int  # single words longer than a row: their tail pieces dropped, label kept
    words_unk: int  # words the tokenizer gave no pieces (e.g. only control characters): one [UNK] each

    def summary(self) -> str:
        return (
            f"featurized {self.sentences:,} sentences into {self.rows:,} rows "
            f"(max_seq_length {self.max_seq_length}): {self.sentences_split:,} split, "
            f"{self.sentences_truncated:,} truncated ({self.words_truncated:,} words lost), "
            f"{self.words_cut:,} long words cut to fit, {self.words_unk:,} words without pieces set to [UNK]"
        )


@dataclass(frozen=True)
class EncodedSentences:
    """Model inputs for N rows of width T = max_seq_length; a long sentence may span several rows.

    input_word_ids: [N, T] int32, [CLS] pieces [SEP] then 0 padding.
    input_mask:     [N, T] int32, 1 on [CLS], pieces and [SEP].
    input_type_ids: [N, T] int32, all 0.
    label_ids:      [N, T] int32, the word's label id on its first piece, IGNORE_LABEL elsewhere.
    word_casing:    [N, T] int32, the word's casing class (`ner.casing`) on its first piece, 0 elsewhere.
    lexical_ids:    [N, T, K] int32, the word's K hashed lexical feature ids (`ner.lexical`) on its first
                    piece, 0 elsewhere; K = 0 unless the featurizer was made with `lexical_templates`.
    char_ids:       [N, T, C] int32, the word's character ids (`ner.chars`) on its first piece, 0 elsewhere;
                    C = 0 unless the featurizer was made with `char_features`.
    sentence_ids:   [N] int64, the sentence each row came from (a sentence's rows are consecutive).
    word_offsets:   [N] int64, index in its sentence of the row's first word (0 unless split).
    num_words:      [N] int64, words in this row.
    sentence_lengths: [N] int64, words in the row's whole sentence (more than the rows hold if truncated).
    """

    input_word_ids: np.ndarray
    input_mask: np.ndarray
    input_type_ids: np.ndarray
    label_ids: np.ndarray
    word_casing: np.ndarray
    lexical_ids: np.ndarray
    char_ids: np.ndarray
    sentence_ids: np.ndarray
    word_offsets: np.ndarray
    num_words: np.ndarray
    sentence_lengths: np.ndarray
    stats: FeaturizeStats


def length_order(encoded: EncodedSentences) -> np.ndarray:
    """[N] int64: the rows sorted by length (word pieces), ties in row order; `select_rows(encoded,
    length_order(encoded))` batches rows of similar length together, with little padding."""
    return np.argsort(encoded.input_mask.sum(axis=1), kind="stable").astype(np.int64)


def select_rows(encoded: EncodedSentences, rows: np.ndarray) -> EncodedSentences:
    """The rows `rows` [n] of `encoded`, in that order; `stats` still describe the whole featurization."""
    rows = np.asarray(rows, dtype=np.int64)
    arrays = {f.name: getattr(encoded, f.name)[rows] for f in dataclasses.fields(encoded) if f.name != "stats"}
    return EncodedSentences(**arrays, stats=encoded.stats)


class WordPieceFeaturizer:
    """Tokenizes words with tensorflow-text's BertTokenizer on an encoder's vocab.txt and aligns labels.

    Each word becomes one or more wordpieces (BERT's basic tokenizer may also split a word such as
    "U.S." into several tokens; all their pieces belong to the word). A word with no pieces at all
    (e.g. only control characters) becomes one [UNK] so that it keeps its label.

    A sentence needing more than `max_seq_length` pieces (counting [CLS] and [SEP]) is, with
    `long_sentences="split"`, cut at word boundaries into consecutive rows, each filled greedily; with
    "truncate" only its first row is kept and the words after it are counted as lost. A single word
    with more pieces than a row holds keeps only its first pieces (counted in `words_cut`).
    `max_pieces_per_word`, when set, keeps only each word's first pieces up to that number (1: seed 001's
    input, one piece per word); None keeps them all.

    Every word's casing class (`ner.casing`) is placed on its first piece; with `lexical_templates` (a set
    of `ner.lexical.TEMPLATE_SETS`), its hashed lexical feature ids (`ner.lexical`) too, and with
    `char_features` its character ids (`ner.chars`).
    """

    def __init__(
        self,
        vocab_path: PathLike,
        do_lower_case: bool,
        max_seq_length: int,
        label_map: LabelMap,
        long_sentences: str = "split",
        lexical_templates: Optional[str] = None,
        max_pieces_per_word: int | None = None,
        char_features: bool = False,
    ) -> None:
        if long_sentences not in LONG_SENTENCE_POLICIES:
            raise ConfigError(
                f"unknown long_sentences mode {long_sentences!r}; expected one of {', '.join(LONG_SENTENCE_POLICIES)}"
            )
        if max_seq_length < 3:
            raise ConfigError(f"max_seq_length must be at least 3 ([CLS], one piece, [SEP]), got {max_seq_length}")
        if max_pieces_per_word is not None and max_pieces_per_word < 1:
            raise ConfigError(f"max_pieces_per_word must be at least 1 or None, got {max_pieces_per_word}")
        self.max_pieces_per_word = max_pieces_per_word
        self.max_seq_length = max_seq_length
        self.label_map = label_map
        self.long_sentences = long_sentences
        self.lexical_templates = lexical_templates
        self.char_features = char_features
        vocab = _read_vocab(Path(vocab_path))
        self._vocab_size = len(vocab)
        ids = {token: i for i, token in enumerate(vocab)}
        self._cls_id, self._sep_id, self._unk_id = ids["[CLS]"], ids["[SEP]"], ids["[UNK]"]
        table = tf.lookup.StaticVocabularyTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(vocab), tf.range(len(vocab), dtype=tf.int64)),
            num_oov_buckets=1,
        )
        self._tokenizer = tf_text.BertTokenizer(
            table, token_out_type=tf.int64, unknown_token="[UNK]", lower_case=do_lower_case
        )

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def featurize(self, sentences: Sequence[Sentence]) -> EncodedSentences:
        """Encodes the sentences into rows of width max_seq_length (see `EncodedSentences`)."""
        sentence_ids = np.array([s.sentence_id for s in sentences], dtype=np.int64)
        if len(np.unique(sentence_ids)) != len(sentence_ids):
            raise DataError("featurize got repeated sentence ids; expected each sentence once")
        lengths = np.array([len(s.words) for s in sentences], dtype=np.int64)  # [S]
        word_labels = np.array(
            [
                self.label_map.label_to_id(label)
                for s in sentences
                for label in self.label_map.from_bio(s.tags, where=f"sentence {s.sentence_id}")
            ],
            dtype=np.int32,
        )  # [W]
        flat_words = [w for s in sentences for w in s.words]
        words = tf.constant(flat_words, dtype=tf.string, shape=[len(flat_words)])  # [W]
        casing = casing_ids(flat_words)  # [W]
        sentences_words = tf.RaggedTensor.from_row_lengths(words, lengths)  # [S, (W)]
        lexical = (lexical_ids_in_graph(sentences_words, self.lexical_templates).numpy() if self.lexical_templates
                   else np.zeros((len(flat_words), 0), np.int32))  # [W, K]
        chars = (char_ids_in_graph(words).numpy() if self.char_features
                 else np.zeros((len(flat_words), 0), np.int32))  # [W, C]
        pieces, piece_counts, words_unk = self._word_pieces(sentences, lengths)  # [P], [W], int
        return self._layout(sentence_ids, lengths, word_labels, casing, lexical, chars, pieces, piece_counts,
                            words_unk)

    def _word_pieces(
        self, sentences: Sequence[Sentence], lengths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Tokenizes all words batched. Returns flat piece ids [P] int64, pieces per word [W] (each >= 1)
        and how many words had no pieces and were given one [UNK]."""
        flat_ids, counts = [], []
        for start in range(0, len(sentences), _TOKENIZE_CHUNK):
            chunk_lengths = lengths[start:start + _TOKENIZE_CHUNK]
            flat_words = [w for s in sentences[start:start + _TOKENIZE_CHUNK] for w in s.words]
            words = tf.RaggedTensor.from_row_lengths(
                tf.constant(flat_words, dtype=tf.string, shape=[len(flat_words)]), chunk_lengths
            )  # [sentences, (words)]
            pieces = self._tokenizer.tokenize(words).merge_dims(2, 3)  # [sentences, (words), (pieces)]
            flat_ids.append(pieces.flat_values.numpy())
            counts.append(pieces.values.row_lengths().numpy())
        ids = np.concatenate(flat_ids) if flat_ids else np.zeros(0, np.int64)
        count = np.concatenate(counts) if counts else np.zeros(0, np.int64)
        empty = count == 0
        if not empty.any():
            return ids, count, 0
        # A word without pieces gets a single [UNK]: copy the real pieces into their new places.
        fixed_count = np.maximum(count, 1)
        fixed = np.full(int(fixed_count.sum()), self._unk_id, dtype=np.int64)
        word_of_piece = np.repeat(np.arange(len(count)), count)
        shift = (np.cumsum(fixed_count) - fixed_count) - (np.cumsum(count) - count)  # [W]
        fixed[np.arange(len(ids)) + shift[word_of_piece]] = ids
        return fixed, fixed_count, int(empty.sum())

    def _layout(
        self,
        sentence_ids: np.ndarray,
        lengths: np.ndarray,
        word_labels: np.ndarray,
        word_casing: np.ndarray,
        word_lexical: np.ndarray,
        word_chars: np.ndarray,
        pieces: np.ndarray,
        piece_counts: np.ndarray,
        words_unk: int,
    ) -> EncodedSentences:
        """Places words into rows and columns; see `featurize`. Array shapes: [S], [S], [W], [W], [W, K],
        [W, C], [P], [W]."""
        width, budget = self.max_seq_length, self.max_seq_length - 2
        truncate = self.long_sentences == "truncate"
        per_word = budget if self.max_pieces_per_word is None else min(budget, self.max_pieces_per_word)
        counts = np.minimum(piece_counts, per_word)  # [W] pieces each word keeps
        sentence_of_word = np.repeat(np.arange(len(lengths)), lengths)  # [W]
        first_word = np.cumsum(lengths) - lengths  # [S]
        totals = np.bincount(sentence_of_word, weights=counts, minlength=len(lengths))  # [S]

        chunk = np.zeros(len(counts), dtype=np.int64)  # [W] row within its sentence; -1: truncated
        rows_per_sentence = np.ones(len(lengths), dtype=np.int64)  # [S]
        long_sentences = np.flatnonzero(totals > budget)
        for s in long_sentences:
            words = slice(first_word[s], first_word[s] + lengths[s])
            chunk[words] = _pack_words(counts[words], budget, truncate)
            rows_per_sentence[s] = chunk[words].max() + 1

        row_of_sentence = np.cumsum(rows_per_sentence) - rows_per_sentence  # [S] first row
        num_rows = int(rows_per_sentence.sum())
        kept = np.flatnonzero(chunk >= 0)  # [K] word indices
        kept_counts = counts[kept]
        word_row = row_of_sentence[sentence_of_word[kept]] + chunk[kept]  # [K]
        before = np.cumsum(kept_counts) - kept_counts  # [K] pieces of kept words before this one
        starts_row = np.ones(len(kept), dtype=bool)
        starts_row[1:] = word_row[1:] != word_row[:-1]
        row_base = np.maximum.accumulate(np.where(starts_row, before, 0))
        word_col = 1 + before - row_base  # [K] column of the word's first piece

        piece_word = np.repeat(np.arange(len(kept)), kept_counts)  # [Q] kept word of each placed piece
        piece_k = np.arange(len(piece_word)) - before[piece_word]  # [Q] index of the piece in its word
        piece_src = (np.cumsum(piece_counts) - piece_counts)[kept][piece_word] + piece_k
        row_pieces = np.bincount(word_row, weights=kept_counts, minlength=num_rows).astype(np.int64)

        input_word_ids = np.zeros((num_rows, width), dtype=np.int32)
        input_word_ids[word_row[piece_word], word_col[piece_word] + piece_k] = pieces[piece_src]
        input_word_ids[:, 0] = self._cls_id
        input_word_ids[np.arange(num_rows), row_pieces + 1] = self._sep_id
        input_mask = (np.arange(width)[None, :] < (row_pieces + 2)[:, None]).astype(np.int32)
        label_ids = np.full((num_rows, width), IGNORE_LABEL, dtype=np.int32)
        label_ids[word_row, word_col] = word_labels[kept]

        def on_first_pieces(per_word: np.ndarray) -> np.ndarray:  # [W, ...] → [num_rows, width, ...], 0 elsewhere
            placed = np.zeros((num_rows, width) + per_word.shape[1:], dtype=np.int32)
            placed[word_row, word_col] = per_word[kept]
            return placed

        word_offsets = np.zeros(num_rows, dtype=np.int64)
        word_offsets[word_row[starts_row]] = (kept - first_word[sentence_of_word[kept]])[starts_row]
        stats = FeaturizeStats(
            max_seq_length=width,
            sentences=len(lengths),
            rows=num_rows,
            sentences_split=0 if truncate else len(long_sentences),
            sentences_truncated=len(long_sentences) if truncate else 0,
            words_truncated=len(counts) - len(kept),
            words_cut=int((piece_counts > budget).sum()) if per_word == budget else 0,  # else capped by config
            words_unk=words_unk,
        )
        if stats.words_truncated or stats.words_cut:
            logger.warning(stats.summary())
        else:
            logger.info(stats.summary())
        return EncodedSentences(
            input_word_ids=input_word_ids,
            input_mask=input_mask,
            input_type_ids=np.zeros((num_rows, width), dtype=np.int32),
            label_ids=label_ids,
            word_casing=on_first_pieces(word_casing),
            lexical_ids=on_first_pieces(word_lexical),
            char_ids=on_first_pieces(word_chars),
            sentence_ids=np.repeat(sentence_ids, rows_per_sentence),
            word_offsets=word_offsets,
            num_words=np.bincount(word_row, minlength=num_rows).astype(np.int64),
            sentence_lengths=np.repeat(lengths, rows_per_sentence),
            stats=stats,
        )

    def words_labels(self, encoded: EncodedSentences, predicted_ids: np.ndarray) -> dict[int, list[int]]:
        """One predicted label id per word for every sentence, keyed by sentence id in input order.

        predicted_ids: [N, t] int, per-piece label ids for the rows of `encoded`; t may be less than
            max_seq_length (a trimmed batch) as long as every first piece lies within it.
        Only first-piece predictions are read; a split sentence's rows are re-joined in order. Words
        lost to truncation have no prediction and get the OUTSIDE ("O") id; `encoded.stats` counts them.
        """
        predicted = np.asarray(predicted_ids)
        num_rows, width = encoded.label_ids.shape
        if predicted.ndim != 2 or predicted.shape[0] != num_rows or predicted.shape[1] > width:
            raise ValueError(f"predicted_ids must have shape [{num_rows}, <= {width}], got {predicted.shape}")
        first_piece = encoded.label_ids >= 0  # [N, T]
        if first_piece[:, predicted.shape[1]:].any():
            raise ValueError(
                f"predicted_ids has width {predicted.shape[1]} but first pieces reach column "
                f"{int(np.flatnonzero(first_piece.any(axis=0)).max())}"
            )
        values = predicted[first_piece[:, :predicted.shape[1]]].astype(np.int64).tolist()  # row-major
        outside = self.label_map.label_to_id(OUTSIDE)
        result: dict[int, list[int]] = {}
        start = 0
        for sentence_id, offset, count in zip(
            encoded.sentence_ids.tolist(), encoded.word_offsets.tolist(), encoded.num_words.tolist()
        ):
            labels = result.setdefault(sentence_id, [])
            if len(labels) != offset:
                raise ValueError(f"rows of sentence {sentence_id} are not consecutive and in word order")
            labels.extend(values[start:start + count])
            start += count
        for sentence_id, length in zip(encoded.sentence_ids.tolist(), encoded.sentence_lengths.tolist()):
            labels = result[sentence_id]
            labels.extend([outside] * (length - len(labels)))
        return result


def _read_vocab(path: Path) -> list[str]:
    """The tokens of a BERT vocab.txt, one per line (id = 0-based line index)."""
    tokens = read_vocab_lines(path, DataError)
    seen: dict[str, int] = {}
    for line, token in enumerate(tokens, start=1):
        if token in seen:
            raise DataError(
                f"{path} line {line}: token {token!r} already on line {seen[token]}; expected unique tokens"
            )
        seen[token] = line
    missing = [t for t in ("[CLS]", "[SEP]", "[UNK]") if t not in seen]
    if missing:
        raise DataError(f"{path}: vocab lacks the special tokens {missing}")
    return tokens


def _pack_words(counts: np.ndarray, budget: int, truncate: bool) -> np.ndarray:
    """Greedy row index for each word of one sentence, given its piece counts (each <= budget).

    counts: [w] int. Returns [w] int64: 0, 0, 1, 1, 1, 2, ... or, with `truncate`, -1 after row 0.
    """
    rows = np.empty(len(counts), dtype=np.int64)
    row = used = 0
    for i, count in enumerate(counts.tolist()):
        if used + count > budget:
            if truncate:
                rows[i:] = -1
                break
            row, used = row + 1, 0
        rows[i] = row
        used += count
    return rows


# ----------------------------------------------------------------------------------------------------
# tf.data


def row_order(num_rows: int, shuffle: bool, seed: int | None, epoch: tf.Variable | None = None) -> tf.data.Dataset:
    """The row indices 0 .. num_rows - 1 (int64 scalars) in the order one pass over a dataset reads them.

    Without `shuffle`, in order. With `shuffle` and an `epoch` (an int64 `tf.Variable`; training passes
    its count of finished epochs), each pass is the permutation `stateless_shuffle(seed, epoch)` for the
    value `epoch` holds when the pass starts: it depends on nothing else, so epoch k of a run resumed from
    a checkpoint reads the rows in the same order as epoch k of an uninterrupted run. With `shuffle` and
    no `epoch`, tf.data's own reshuffle: pass k of this dataset object gets the k-th order of `seed`, and
    a new object (a new process) starts again at the first order; fine for loops that are never resumed.
    """
    rows = tf.data.Dataset.range(num_rows)
    if not shuffle:
        return rows
    if epoch is None:
        return rows.shuffle(max(num_rows, 1), seed=seed, reshuffle_each_iteration=True)
    if seed is None:
        raise ValueError("a shuffle keyed by the epoch needs a seed")
    order_seed = tf.constant(seed, tf.int64)

    def permutation(_):
        return tf.random.experimental.stateless_shuffle(tf.range(num_rows, dtype=tf.int64),
                                                        seed=tf.stack([order_seed, epoch.read_value()]))

    return tf.data.Dataset.from_tensors(0).map(permutation).unbatch()


WINDOW_BATCHES = 50  # batches per window that `length_grouped_batches` sorts by length


def length_grouped_batches(
    lengths: np.ndarray, batch_size: int, seed: int | None, epoch: tf.Variable | None = None,
    drop_remainder: bool = False, window_batches: int = WINDOW_BATCHES,
) -> tf.data.Dataset:
    """[B] int64 row-index vectors for one shuffled pass, each batch holding rows of similar length.

    lengths: [N] ints, each row's length (word pieces: its `input_mask` sum). A pass takes the
    permutation `row_order(N, shuffle=True, seed, epoch)` reads, cuts it into windows of
    `batch_size * window_batches` rows, sorts each window by length (stably, so equal lengths keep their
    random order), cuts that into batches and shuffles the batch order: a batch pads only to its own
    longest row, and batches still come in random order (flair's / Hugging Face's `group_by_length`).
    Every row appears once per pass and only one batch may be short; with `drop_remainder` the
    permutation's last N mod B rows are dropped first, as without grouping. The batch order is a
    stateless shuffle keyed by `(seed, epoch)` like the row order, so a resumed run reads the same
    batches; without `epoch`, tf.data reshuffles it on each pass (see `row_order`).
    """
    if batch_size < 1 or window_batches < 1:
        raise ConfigError(f"batch_size and window_batches must be at least 1, got {batch_size}, {window_batches}")
    lengths = np.asarray(lengths, dtype=np.int64)  # [N]
    num_rows = len(lengths)
    kept = num_rows - num_rows % batch_size if drop_remainder else num_rows
    num_batches = -(-kept // batch_size)
    padding = num_batches * batch_size - kept  # -1 entries that fill the short batch to B
    window = batch_size * window_batches
    stride = int(lengths.max(initial=0)) + 1  # sort key window * stride + length: by window, then by length
    row_lengths = tf.constant(lengths)

    def grouped(order: tf.Tensor) -> tf.Tensor:  # order: [N] int64, the pass's permutation
        order = order[:kept]
        key = tf.range(kept, dtype=tf.int64) // window * stride + tf.gather(row_lengths, order)
        order = tf.gather(order, tf.argsort(key, stable=True))
        return tf.reshape(tf.concat([order, tf.fill([padding], tf.constant(-1, tf.int64))], 0),
                          [num_batches, batch_size])  # [num_batches, B]

    permutations = row_order(num_rows, shuffle=True, seed=seed, epoch=epoch).batch(max(num_rows, 1))
    if epoch is None:
        batches = permutations.map(grouped).unbatch().shuffle(max(num_batches, 1), seed=seed,
                                                              reshuffle_each_iteration=True)
    else:
        order_seed = tf.constant(seed, tf.int64)

        def shuffled(order: tf.Tensor) -> tf.Tensor:
            batch_seed = tf.random.experimental.stateless_fold_in(tf.stack([order_seed, epoch.read_value()]), 1)
            return tf.random.experimental.stateless_shuffle(grouped(order), seed=batch_seed)

        batches = permutations.map(shuffled).unbatch()
    if padding:
        batches = batches.map(lambda rows: tf.boolean_mask(rows, rows >= 0))  # [b <= B]
    return batches


def word_id_inputs(encoded: EncodedSentences) -> dict[str, np.ndarray]:
    """The word-level id features a model may read, by input name: "word_casing" [N, T], and "lexical_ids"
    [N, T, K] and "char_ids" [N, T, C] when `encoded` has them; each on the words' first pieces."""
    inputs = {WORD_CASING: encoded.word_casing}
    for name, values in ((LEXICAL_IDS, encoded.lexical_ids), (CHAR_IDS, encoded.char_ids)):
        if values.shape[-1]:
            inputs[name] = values
    return inputs


def make_dataset(
    encoded: EncodedSentences, batch_size: int, shuffle: bool, seed: int | None, drop_remainder: bool = False,
    first_piece_mask: bool = False, epoch: tf.Variable | None = None, group_by_length: bool = False,
    length_buckets: Sequence[int] | None = None, order: tf.data.Dataset | None = None,
) -> tf.data.Dataset:
    """Batches of (features, label_ids), each trimmed to its longest row (or padded to a length bucket).

    features: dict of "input_word_ids", "input_mask", "input_type_ids", each [B, t] int32, where
    t = max(input_mask.sum(1)) over the batch, and "word_casing" [B, t] int32 (`ner.casing`, read by models
    with `model.casing_dim` > 0) and, when `encoded` has them, "lexical_ids" [B, t, K] int32 (`ner.lexical`)
    and "char_ids" [B, t, C] int32 (`ner.chars`);
    label_ids: [B, t] int32. With `shuffle`, rows are read
    in a new order each epoch, fixed by `seed` (and by `epoch` when given; see `row_order`). Unlabelled
    data uses it too (labels ignored). With `first_piece_mask`, features also hold "first_piece_mask"
    [B, t] int32, 1 on each word's first piece (where `label_ids` holds a label): models that work on
    words (the CRF) read it, so that they know the words without the labels. With `shuffle` and
    `group_by_length`, each batch holds rows of similar length, so less of it is padding (see
    `length_grouped_batches`); it changes nothing without `shuffle`. With `length_buckets` (increasing
    widths), t is instead the smallest of them that holds the batch's longest row: rows are cut or padded
    (0, `IGNORE_LABEL` for labels) to it, so that batches come in a few shapes only. `order`, when given,
    is the row indices (int64 scalars) each pass reads, in place of `shuffle`'s order (seed 001's draws,
    `ner.data.ModelInputs.draw_dataset`).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    row_lengths = encoded.input_mask.sum(axis=1)  # [N]
    check_length_buckets(int(row_lengths.max(initial=0)), length_buckets, "word pieces")
    arrays = {
        "input_word_ids": encoded.input_word_ids,
        "input_mask": encoded.input_mask,
        "input_type_ids": encoded.input_type_ids,
        **word_id_inputs(encoded),
    }
    if first_piece_mask:
        arrays[FIRST_PIECE_MASK] = (encoded.label_ids != IGNORE_LABEL).astype(np.int32)
    features = {name: tf.constant(value) for name, value in arrays.items()}  # [N, T] each
    label_ids = tf.constant(encoded.label_ids)  # [N, T]

    def gather(rows: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:  # rows: [B] int64
        return _trim_batch({name: tf.gather(value, rows) for name, value in features.items()},
                           tf.gather(label_ids, rows), length_buckets)

    if order is not None:
        batches = order.batch(batch_size, drop_remainder=drop_remainder)
    elif shuffle and group_by_length:
        batches = length_grouped_batches(row_lengths, batch_size, seed, epoch, drop_remainder)
    else:
        order = row_order(len(encoded.label_ids), shuffle, seed, epoch)
        batches = order.batch(batch_size, drop_remainder=drop_remainder)
    return batches.map(gather).prefetch(tf.data.AUTOTUNE)


def _trim_batch(features: dict[str, tf.Tensor], label_ids: tf.Tensor, length_buckets: Sequence[int] | None = None
                ) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """Cuts [B, T] tensors to [B, t], t = the batch's longest row (sum of input_mask); with `length_buckets`,
    cuts or pads them to the smallest bucket width that holds it (`bucket_width`)."""
    length = tf.reduce_max(tf.reduce_sum(features["input_mask"], axis=1))
    if length_buckets is None:
        return {name: value[:, :length] for name, value in features.items()}, label_ids[:, :length]
    width = bucket_width(length, length_buckets)
    return ({name: pad_to_width(value, width, 0) for name, value in features.items()},
            pad_to_width(label_ids, width, IGNORE_LABEL))


def check_length_buckets(longest: int, length_buckets: Sequence[int] | None, unit: str) -> None:
    """ConfigError unless the largest of `length_buckets` (when given) holds a row of `longest` `unit`."""
    if length_buckets is not None and longest > length_buckets[-1]:
        raise ConfigError(f"training.length_buckets {list(length_buckets)} must reach the longest row "
                          f"({longest} {unit}); expected a last width of at least {longest}")


def bucket_width(length: tf.Tensor, length_buckets: Sequence[int]) -> tf.Tensor:
    """The smallest of `length_buckets` (increasing widths) >= `length` (a scalar integer tensor); the
    caller makes sure one is (`check_length_buckets`)."""
    widths = tf.constant(length_buckets, length.dtype)  # [K]
    return tf.gather(widths, tf.searchsorted(widths, tf.reshape(length, [1]), side="left")[0])


def pad_to_width(value: tf.Tensor, width: tf.Tensor, fill) -> tf.Tensor:
    """[B, T, ...] → [B, width, ...]: axis 1 cut to `width`, or padded with `fill` up to it."""
    value = value[:, :width]
    padding = [[0, 0], [0, width - tf.shape(value)[1]]] + [[0, 0]] * (value.shape.rank - 2)
    return tf.pad(value, padding, constant_values=tf.cast(fill, value.dtype))
