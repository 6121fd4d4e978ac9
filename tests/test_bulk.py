"""`ner tag-corpus`: every corpus line once, in the output (tagged as `Tagger.predict` tags it) or in the
errors file (with its number and reason). The Ray tests are skipped without the `bulk` extra."""
import dataclasses
import importlib.util
import json

import numpy as np
import pytest

import ner
from ner.bulk_input import BadLine, CorpusLine, read_corpus
from ner.experiment import train
from tests.helpers import give_run_random_scores, tiny_config
from tests.test_cli import run_cli

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="needs Ray Data, the bulk extra: pip install -e '.[bulk]'")

TEXTS = ["John Smith said the president in London today.", "The army said today!",
         "The president of London said. John smith in London today.", "the army"]
# Line number (from 1) -> a bad JSONL line and its reason.
BAD_LINES = {3: (b'{"text": "unclosed', "not valid JSON (Unterminated string starting at)"),
             20: (b'{"body": "John Smith"}', "no 'text' field"),
             41: (b'{"text": 7}', "the 'text' field is not a string (got int)"),
             77: (b'["text"]', "not a JSON object (got list)"),
             100: (b'{"text": "  \\t "}', "no words (an empty or blank text)"),
             150: (b"", "not valid JSON (Expecting value)"),
             199: (b'{"text": "caf\xe9"}', "bytes are not valid UTF-8 (invalid continuation byte)")}


def write_corpus(path, lines=200):
    """A JSONL corpus of `lines` lines cycling through `TEXTS`, with `BAD_LINES` in their places; returns
    the good lines' numbers and texts."""
    good, rows = {}, []
    for number in range(1, lines + 1):
        if number in BAD_LINES:
            rows.append(BAD_LINES[number][0])
        else:
            good[number] = TEXTS[number % len(TEXTS)]
            rows.append(json.dumps({"id": f"doc{number}", "text": good[number]}).encode())
    path.write_bytes(b"\r\n".join(rows) + b"\n")  # Windows line ends, a final newline
    return good


@pytest.fixture(scope="module")
def tagger(tmp_path_factory, tiny_encoder_handle):
    """A CRF run with seeded random output scores: varied entities, whose confidence is the span marginal."""
    directory = tmp_path_factory.mktemp("bulk")
    return give_run_random_scores(train(tiny_config(directory, tiny_encoder_handle, "bert_crf", "bio", epochs=1),
                                        verbose=False))


def test_read_corpus_gives_every_line_once_in_order(tmp_path):
    path = tmp_path / "corpus.jsonl"
    good = write_corpus(path)
    items = list(read_corpus(path, "jsonl"))
    assert [item.line for item in items] == list(range(1, 201))
    assert [item for item in items if isinstance(item, BadLine)] == [
        BadLine(number, reason) for number, (_, reason) in BAD_LINES.items()]
    assert [item for item in items if isinstance(item, CorpusLine)] == [
        CorpusLine(number, text) for number, text in good.items()]

    text = tmp_path / "corpus.txt"
    text.write_bytes(b"John said .\n\n  \nthe army\r\nlast line without newline")
    assert list(read_corpus(text, "text")) == [
        CorpusLine(1, "John said ."), BadLine(2, "no words (an empty or blank text)"),
        BadLine(3, "no words (an empty or blank text)"), CorpusLine(4, "the army"),
        CorpusLine(5, "last line without newline")]
    assert list(read_corpus(tmp_path / "corpus.jsonl", "jsonl", text_field="id"))[0] == CorpusLine(1, "doc1")


@needs_ray
def test_tag_corpus_tags_every_good_line_as_predict_does(tmp_path, tagger):
    """Two one-thread actors over four blocks of 50 lines, batches of 16 run 3 sentences at a time in order of
    length: the output is still in line order, and every line's record is predict's."""
    from ner.bulk import BulkOptions, tag_corpus
    from ner.serving import export_serving

    corpus = tmp_path / "corpus.jsonl"
    good = write_corpus(corpus)
    summary = tag_corpus(export_serving(tagger, tmp_path / "export"), tagger.label_map, read_corpus(corpus, "jsonl"),
                         tmp_path / "tagged.jsonl", tmp_path / "errors.jsonl",
                         BulkOptions(workers=2, threads=1, batch_size=16, chunk_size=3, block_lines=50))
    assert (summary.lines, summary.tagged) == (200, 193)
    assert [(bad.line, bad.error) for bad in summary.bad] == [(n, reason) for n, (_, reason) in BAD_LINES.items()]
    errors = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert errors == [{"line": n, "error": reason} for n, (_, reason) in BAD_LINES.items()]

    records = [json.loads(line) for line in (tmp_path / "tagged.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [record["line"] for record in records] == list(good)
    expected = {text: result.to_rounded_dict(with_tokens=True)
                for text, result in zip(TEXTS, tagger.predict(TEXTS))}
    for record in records:
        want = expected[good[record["line"]]]
        assert record["text"] == want["text"]
        assert [(t["text"], t["start"], t["sentence"], t["label"], t["tag"]) for t in record["tokens"]] == \
            [(t["text"], t["start"], t["sentence"], t["label"], t["tag"]) for t in want["tokens"]]
        np.testing.assert_allclose([t["confidence"] for t in record["tokens"]],
                                   [t["confidence"] for t in want["tokens"]], atol=2e-4)
        assert [(e["text"], e["type"], e["start"], e["end"]) for e in record["entities"]] == \
            [(e["text"], e["type"], e["start"], e["end"]) for e in want["entities"]]
        np.testing.assert_allclose([e["confidence"] for e in record["entities"]],
                                   [e["confidence"] for e in want["entities"]], atol=2e-4)
    assert any(record["entities"] for record in records)  # the tiny run finds entities


@needs_ray
def test_the_command_writes_output_and_errors_and_counts_them(tmp_path, tagger):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("John Smith said the president in London today.\n\nThe army said today!\n", encoding="utf-8")
    output = tmp_path / "tagged.jsonl"
    status, out, err = run_cli(["tag-corpus", "--run", str(tagger.config.run_dir()), "--input", str(corpus),
                                "--output", str(output)])
    assert status == 0, err
    assert [json.loads(line)["line"] for line in output.read_text().splitlines()] == [1, 3]
    assert (tmp_path / "tagged.jsonl.errors.jsonl").read_text() == \
        '{"line": 2, "error": "no words (an empty or blank text)"}\n'
    assert f"[tag-corpus] 3 lines: 2 tagged, written to {output}; 1 bad" in err
    assert f"{corpus} line 2: no words (an empty or blank text)" in err


@needs_ray
def test_the_command_tags_with_an_ensemble_as_predict_does(tmp_path, tagger):
    """`ner tag-corpus --ensemble`: the records are the entities `ner.load(run, ensemble=...)` finds, which
    differ from the run's alone."""
    other = train(dataclasses.replace(tagger.config, run_name="other", training=dataclasses.replace(
        tagger.config.training, seed=5)), verbose=False)
    give_run_random_scores(other, seed=3)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(text + "\n" for text in TEXTS), encoding="utf-8")
    output = tmp_path / "tagged.jsonl"
    status, _, err = run_cli(["tag-corpus", "--run", str(tagger.config.run_dir()), "--ensemble", str(other),
                              "--input", str(corpus), "--output", str(output)])
    assert status == 0, err
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    served = [(e["text"], e["type"], e["confidence"]) for record in records for e in record["entities"]]
    pair = [(e.text, e.type, e.confidence) for result in ner.load(str(tagger.config.run_dir()), ensemble=[
        str(other)]).predict(TEXTS) for e in result.entities]
    assert [entity[:2] for entity in served] == [entity[:2] for entity in pair]
    np.testing.assert_allclose([entity[2] for entity in served], [entity[2] for entity in pair], atol=2e-4)
    alone = [(e.text, e.type) for result in tagger.predict(TEXTS) for e in result.entities]
    assert [entity[:2] for entity in served] != alone


@needs_ray
def test_bulk_options_defaults_and_bad_values():
    from ner.bulk import BulkOptions, bulk_options

    assert bulk_options(2) == BulkOptions(workers=2, threads=0, batch_size=1024, chunk_size=64, block_lines=4096)
    assert bulk_options(1, 16).batch_size == 16
    assert (bulk_options(2, None, 3).threads, bulk_options(2, None, 3).worker_cpus, bulk_options(2).worker_cpus) == \
        (3, 3, 1)
    with pytest.raises(ValueError, match=r"BulkOptions.threads must be 0 \(TensorFlow's default\) or more, got -1"):
        BulkOptions(threads=-1)
    with pytest.raises(ValueError, match="BulkOptions.chunk_size must be a positive integer, got 0"):
        BulkOptions(chunk_size=0)


@needs_ray
def test_serving_tagger_holds_tensorflow_to_its_threads(tmp_path, tagger):
    """An actor built with `threads=1` runs TensorFlow on one thread within and between ops (a new process,
    as a Ray actor is)."""
    import subprocess
    import sys

    from ner.serving import export_serving

    export_dir = export_serving(tagger, tmp_path / "export")
    script = ("import tensorflow as tf\n"
              "from ner.bulk import ServingTagger\n"
              f"ServingTagger({str(export_dir)!r}, label_map=None, threads=1)\n"
              "print(tf.config.threading.get_intra_op_parallelism_threads(),"
              " tf.config.threading.get_inter_op_parallelism_threads())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "1"]
