"""Encode once: a disk cache of a frozen encoder's word vectors, and tf.data pipelines that read it.

A frozen encoder's output never changes, so re-running it on every batch of every epoch wastes nearly
all of a run's time. The cache stores, for each word, the encoder layers the head reads at its first word
piece (or, with `model.word_pooling: mean`, their mean over the word's pieces), as float16 in a `.npy` file:

    <cache root>/<key>/features.npy     [n_words, L, H] float16 (L = 1 for the last layer, else all layers)
                       row_splits.npy   [N + 1] int64: row r's words are features[row_splits[r]:row_splits[r+1]]
                       filled.npy       [N] bool: which rows are encoded (rows are encoded on first use)
                       meta.json        what the key was made from

The key hashes the encoder (its handle and the SavedModel files' sizes and modification times), the
featurized corpus itself (word-piece ids, masks and first-piece positions of every row: this covers the
data, the vocabulary, lower-casing, `max_seq_length`, the pieces kept per word and the long-sentence policy) and the stored
layers (and the pooling, when it is not the first piece). A different encoder, tokenisation or corpus
therefore never reuses stale features. The split only chooses rows, so every seed's split shares one
cache, and each row is encoded once, ever.

Rows are read and written with `pread`/`pwrite` at their offsets in `features.npy` (`WordVectorFile`),
not through a memory map: a process holds only the batches in use, however many runs it makes and
however large the cache (the operating system's page cache still serves re-reads).

Writes are safe against crashes: row data are synced to disk before their `filled` flags, and
`filled.npy` and `meta.json` are replaced atomically. A cache damaged all the same (a full disk, a file
cut by hand) is found when it is opened, before any batch is read, and raises NerError naming the file
and the directory to delete.
"""
import hashlib
import json
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from ner.errors import NerError
from ner.layers.word_pooling import mean_over_word_pieces
from ner.models.bert_ner import WORD_FEATURES
from ner.models.layer_mix import stack_encoder_layers
from ner.preprocessor import (EncodedSentences, bucket_width, check_length_buckets, length_grouped_batches,
                              pad_to_width, row_order, word_id_inputs)
from ner.tagging import FIRST_PIECE_MASK, IGNORE_LABEL
from ner.utils import atomic_path

ENCODE_BATCH_SIZE = 128

EncodeFn = Callable[[Dict[str, tf.Tensor]], tf.Tensor]


def encoder_fingerprint(handle: str) -> str:
    """A string that changes when the encoder does: the handle, plus file sizes and times if local."""
    path = Path(handle)
    if not path.is_dir():
        return handle
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return handle + "|" + "|".join(f"{p.relative_to(path)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def corpus_fingerprint(encoded: EncodedSentences) -> str:
    """Hash of everything the encoder sees and where words start: ids, masks, first-piece positions."""
    digest = hashlib.sha1()
    for array in (encoded.input_word_ids, encoded.input_mask, encoded.input_type_ids,
                  encoded.label_ids != IGNORE_LABEL):
        digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(str(array.shape).encode())
    return digest.hexdigest()


def make_encode_fn(encoder: tf.keras.layers.Layer, use_all_layers: bool) -> EncodeFn:
    """A compiled function from BERT inputs [B, T] to the stored layers [B, T, L, H] (inference mode)."""
    spec = {name: tf.TensorSpec([None, None], tf.int32) for name in ("input_word_ids", "input_mask", "input_type_ids")}

    @tf.function(input_signature=[spec])
    def encode(inputs):
        return stack_encoder_layers(encoder(inputs, training=False), use_all_layers)

    return encode


def damaged_cache(path: Path, problem: str) -> NerError:
    """The error for a cache file that cannot be read as written: names it and the directory to delete."""
    return NerError(f"{path}: {problem}; expected a complete feature-cache file: delete the cache directory "
                    f"{Path(path).parent} to rebuild it")


def _read_filled(path: Path, num_rows: int) -> np.ndarray:
    """A store's `filled.npy`: [num_rows] bool; NerError (`damaged_cache`) if it is unreadable or another shape."""
    try:
        filled = np.load(path)
    except (OSError, ValueError, EOFError) as error:
        raise damaged_cache(path, f"not a readable .npy array ({error or type(error).__name__})") from None
    if filled.dtype != bool or filled.shape != (num_rows,):
        raise damaged_cache(path, f"expected [{num_rows}] bool, got {filled.shape} {filled.dtype}")
    return filled


class WordVectorFile:
    """A `.npy` file of word vectors [n_words, L, H] read and written by word ranges with pread/pwrite."""

    def __init__(self, path: Path):
        """Opens the file; NerError (`damaged_cache`) if its header or its size is not that of a whole array."""
        try:
            with open(path, "rb") as handle:
                version = np.lib.format.read_magic(handle)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran_order, dtype = read_header(handle)
                self.data_offset = handle.tell()
        except (OSError, ValueError) as error:
            raise damaged_cache(path, f"not a readable .npy array ({error})") from None
        if fortran_order or len(shape) != 3:
            raise damaged_cache(path, f"expected a C-ordered [n_words, L, H] array, got shape {shape}")
        self.path, self.shape, self.dtype = Path(path), tuple(shape), np.dtype(dtype)
        self.word_bytes = int(np.prod(shape[1:])) * self.dtype.itemsize
        expected, size = self.data_offset + shape[0] * self.word_bytes, os.path.getsize(path)
        if size != expected:
            raise damaged_cache(path, f"{size:,} bytes, expected {expected:,} (header and {shape[0]:,} words of "
                                      f"{self.word_bytes} bytes); the file is truncated")
        self._fd = os.open(path, os.O_RDWR)
        weakref.finalize(self, os.close, self._fd)

    def read(self, begin: int, end: int) -> np.ndarray:
        """Words `begin .. end - 1`: [end - begin, L, H]."""
        size = (end - begin) * self.word_bytes
        data = os.pread(self._fd, size, self.data_offset + begin * self.word_bytes)
        if len(data) != size:  # cut after it was opened
            raise damaged_cache(self.path, f"short read at word {begin} ({len(data)} of {size} bytes); the file "
                                           "is truncated")
        return np.frombuffer(data, self.dtype).reshape((end - begin,) + self.shape[1:])

    def write(self, begin: int, words: np.ndarray) -> None:
        """Stores `words` [n, L, H] as words `begin .. begin + n - 1`."""
        os.pwrite(self._fd, np.ascontiguousarray(words, self.dtype).tobytes(),
                  self.data_offset + begin * self.word_bytes)

    def sync(self) -> None:
        os.fsync(self._fd)


@dataclass
class WordFeatureStore:
    """The cached word vectors of one featurized corpus under one encoder (see the module docstring)."""

    directory: Path
    features: WordVectorFile  # [n_words, L, H] float16
    row_splits: np.ndarray    # [N + 1] int64
    filled: np.ndarray        # [N] bool
    word_labels: np.ndarray   # [n_words] int32, label id of each word (from the featurized corpus)
    word_ids: Dict[str, np.ndarray]  # the words' id features by input name (`ner.preprocessor.word_id_inputs`):
    # "word_casing" [n_words], and "lexical_ids" [n_words, K], "char_ids" [n_words, C] when the corpus has them;
    # not cached, derived from the featurized corpus
    word_pooling: str = "first"  # what a word's vector is (`model.word_pooling`)

    @classmethod
    def open(cls, root: Path, encoded: EncodedSentences, encoder_handle: str, use_all_layers: bool,
             num_layers: int, hidden_size: int, word_pooling: str = "first") -> "WordFeatureStore":
        """Opens the store for this corpus and encoder under `root`, creating an empty one if needed.

        Args:
          root: cache root directory, e.g. `saved_models/feature_cache`.
          encoded: the whole featurized corpus; rows are addressed by their index in it.
          encoder_handle: the encoder's resolved handle.
          use_all_layers: store every layer's output (L = num_layers), else only the last (L = 1).
          num_layers, hidden_size: the encoder's size.
          word_pooling: "first" (a word's first piece) or "mean" (the mean over its pieces).
        """
        stored_layers = num_layers if use_all_layers else 1
        meta = {"encoder": encoder_fingerprint(encoder_handle), "corpus": corpus_fingerprint(encoded),
                "shape": [0, stored_layers, hidden_size], "version": 1}
        if word_pooling != "first":  # first-piece caches keep the keys they had before pooling existed
            meta["word_pooling"] = word_pooling
        key = hashlib.sha1(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
        directory = Path(root) / key
        first_pieces = encoded.label_ids != IGNORE_LABEL
        words_per_row = first_pieces.sum(axis=1)
        row_splits = np.concatenate([[0], np.cumsum(words_per_row)]).astype(np.int64)
        meta["shape"][0] = int(row_splits[-1])
        if not (directory / "meta.json").is_file():
            with atomic_path(directory) as tmp:
                tmp.mkdir()
                np.lib.format.open_memmap(tmp / "features.npy", mode="w+", dtype=np.float16,
                                          shape=tuple(meta["shape"])).flush()
                np.save(tmp / "row_splits.npy", row_splits)
                np.save(tmp / "filled.npy", np.zeros(len(words_per_row), dtype=bool))
                (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return cls(directory, WordVectorFile(directory / "features.npy"), row_splits,
                   _read_filled(directory / "filled.npy", len(words_per_row)),
                   encoded.label_ids[first_pieces].astype(np.int32),
                   {name: values[first_pieces].astype(np.int32) for name, values in word_id_inputs(encoded).items()},
                   word_pooling)

    def missing_rows(self, rows: np.ndarray) -> np.ndarray:
        """The subset of `rows` not encoded yet."""
        rows = np.asarray(rows, dtype=np.int64)
        return rows[~self.filled[rows]]

    def fill(self, encoded: EncodedSentences, rows: np.ndarray, encode: EncodeFn,
             batch_size: int = ENCODE_BATCH_SIZE, progress: Optional[Callable[[int], None]] = None) -> int:
        """Encodes the rows not cached yet (in length-sorted batches) and stores their word vectors.

        Returns the number of rows encoded. `progress(n)` is called after each batch of n rows.
        """
        missing = self.missing_rows(rows)
        if missing.size == 0:
            return 0
        lengths = encoded.input_mask[missing].sum(axis=1)
        order = missing[np.argsort(lengths, kind="stable")]
        for start in range(0, order.size, batch_size):
            batch = order[start:start + batch_size]
            width = int(encoded.input_mask[batch].sum(axis=1).max())
            inputs = {name: tf.constant(getattr(encoded, name)[batch, :width])
                      for name in ("input_word_ids", "input_mask", "input_type_ids")}
            first = encoded.label_ids[batch, :width] != IGNORE_LABEL
            vectors = encode(inputs)                              # [b, width, L, H]
            if self.word_pooling == "mean":
                vectors = mean_over_word_pieces(vectors, first, inputs["input_mask"])
            words = vectors.numpy()[first].astype(np.float16)     # rows' words, in row order
            offset = 0
            for row in batch:
                begin, end = self.row_splits[row], self.row_splits[row + 1]
                self.features.write(begin, words[offset:offset + end - begin])
                offset += end - begin
            if progress is not None:
                progress(len(batch))
        self.features.sync()
        self.filled[missing] = True
        with atomic_path(self.directory / "filled.npy") as tmp:
            np.save(tmp, self.filled)
        return int(missing.size)

    def dataset(self, rows: np.ndarray, batch_size: int, shuffle: bool, seed: Optional[int],
                epoch: Optional[tf.Variable] = None, group_by_length: bool = False,
                word_labels: Optional[np.ndarray] = None,
                length_buckets: Optional[Sequence[int]] = None, order: Optional[tf.data.Dataset] = None
                ) -> tf.data.Dataset:
        """Batches of `(features, labels [B, W] int32)` for `rows`, features being "word_features" [B, W, L, H]
        float16, "first_piece_mask" [B, W] int32 (1 on every word: at word level each position is a word's
        first piece, which is what a CRF reads) and the words' id features (`word_ids`: "word_casing" [B, W]
        int32, and "lexical_ids" [B, W, K] and "char_ids" [B, W, C] when the featurized corpus has them).

        W is the batch's longest row in words; shorter rows are padded with zeros and label
        `IGNORE_LABEL`. With `shuffle`, rows are read in a new order each epoch, fixed by `seed` (and by
        `epoch` when given; see `ner.preprocessor.row_order`); with `group_by_length` too, each batch holds
        rows of similar word counts (`ner.preprocessor.length_grouped_batches`). With `length_buckets`, W
        is the smallest of those widths that holds the batch's longest row (`ner.preprocessor.bucket_width`).

        `word_labels` [n] int32 replaces the corpus's labels of the n words of `rows` (in row order), e.g.
        a teacher's pseudo-labels (`ner.self_training`). `order` (indices into `rows`, each pass) replaces
        `shuffle`'s order, as in `ner.preprocessor.make_dataset`.
        """
        rows = np.asarray(rows, dtype=np.int64)
        labels_of_words = self.word_labels
        if word_labels is not None:
            words = np.concatenate([np.zeros(0, np.int64)] + [
                np.arange(self.row_splits[row], self.row_splits[row + 1]) for row in rows])
            if len(word_labels) != len(words):
                raise ValueError(f"word_labels has {len(word_labels)} labels for the {len(words)} words of the rows")
            labels_of_words = self.word_labels.copy()
            labels_of_words[words] = word_labels
        missing = self.missing_rows(rows)
        if missing.size:
            raise RuntimeError(f"{missing.size} rows are not cached yet; call fill() first")
        row_words = np.diff(self.row_splits)[rows]  # [n]
        check_length_buckets(int(row_words.max(initial=0)), length_buckets, "words")
        _, stored_layers, hidden = self.features.shape

        word_ids = self.word_ids

        def gather(batch_rows: np.ndarray) -> Tuple[np.ndarray, ...]:
            begins, ends = self.row_splits[batch_rows], self.row_splits[batch_rows + 1]
            width = int((ends - begins).max()) if len(batch_rows) else 0
            features = np.zeros((len(batch_rows), width, stored_layers, hidden), np.float16)
            labels = np.full((len(batch_rows), width), IGNORE_LABEL, np.int32)
            ids = {name: np.zeros((len(batch_rows), width) + values.shape[1:], np.int32)
                   for name, values in word_ids.items()}
            for i, (begin, end) in enumerate(zip(begins, ends)):
                features[i, :end - begin] = self.features.read(begin, end)
                labels[i, :end - begin] = labels_of_words[begin:end]
                for name, values in word_ids.items():
                    ids[name][i, :end - begin] = values[begin:end]
            return (features, labels) + tuple(ids.values())

        def load(batch_rows):
            features, labels, *ids = tf.numpy_function(gather, [batch_rows],
                                                        (tf.float16, tf.int32) + (tf.int32,) * len(word_ids))
            features.set_shape([None, None, stored_layers, hidden])
            labels.set_shape([None, None])
            ids = dict(zip(word_ids, ids))
            for name, value in ids.items():
                value.set_shape([None, None] + list(word_ids[name].shape[1:]))
            if length_buckets is not None:
                width = bucket_width(tf.shape(labels)[1], length_buckets)
                features = pad_to_width(features, width, 0)
                ids = {name: pad_to_width(value, width, 0) for name, value in ids.items()}
                labels = pad_to_width(labels, width, IGNORE_LABEL)
            words = tf.cast(labels != IGNORE_LABEL, tf.int32)
            return {WORD_FEATURES: features, FIRST_PIECE_MASK: words, **ids}, labels

        store_rows = tf.constant(rows)  # [n] int64
        if order is not None:
            batches = order.batch(batch_size)
        elif shuffle and group_by_length:
            batches = length_grouped_batches(row_words, batch_size, seed, epoch)
        else:
            batches = row_order(len(rows), shuffle, seed, epoch).batch(batch_size)
        return batches.map(lambda batch: load(tf.gather(store_rows, batch))).prefetch(tf.data.AUTOTUNE)
