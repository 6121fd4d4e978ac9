"""The tagger benchmark's tables: rows of different corpora (entity types) share one CSV and Markdown file."""
import csv

from benchmarks.benchmark_taggers import parse_epochs, write_tables
from ner.errors import ConfigError

import pytest


def row(suite, model, types, total):
    return {"suite": suite, "model": model, "shown_as": model, "epochs": 1, "test_entity_f1": 0.5,
            "test_entity_precision": 0.4, "test_entity_recall": 0.6, "validation_entity_f1": 0.55,
            **{f"f1_{name}": 0.25 for name in types}, "epoch_seconds": 12.0, "total_seconds": total,
            "train_seconds": total, "test_sentences": 10, "device": "CPU", "commit": "abc", "command": "cmd",
            "overrides": ""}


def test_rows_with_different_entity_types_and_a_rescored_run(tmp_path):
    write_tables(tmp_path, [row("gmb", "gru", ["geo", "per"], 30.0), row("conll2003", "bert_gru", ["LOC"], "")])
    with open(tmp_path / "benchmarks.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["model"], r["f1_geo"], r["f1_LOC"]) for r in rows] == [("gru", "0.25", ""), ("bert_gru", "", "0.25")]
    markdown = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    assert "| gru | 0.250 | 0.250 |" in markdown and "| bert_gru | 0.250 |" in markdown
    assert "| 12 | 30 | CPU |" in markdown and "| 12 | — | CPU |" in markdown
    write_tables(tmp_path, rows)  # rows read back from the CSV (strings) make the same tables
    assert (tmp_path / "benchmarks.md").read_text(encoding="utf-8") == markdown


def test_bad_epochs_argument_names_it():
    assert parse_epochs(["bert_gru=3"]) == {"bert_gru": 3}
    with pytest.raises(ConfigError, match="--epochs 'bert_gru=0'"):
        parse_epochs(["bert_gru=0"])
