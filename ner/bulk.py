"""Bulk tagging on Ray Data: a large text or JSONL corpus through a run's serving SavedModel (`ner tag-corpus`).

    pip install -e ".[bulk]"    # Ray Data (ray[data]); not part of the core install
    ner tag-corpus --run bert_ner --input corpus.jsonl --input-format jsonl --output tagged.jsonl

The corpus is read once, line by line, by `ner.bulk_input.read_corpus`: the bad lines go to the errors
file at once, one JSON object per line (`{"line": 7, "error": "not valid JSON (...)"}`), and the good
ones into Arrow blocks of `BulkOptions.block_lines` lines in Ray's object store (which spills to disk
when full). Ray Data hands batches of `BulkOptions.batch_size` lines to `BulkOptions.workers` actors
(`ServingTagger`), each holding the serving SavedModel (`ner.serving`). An actor splits each text into
sentences and words as `ner predict` does (`ner.text`), runs the signature on the batch's sentences,
`BulkOptions.chunk_size` at a time in order of length (as `predict` sorts its rows), and writes one JSON
object per line: `{"line": n, "text": ..., "entities": [...], "tokens": [...]}`, the record of
`ner predict --format jsonl` (`TaggedText.to_rounded_dict(with_tokens=True)`) keyed by the line's number.
The output keeps the input's order (Ray Data's `preserve_order`), and the driver checks that it receives
every good line exactly once, in increasing line order, before it renames the output into place: together
the output and the errors file hold each input line exactly once.

Labels, word and entity confidences are those of `ner predict` without MC dropout (the serving graph
computes them, the entity's as `span_scores`: a CRF model's span marginal; `tests/test_serving.py`);
`review` is always false.

Where Ray runs: with `RAY_ADDRESS` set, on that cluster (`ray.init()` connects to it); otherwise on a
local Ray instance started for the call with a CPU per actor (`threads` CPUs with `--threads`), plus one
for Ray Data's own tasks, and stopped after. Workers import this package from the directory the driver
imported it from, so a cluster's nodes need the package installed or that directory shared, and the
SavedModel's directory must be readable by every node.
"""
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa
import ray
import ray.data

from ner.bulk_input import BadLine, CorpusLine
from ner.tagging import LabelMap
from ner.utils import PathLike, atomic_path

RAY_EXTRA = "bulk"  # setup.py's extra that installs Ray Data


@dataclass(frozen=True)
class BulkOptions:
    """How a corpus is cut up and spread over Ray.

    workers: actors running the SavedModel.
    threads: TensorFlow threads per actor (within and between ops), and the Ray CPUs it reserves; 0 leaves
      TensorFlow its default (every core of the node) and reserves one CPU.
    batch_size: lines per actor call; the actor sorts their sentences by length and runs the signature on
      `chunk_size` of them at a time, so a larger batch means rows of closer lengths and less padding.
    chunk_size: sentences per signature call.
    block_lines: good lines per Arrow block (the unit Ray Data spreads over the actors).
    """

    workers: int = 1
    threads: int = 0
    batch_size: int = 1024
    chunk_size: int = 64
    block_lines: int = 4096

    def __post_init__(self):
        for name in ("workers", "batch_size", "chunk_size", "block_lines"):
            if getattr(self, name) < 1:
                raise ValueError(f"BulkOptions.{name} must be a positive integer, got {getattr(self, name)}")
        if self.threads < 0:
            raise ValueError(f"BulkOptions.threads must be 0 (TensorFlow's default) or more, got {self.threads}")

    @property
    def worker_cpus(self) -> int:
        """The Ray CPUs each actor reserves."""
        return max(1, self.threads)


def bulk_options(workers: int, batch_size: Optional[int] = None, threads: Optional[int] = None) -> BulkOptions:
    """The options of `ner tag-corpus --workers N [--batch-size N] [--threads N]`: the defaults where None."""
    given = {"batch_size": batch_size, "threads": threads}
    return BulkOptions(workers=workers, **{name: value for name, value in given.items() if value is not None})


@dataclass(frozen=True)
class BulkSummary:
    """What `tag_corpus` did: input lines read, lines tagged, and the bad lines (number and reason)."""

    lines: int
    tagged: int
    bad: Tuple[BadLine, ...]


class ServingTagger:
    """A Ray Data actor: batches of corpus lines (`line` int64 [B], `text` str [B]) to their output records
    (`line` int64 [B], `record` str [B], one JSON object each), through the serving SavedModel.

    Args:
      export_dir: a serving SavedModel written by `ner.serving.export_serving`.
      label_map: the run's labels (the signature's tags are labels in its scheme).
      chunk_size: sentences per signature call, taken in order of length.
      threads: TensorFlow threads within and between ops; 0 keeps TensorFlow's default. Set only in a
        process that has not run TensorFlow yet (a new actor).
    """

    def __init__(self, export_dir: str, label_map: LabelMap, chunk_size: int = BulkOptions.chunk_size,
                 threads: int = BulkOptions.threads):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer's ops)

        from ner.serving import SIGNATURE

        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        self.tf = tf
        self.serve = tf.saved_model.load(export_dir).signatures[SIGNATURE]
        self.label_map = label_map
        self.chunk_size = chunk_size

    def serve_by_length(self, sentences: List[Sequence[str]]) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Each sentence's (tags [W] bytes, scores [W] float32, span_scores [W] float32), in input order, from
        signature calls on `chunk_size` sentences at a time, shortest first (rows of close lengths pad little).

        Raises RuntimeError if the signature splits a sentence into other words than `sentences` holds.
        """
        order = np.argsort([len(words) for words in sentences], kind="stable")
        results: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = [None] * len(sentences)
        for start in range(0, len(order), self.chunk_size):
            chunk = order[start:start + self.chunk_size]
            out = self.serve(sentences=self.tf.constant([" ".join(sentences[i]) for i in chunk]))
            num_words = out["num_words"].numpy()  # [S]
            if num_words.tolist() != [len(sentences[i]) for i in chunk]:
                raise RuntimeError("the serving signature split a sentence into other words than ner.text")
            tags, scores = out["tags"].numpy(), out["scores"].numpy()  # [S, W] bytes, float32
            span_scores = out["span_scores"].numpy()  # [S, W] float32: each word's entity confidence
            for k, i in enumerate(chunk):
                results[i] = tags[k, :num_words[k]], scores[k, :num_words[k]], span_scores[k, :num_words[k]]
        return results

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        from ner.api import tag_text
        from ner.text import tokenize

        texts = [str(text) for text in batch["text"]]
        documents = [tokenize(text) for text in texts]
        served = self.serve_by_length([[word.text for word in sentence] for document in documents
                                       for sentence in document])
        records, row = [], 0
        for line, text, document in zip(batch["line"], texts, documents):
            rows = served[row:row + len(document)]
            row += len(document)
            labels = [[tag.decode("utf-8") for tag in tags] for tags, _, _ in rows]
            tagged = tag_text(text, document, labels, [scores for _, scores, _ in rows], self.label_map,
                              span_confidence=lambda index, start, *_: float(rows[index][2][start]))
            records.append(json.dumps({"line": int(line), **tagged.to_rounded_dict(with_tokens=True)},
                                      ensure_ascii=False))
        return {"line": np.asarray(batch["line"], dtype=np.int64), "record": np.asarray(records, dtype=object)}


def tag_corpus(export_dir: PathLike, label_map: LabelMap, lines: Iterable[Union[CorpusLine, BadLine]],
               output: PathLike, errors: PathLike, options: BulkOptions = BulkOptions()) -> BulkSummary:
    """Tags the good `lines` (from `ner.bulk_input.read_corpus`) on Ray Data into `output` and writes the
    bad ones to `errors` (module docstring); both files are written atomically, `errors` even when empty.

    Args:
      export_dir: the run's serving SavedModel (`ner.serving.export_serving`).
      label_map: the run's labels.

    Raises RuntimeError if Ray returns other lines than it was given (never expected).
    """
    bad: List[BadLine] = []
    with atomic_path(errors) as errors_tmp, open(errors_tmp, "w", encoding="utf-8") as errors_file:
        blocks, good, read = _split_lines(lines, options.block_lines, bad, errors_file)
    with atomic_path(output) as output_tmp, open(output_tmp, "w", encoding="utf-8") as output_file:
        tagged = _write_records(_tagged_records(blocks, str(export_dir), label_map, options), good, output_file)
    return BulkSummary(lines=read, tagged=tagged, bad=tuple(bad))


def _split_lines(lines: Iterable[Union[CorpusLine, BadLine]], block_lines: int, bad: List[BadLine],
                 errors_file) -> Tuple[List[pa.Table], int, int]:
    """The good lines as Arrow blocks (`line` int64, `text` string) of `block_lines` rows, in line order;
    the bad ones go to `errors_file` and `bad`. Also returns how many lines were good and how many read."""
    blocks: List[pa.Table] = []
    numbers: List[int] = []
    texts: List[str] = []
    read = good = 0

    def flush():
        if numbers:
            blocks.append(pa.table({"line": pa.array(numbers, pa.int64()), "text": pa.array(texts, pa.string())}))
            numbers.clear()
            texts.clear()

    for item in lines:
        read += 1
        if isinstance(item, BadLine):
            bad.append(item)
            errors_file.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
            continue
        good += 1
        numbers.append(item.line)
        texts.append(item.text)
        if len(numbers) == block_lines:
            flush()
    flush()
    return blocks, good, read


def _tagged_records(blocks: List[pa.Table], export_dir: str, label_map: LabelMap,
                    options: BulkOptions) -> Iterator[Tuple[int, str]]:
    """(line, JSON record) of every line in the blocks, in line order, tagged by `ServingTagger` actors."""
    if not blocks:
        return
    started = not ray.is_initialized()
    if started:
        _start_ray(options.workers * options.worker_cpus)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        dataset = ray.data.from_arrow(blocks).map_batches(
            ServingTagger, fn_constructor_args=(export_dir, label_map, options.chunk_size, options.threads),
            batch_size=options.batch_size, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=options.workers), num_cpus=options.worker_cpus)
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            yield from zip(batch["line"].tolist(), batch["record"].tolist())
    finally:
        if started:
            ray.shutdown()


def _start_ray(worker_cpus: int) -> None:
    """Connects to the cluster at `RAY_ADDRESS`, or starts a local instance with `worker_cpus + 1` CPUs (the
    actors' and one for Ray Data's own tasks); either way workers import this package from where the driver
    did."""
    package_parent = str(Path(__file__).resolve().parents[1])
    pythonpath = os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))
    runtime_env = {"env_vars": {"PYTHONPATH": pythonpath}}
    if os.environ.get("RAY_ADDRESS"):
        ray.init(runtime_env=runtime_env, log_to_driver=False)
    else:
        ray.init(num_cpus=worker_cpus + 1, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)


def _write_records(records: Iterable[Tuple[int, str]], expected: int, output_file) -> int:
    """Writes each record on a line; checks they come in increasing line order, `expected` of them."""
    count, last = 0, 0
    for line, record in records:
        if line <= last:
            raise RuntimeError(f"Ray returned line {line} after line {last}; expected each line once, in order")
        output_file.write(record + "\n")
        count, last = count + 1, line
    if count != expected:
        raise RuntimeError(f"Ray returned {count} of {expected} good lines")
    return count
