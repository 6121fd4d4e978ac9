"""Seed 001's original, **leaky** data protocol (`split.protocol: seed001`) and its hard-coded KL prior, kept
only to reproduce seed 001's table on its own terms. The package's own protocol is "leak_free".

The facts, from seed 001's public code (GitHub AdamStein97/Semi-Supervised-BERT-NER: `ner/preprocessor.py`,
`ner/trainers/`, `config/config.yaml`, `config/bert_ner_data_dist_kl_config.yaml`):

- every sentence is padded to 50 rows ([CLS], its words, [SEP], padding); a sentence of 48 or more words
  leaves no padding and is skipped (`MAX_WORDS`);
- the other sentences, in corpus order, go through one `tf.data` pipeline: `.shuffle(2048)` (a new order
  on every iteration, tf.data's default), then `.batch(128, drop_remainder=True)`; `.take(75)` of it is
  "test", `.skip(75).take(20)` "labelled" and `.skip(95)` "unlabelled";
- every iteration of a part draws a new order: each epoch's pass over "labelled", each evaluation pass
  over "test" (after every epoch, and the final one), and each `.take(1)` in the KL loops, which reads the
  first batch of the part of a fresh draw. The parts of one draw are disjoint; across draws they overlap,
  so the model trains on sentences it is tested on and the KL stages see fresh labelled batches;
- the shuffle keeps a 2,048-sentence buffer (`SHUFFLE_BUFFER`), so the first k outputs of any draw come
  from the first k + 2,047 sentences: "test" and "labelled" come from the front of the corpus;
- the data-distribution KL's prior is a hard-coded whole-corpus tag distribution (`SEED001_PRIOR`).

`Seed001Draws` makes those draws with NumPy (`buffer_shuffle` is tf.data's buffer algorithm), each keyed by
`(seed, part, key)`: the same key gives the same draw, so a run repeats exactly, and each (part, key) is
its own iteration of the pipeline, as each pass over a part was in seed 001. `ner.data.ModelInputs` asks
for one draw per pass; batches are `training.batch_size` sentences (the seed's 128).
"""
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from ner.errors import ConfigError
from ner.preprocessor import SPLIT_PARTS, DataSplit
from ner.readers import Sentence

MAX_WORDS = 48  # a sentence of this many words or more is skipped (50 rows less [CLS] and [SEP])
SHUFFLE_BUFFER = 2048  # the pipeline's `.shuffle(2048)`
EVALUATION_STREAM = len(SPLIT_PARTS)  # the stream of the draw a run is evaluated on (and saves as its split)
# `config/bert_ner_data_dist_kl_config.yaml`'s `label_distribution` without its PAD class (0.0): GMB's
# whole-corpus tag distribution, per entity type.
SEED001_PRIOR = {"O": 0.8468, "geo": 0.0430, "gpe": 0.0153, "per": 0.0327, "org": 0.0352, "tim": 0.0256,
                 "art": 0.0007, "nat": 0.0002, "eve": 0.0005}


def seed001_prior(labels: Sequence[str]) -> np.ndarray:
    """`SEED001_PRIOR` [C] in the order of `labels` (a label map's, io scheme); ConfigError for other labels."""
    if sorted(labels) != sorted(SEED001_PRIOR):
        raise ConfigError(f"semi_supervised.prior_source seed001 is seed 001's prior over {', '.join(SEED001_PRIOR)}; "
                          f"the run's labels are {', '.join(labels)} (expected GMB with data.tag_scheme io)")
    return np.array([SEED001_PRIOR[label] for label in labels], dtype=np.float64)


def buffer_shuffle(num_items: int, buffer_size: int, rng: np.random.Generator, count: int) -> np.ndarray:
    """The first `count` items [count] int64 that `tf.data.Dataset.range(num_items).shuffle(buffer_size)`
    emits: each output is an item drawn uniformly from the buffer (the next `buffer_size` items at first),
    and its slot is refilled from the stream; once the stream is spent the buffer shrinks."""
    count = min(count, num_items)
    buffer = list(range(min(buffer_size, num_items)))
    upcoming = len(buffer)
    picks = rng.random(count)
    out = np.empty(count, np.int64)
    for step in range(count):
        slot = int(picks[step] * len(buffer))
        out[step] = buffer[slot]
        if upcoming < num_items:
            buffer[slot] = upcoming
            upcoming += 1
        else:
            buffer[slot] = buffer[-1]
            buffer.pop()
    return out


@dataclass(frozen=True)
class Seed001Draws:
    """Seed 001's draws over the sentences it keeps.

    sentence_ids: the kept sentences (fewer than `MAX_WORDS` words), in corpus order.
    skipped: how many sentences of `MAX_WORDS` or more words were skipped.
    seed: keys every draw (`split.seed`).
    batch_size: sentences per batch; a draw drops its last partial batch.
    test_size, labelled_size: sentences of the "test" and "labelled" parts (whole batches); "unlabelled" is
      the rest of the draw's whole batches.
    """

    sentence_ids: Tuple[int, ...]
    skipped: int
    seed: int
    batch_size: int
    test_size: int
    labelled_size: int
    buffer_size: int = SHUFFLE_BUFFER

    def __post_init__(self):
        if self.test_size % self.batch_size or self.labelled_size % self.batch_size:
            raise ConfigError(f"split.protocol seed001 draws whole batches: split.test_size ({self.test_size}) and "
                              f"split.labelled_size ({self.labelled_size}) must be multiples of training.batch_size "
                              f"({self.batch_size})")
        if self.usable <= self.test_size + self.labelled_size:
            raise ConfigError(f"split.protocol seed001 keeps {len(self.sentence_ids):,} sentences of fewer than "
                              f"{MAX_WORDS} words ({self.skipped:,} skipped): too few for {self.test_size:,} test, "
                              f"{self.labelled_size:,} labelled and a batch of unlabelled sentences")

    @classmethod
    def from_sentences(cls, sentences: Mapping[int, Sentence], seed: int, batch_size: int, test_size: int,
                       labelled_size: int, buffer_size: int = SHUFFLE_BUFFER) -> "Seed001Draws":
        """The draws over `sentences` (id → sentence), skipping those of `MAX_WORDS` or more words."""
        ids = sorted(sentences)
        kept = tuple(i for i in ids if len(sentences[i].words) < MAX_WORDS)
        return cls(kept, len(ids) - len(kept), seed, batch_size, test_size, labelled_size, buffer_size)

    @property
    def usable(self) -> int:
        """Sentences in a draw's whole batches (`drop_remainder=True`)."""
        return len(self.sentence_ids) - len(self.sentence_ids) % self.batch_size

    def bounds(self, part: str, limit: Optional[int] = None) -> Tuple[int, int]:
        """[start, end) of `part` among a draw's outputs; `limit` keeps its first `limit` only."""
        starts = {"test": 0, "labelled": self.test_size, "unlabelled": self.test_size + self.labelled_size}
        ends = {"test": self.test_size, "labelled": self.test_size + self.labelled_size, "unlabelled": self.usable}
        if part not in starts:
            raise ValueError(f"seed 001's protocol has no part {part!r}; expected test, labelled or unlabelled")
        start, end = starts[part], ends[part]
        return start, end if limit is None else min(end, start + limit)

    def draw(self, part: str, key: int, limit: Optional[int] = None) -> np.ndarray:
        """Sentence ids [n] int64 of `part` (its first `limit`) in the iteration keyed by `key` >= 0 (an epoch
        or a pass count), in the draw's order. Draws of different parts or keys are different iterations of
        the pipeline, so they overlap."""
        start, end = self.bounds(part, limit)
        return self._ids(self._order(SPLIT_PARTS.index(part), key, end)[start:end])

    def _order(self, stream: int, key: int, count: int) -> np.ndarray:
        """The first `count` positions [count] int64 (into `sentence_ids`) of the iteration `(stream, key)`."""
        rng = np.random.default_rng([self.seed, stream, key])
        return buffer_shuffle(len(self.sentence_ids), self.buffer_size, rng, count)

    def _ids(self, positions: np.ndarray) -> np.ndarray:
        return np.asarray(self.sentence_ids, np.int64)[positions]

    def reachable(self, part: str, limit: Optional[int] = None) -> np.ndarray:
        """Sentence ids [m] int64, corpus order: every sentence a draw of `part` (its first `limit`) can hold,
        the first end + buffer - 1 kept sentences (a draw's k-th output comes from the first k + buffer)."""
        _, end = self.bounds(part, limit)
        return np.asarray(self.sentence_ids[:end + self.buffer_size - 1], np.int64)

    def split(self) -> DataSplit:
        """The evaluation draw (`EVALUATION_STREAM`) as a run's split: the test, labelled and unlabelled parts
        of one iteration (disjoint), no validation part. The run is evaluated on its "test" part."""
        order = self._order(EVALUATION_STREAM, 0, self.usable)
        parts = {part: tuple(self._ids(order[slice(*self.bounds(part))]).tolist())
                 for part in ("test", "labelled", "unlabelled")}
        return DataSplit(test_ids=parts["test"], labelled_ids=parts["labelled"], validation_ids=(),
                         unlabelled_ids=parts["unlabelled"], seed=self.seed)

    def summary(self) -> str:
        """One line for the data log: what was skipped and how the parts are drawn."""
        return (f"split.protocol seed001 (seed 001's original, leaky protocol): {self.skipped:,} sentences of "
                f">= {MAX_WORDS} words skipped, {len(self.sentence_ids):,} kept; every pass re-draws "
                f"{self.test_size:,} test / {self.labelled_size:,} labelled / the rest unlabelled from one "
                f"reshuffle (buffer {self.buffer_size:,}, batches of {self.batch_size}); the parts above are "
                "the evaluation draw's")
