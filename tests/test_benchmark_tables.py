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


def test_learning_curve_tables_average_over_seeds(tmp_path):
    from examples.common import read_records
    from examples.learning_curve import write_tables as write_curve

    def run(method, labelled, seed, f1):
        return {"method": method, "labelled": labelled, "seed": seed, "accuracy": 0.9, "accuracy_without_o": 0.5,
                "mean_f1": 0.6, "entity_f1": f1, "seconds": 1.0, "commit": "abc"}

    rows = [run("bert_crf", 256, 1, 0.60), run("bert_crf", 256, 2, 0.64), run("feature_crf", 256, 1, 0.5),
            run("bert_crf", 2560, 1, 0.80)]
    markdown = write_curve(tmp_path, rows, "cmd")
    # 0.60 and 0.64: mean 0.62, sample std 0.0283; one seed: std 0.
    assert "| 256 | bert_crf (supervised) | 2 | 90.0000 ± 0.0000 | 50.0000 ± 0.0000 | 0.6000 ± 0.0000 | 0.6200 ± 0.0283 |" in markdown
    assert "| 256 | reference: feature CRF (CRFsuite) | 1 |" in markdown and "| 2,560 | bert_crf (supervised) | 1 |" in markdown
    assert "| 256 | 0.5000 ± 0.0000 | 0.6200 ± 0.0283 |" in markdown and "| 2,560 | — | 0.8000 ± 0.0000 |" in markdown
    assert (tmp_path / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_records(tmp_path / "learning_curve" / "runs.csv") == rows


def test_learning_curve_min_steps_raises_epochs_and_stage_overrides_come_last(monkeypatch):
    """256 labelled sentences in batches of 32 are 8 steps an epoch: 1,600 steps are 200 epochs (above
    bert_crf.yaml's 20), self-training gets 200 · 8 pairs, and a `--stage-set` pairs value wins over them."""
    from types import SimpleNamespace

    import examples.learning_curve as curve

    calls = []
    monkeypatch.setattr(curve, "train_and_evaluate",
                        lambda config, overrides: (calls.append(overrides), (SimpleNamespace(report="r"), 1.0))[1])
    assert curve.run_method("bert_crf_self_training", 256, 2, [], min_steps=1600,
                            stage_extra=["semi_supervised.pairs=800"]) == ("r", 1.0)
    overrides = calls[0]
    assert overrides[0] == "run_name=lc_bert_crf_self_training_n256_seed2_min1600"
    assert "training.epochs=200" in overrides
    assert "semi_supervised.init_run=lc_bert_crf_n256_seed2_min1600" in overrides
    assert overrides[-2:] == ["semi_supervised.pairs=1600", "semi_supervised.pairs=800"]
    assert curve.run_name("bert_crf", 512, 1) == "lc_bert_crf_n512_seed1"


def test_uncertainty_summary_averages_in_domain_metrics_once_and_names_ood_auroc_by_set(tmp_path):
    from examples.uncertainty_seeds import parse_pairs, read_study, summary_rows
    from ner.reporting import write_csv

    write_csv(tmp_path / "uncertainty.csv", [{"metric": "ECE (15 bins), softmax", "value": 0.0125}])
    assert read_study(tmp_path / "uncertainty.csv") == {"ECE (15 bins), softmax": 0.0125}

    def study(ece, auroc, n_ood):
        return {"ECE (15 bins), softmax": ece, f"OOD AUROC, smp_mean (GMB test vs {n_ood} OOD sentences)": auroc}

    studies = {"s1": {"wnut": study(0.02, 0.70, 1287), "conll": study(0.02, 0.60, 3453)},
               "s2": {"wnut": study(0.04, 0.80, 1287), "conll": study(0.04, 0.64, 3453)}}
    rows = {row["metric"]: row for row in summary_rows(studies, ["wnut", "conll"])}
    assert set(rows) == {"ECE (15 bins), softmax", "OOD AUROC vs wnut, smp_mean", "OOD AUROC vs conll, smp_mean"}
    ece = rows["ECE (15 bins), softmax"]  # from the first set only: 0.02 and 0.04
    assert (ece["n"], round(ece["mean"], 6), round(ece["std"], 6)) == (2, 0.03, 0.014142)
    assert round(rows["OOD AUROC vs conll, smp_mean"]["mean"], 6) == 0.62
    assert parse_pairs(["a=b=c"], "--ood") == {"a": "b=c"}
    with pytest.raises(SystemExit, match="--ood 'wnut': expected NAME=VALUE"):
        parse_pairs(["wnut"], "--ood")
