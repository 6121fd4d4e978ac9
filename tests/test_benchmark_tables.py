"""The tagger benchmark's tables: rows of different corpora (entity types) share one CSV and Markdown file."""
import csv

from benchmarks.benchmark_taggers import epochs_run, parse_epochs, write_tables
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


def test_epochs_column_names_the_kept_epoch_under_early_stopping():
    from ner.config import TrainingConfig

    assert epochs_run([1.0] * 7, None, TrainingConfig(epochs=10)) == "7"
    assert epochs_run([1.0] * 7, 4, TrainingConfig(epochs=30, early_stopping_patience=3)) == "7 of 30, best 4"


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
    from examples.common import parse_pairs
    from examples.uncertainty_seeds import read_study, summary_rows
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
    with pytest.raises(SystemExit, match="--ood 'a' is given twice"):
        parse_pairs(["a=b", "a=c"], "--ood")


# ----------------------------------------------------------------------------------------------------
# reproduce_seed001: resumable, --models, fake runs (nothing is trained)

LABELS = ["O", "geo", "per"]


def fake_report(name, seed):
    """A report of model `name` on `seed`: mean F1 0.5 + 0.01 · the model's place in `MODELS` (BERT NER
    0.52), entity F1 0.60 (seed 1) or 0.64 (seed 2), per-class F1 of "per" 0.25 · seed."""
    from types import SimpleNamespace

    import numpy as np

    from examples.reproduce_seed001 import MODELS

    summary = {"accuracy": 0.9, "accuracy_without_o": 0.5, "mean_f1": 0.5 + list(MODELS).index(name) / 100,
               "entity_f1": {1: 0.60, 2: 0.64}[seed]}
    token = SimpleNamespace(labels=LABELS, f1=np.array([0.9, 0.5, 0.25 * seed]))
    return SimpleNamespace(token=token, summary_row=lambda: dict(summary),
                           true_distribution=np.array([0.8, 0.1, 0.1]), pred_distribution=np.array([0.7, 0.2, 0.1]))


@pytest.fixture
def reproduce(monkeypatch, tmp_path):
    """`examples.reproduce_seed001.main` with fake training, evaluation and feature CRF writing to `tmp_path`;
    `calls` lists what ran: (kind, model, seed), kind "train", "evaluate", "feature_crf" or "plots"."""
    import re
    from types import SimpleNamespace

    import ner.model_evaluator
    import ner.reporting
    import examples.reproduce_seed001 as script
    from ner.errors import NerError

    calls, state = [], {"commit": "aaa", "trained": set(), "fail": None}

    def model_seed(overrides):
        name, seed = re.fullmatch(r"run_name=(\w+?)_seed(\d+)", overrides[0]).groups()
        return name, int(seed)

    def train(config_file, overrides):
        name, seed = model_seed(overrides)
        if (name, seed) == state["fail"]:
            raise NerError(f"{name} failed")  # as a killed session: the runs before it are recorded
        calls.append(("train", name, seed))
        return SimpleNamespace(report=fake_report(name, seed), latent="latent", latent_true=None, latent_pred=None,
                               labels=LABELS), 10.0

    def evaluate(config_file, overrides):
        name, seed = model_seed(overrides)
        calls.append(("evaluate", name, seed))
        return SimpleNamespace(report=fake_report(name, seed), latent="latent", latent_true=None, latent_pred=None,
                               labels=LABELS), float("nan")

    def feature_crf(seed, overrides):
        calls.append(("feature_crf", "feature_crf", seed))
        return fake_report("feature_crf", seed), 1.0

    monkeypatch.setattr(script, "train_and_evaluate", train)
    monkeypatch.setattr(script, "evaluate_trained", evaluate)
    monkeypatch.setattr(script, "trained_with",
                        lambda config_file, overrides: model_seed(overrides) in state["trained"])
    monkeypatch.setattr(script, "feature_crf_report", feature_crf)
    monkeypatch.setattr(script, "git_commit", lambda: state["commit"])
    monkeypatch.setattr(ner.model_evaluator, "latent_pca", lambda latent: latent)
    monkeypatch.setattr(ner.reporting, "write_latent_plots",
                        lambda directory, *args: calls.append(("plots", directory.name, int(args[-1][-2]))))

    def main(*argv):
        calls.clear()
        script.main(["--output", str(tmp_path), *argv])
        return list(calls)

    return SimpleNamespace(main=main, state=state, output=tmp_path)


def test_reproduce_records_every_run_and_a_second_invocation_runs_only_the_missing_pairs(reproduce, capsys):
    from examples.common import read_records

    assert reproduce.main("--seeds", "1", "--models", "bert_data_dist_kl", "feature_crf", "bert_ner") == [
        ("feature_crf", "feature_crf", 1), ("train", "bert_ner", 1), ("plots", "bert_ner", 1),
        ("train", "bert_data_dist_kl", 1), ("plots", "bert_data_dist_kl", 1)]  # in the models' order
    markdown = (reproduce.output / "reproduction.md").read_text(encoding="utf-8")
    assert [line.split(" | ")[0] for line in markdown.splitlines() if line.startswith("| ") and " | 1 | " in line] == [
        "| reference: feature CRF (CRFsuite, hand-written word features)", "| BERT NER", "| + data-distribution KL"]

    reproduce.state["commit"] = "bbb"
    calls = reproduce.main("--seeds", "1", "2")
    assert [call for call in calls if call[2] == 1] == [
        ("train", "ner_baseline", 1), ("train", "bert_confidence_kl", 1), ("plots", "bert_confidence_kl", 1),
        ("train", "bert_both_kl", 1), ("plots", "bert_both_kl", 1), ("train", "bert_ce_control", 1),
        ("train", "bert_crf", 1), ("train", "bert_crf_finetune", 1), ("train", "bert_crf_lpft", 1),
        ("train", "bert_crf_self_training", 1),
        ("train", "bert_crf_self_training_control", 1)]
    assert [call for call in calls if call[2] == 2] == [("feature_crf", "feature_crf", 2)] + [
        ("train", name, 2) for name in ("ner_baseline", "bert_ner", "bert_data_dist_kl", "bert_confidence_kl",
                                        "bert_both_kl", "bert_ce_control", "bert_crf", "bert_crf_finetune",
                                        "bert_crf_lpft", "bert_crf_self_training",
                                        "bert_crf_self_training_control")]  # plots of seed 1 only

    markdown = (reproduce.output / "reproduction.md").read_text(encoding="utf-8")
    assert capsys.readouterr().out.endswith(markdown + "\n")  # printed at the end
    assert (f"(last invocation: `python -m examples.reproduce_seed001 --output {reproduce.output} --seeds 1 2`; "
            "commits aaa, bbb, per run in `reproduction/runs.csv`; seeds 1, 2;") in markdown
    # entity F1 0.60 and 0.64: mean 0.62, sample std 0.0283
    assert ("| BERT NER | 2 | 90.0000 ± 0.0000 | 50.0000 ± 0.0000 | 0.5200 ± 0.0000 | 0.6200 ± 0.0283 | "
            "95.9 / 78.41 / 0.6099 |") in markdown
    assert ("| control: both-KL schedule, KL weight 0 | 2 | 90.0000 ± 0.0000 | 50.0000 ± 0.0000 | 0.5600 ± 0.0000 | "
            "0.6200 ± 0.0283 | — |") in markdown
    assert "| model | O | geo | per |" in markdown and "| bert_crf | 0.900 | 0.500 | 0.375 |" in markdown

    runs = read_records(reproduce.output / "reproduction" / "runs.csv")
    assert len(runs) == 24 and len({(row["model"], row["seed"]) for row in runs}) == 24
    assert runs[0] == {"model": "feature_crf", "seed": 1, "accuracy": 0.9, "accuracy_without_o": 0.5, "mean_f1": 0.5,
                       "entity_f1": 0.6, "seconds": 1.0, "commit": "aaa"}
    assert [row["commit"] for row in runs].count("bbb") == 21
    per_class = read_records(reproduce.output / "reproduction" / "per_class_f1.csv")
    assert [(row["model"], row["seed"]) for row in per_class] == [(row["model"], row["seed"]) for row in runs]
    distributions = read_records(reproduce.output / "reproduction" / "label_distributions.csv")
    assert len(distributions) == 24 * 3 and distributions[1] == {
        "model": "feature_crf", "seed": 1, "label": "geo", "true_fraction": 0.1, "predicted_fraction": 0.2}
    summary = read_records(reproduce.output / "reproduction.csv")
    assert [row["model"] for row in summary][:2] == ["feature_crf", "ner_baseline"] and summary[0]["seeds"] == 2.0

    assert reproduce.main("--seeds", "1", "2") == []  # everything recorded: nothing runs
    assert len(read_records(reproduce.output / "reproduction" / "runs.csv")) == 24


def test_reproduce_keeps_the_hand_written_notes_under_the_rewritten_table(reproduce):
    notes = reproduce.output / "reproduction" / "notes.md"
    notes.parent.mkdir(parents=True)
    notes.write_text("## Reading the table\n\n- by hand\n", encoding="utf-8")
    reproduce.main("--seeds", "1", "--models", "feature_crf")
    markdown = (reproduce.output / "reproduction.md").read_text(encoding="utf-8")
    assert markdown.endswith("`reproduction/<model>/`.\n\n## Reading the table\n\n- by hand\n")


def test_reproduce_resumes_after_a_failed_run_and_drops_its_partial_rows(reproduce):
    from examples.common import read_records

    reproduce.state["fail"] = ("bert_data_dist_kl", 1)
    with pytest.raises(SystemExit):
        reproduce.main("--seeds", "1", "--models", "ner_baseline", "bert_ner", "bert_data_dist_kl")
    runs = read_records(reproduce.output / "reproduction" / "runs.csv")
    assert [row["model"] for row in runs] == ["ner_baseline", "bert_ner"]
    assert "| BERT NER | 1 |" in (reproduce.output / "reproduction.md").read_text(encoding="utf-8")
    # As if the session ended between a run's per-class row and its runs.csv row: the stray row is dropped.
    with open(reproduce.output / "reproduction" / "per_class_f1.csv", "a", encoding="utf-8") as handle:
        handle.write("bert_data_dist_kl,1,0.1,0.1,0.1\n")

    reproduce.state["fail"] = None
    assert reproduce.main("--seeds", "1", "--models", "ner_baseline", "bert_ner", "bert_data_dist_kl") == [
        ("train", "bert_data_dist_kl", 1), ("plots", "bert_data_dist_kl", 1)]
    per_class = read_records(reproduce.output / "reproduction" / "per_class_f1.csv")
    assert [(row["model"], row["geo"]) for row in per_class] == [
        ("ner_baseline", 0.5), ("bert_ner", 0.5), ("bert_data_dist_kl", 0.5)]


def test_reproduce_evaluates_trained_runs_unless_fresh_or_their_init_run_was_retrained(reproduce):
    import math

    from examples.common import read_records

    models = ("--models", "bert_ner", "bert_data_dist_kl", "bert_confidence_kl")
    reproduce.state["trained"] = {("bert_ner", 1), ("bert_data_dist_kl", 1), ("bert_confidence_kl", 1),
                                  ("bert_data_dist_kl", 2)}
    calls = reproduce.main("--seeds", "1", "2", *models)
    assert [call for call in calls if call[0] != "plots"] == [
        ("evaluate", "bert_ner", 1), ("evaluate", "bert_data_dist_kl", 1), ("evaluate", "bert_confidence_kl", 1),
        ("train", "bert_ner", 2), ("train", "bert_data_dist_kl", 2),  # its bert_ner run is new
        ("train", "bert_confidence_kl", 2)]
    runs = read_records(reproduce.output / "reproduction" / "runs.csv")
    assert [row["seconds"] for row in runs][3:] == [10.0, 10.0, 10.0]
    assert all(math.isnan(row["seconds"]) for row in runs[:3])  # evaluated, not trained
    assert [call for call in reproduce.main("--seeds", "1", "--fresh", *models) if call[0] != "plots"] == [
        ("train", "bert_ner", 1), ("train", "bert_data_dist_kl", 1), ("train", "bert_confidence_kl", 1)]
    assert len(read_records(reproduce.output / "reproduction" / "runs.csv")) == 3  # --fresh: seed 2's rows gone


def test_reproduce_reads_rows_recorded_before_the_commit_column_and_names_the_protocols_files(reproduce):
    from examples.common import read_records
    from ner.reporting import write_csv

    old = {"model": "bert_ner", "seed": 1, "accuracy": 0.9, "accuracy_without_o": 0.5, "mean_f1": 0.6,
           "entity_f1": 0.6, "seconds": 5.0}
    directory = reproduce.output / "reproduction_seed001_protocol"
    write_csv(directory / "runs.csv", [old])
    write_csv(directory / "per_class_f1.csv", [{"model": "bert_ner", "seed": 1, "O": 0.9, "geo": 0.5, "per": 0.25}])
    write_csv(directory / "label_distributions.csv", [{"model": "bert_ner", "seed": 1, "label": "O",
                                                       "true_fraction": 0.8, "predicted_fraction": 0.7}])
    assert reproduce.main("--protocol", "seed001", "--seeds", "1", "--models", "bert_ner", "feature_crf") == [
        ("feature_crf", "feature_crf", 1)]
    assert read_records(directory / "runs.csv")[0] == {**old, "commit": ""}
    markdown = (reproduce.output / "reproduction_seed001_protocol.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Seed 001's table under its own, leaky protocol")
    assert "commits aaa, not recorded, per run in `reproduction_seed001_protocol/runs.csv`; seeds 1;" in markdown
    assert not (reproduce.output / "reproduction.md").exists()


def test_a_run_counts_as_trained_with_its_weights_and_the_same_config(tmp_path):
    from examples.common import trained_with
    from ner.config import load_config, save_config

    overrides = ["run_name=bert_ner_seed3", f"paths.saved_models_dir={tmp_path}", "split.seed=3"]
    run_dir = tmp_path / "bert_ner_seed3"
    save_config(load_config("config/bert_ner.yaml", overrides), run_dir / "config.yaml")
    assert not trained_with("config/bert_ner.yaml", overrides)  # no weights: its training did not finish
    (run_dir / "weights").mkdir()
    assert trained_with("config/bert_ner.yaml", overrides)
    assert not trained_with("config/bert_ner.yaml", [*overrides, "model.head.dropout_rate=0.3"])
    (run_dir / "config.yaml").write_text("training: {epochs: many}\n")
    assert not trained_with("config/bert_ner.yaml", overrides)


def test_seeds_in_several_files_are_summarised_by_model_and_epochs(tmp_path):
    """`benchmarks.summarise_seeds`: one file per seed; mean and sample std by hand."""
    from benchmarks.summarise_seeds import main, summarise
    from ner.errors import NerError

    files = []
    for seed, (crf, bilstm) in enumerate([(0.86, 0.88), (0.87, 0.89), (0.87, 0.87)], start=1):
        rows = [{**row("conll2003", "bert_crf", ["LOC"], 5.0), "test_entity_f1": crf, "commit": "c1"},
                {**row("conll2003", "bilstm", ["LOC"], 5.0), "test_entity_f1": bilstm, "epoch_seconds": 30.0 + seed,
                 "commit": f"c{seed % 2}"},
                row("gmb", "bert_crf", ["geo"], 5.0)]
        write_tables(tmp_path / f"seed{seed}", rows)
        files.append(tmp_path / f"seed{seed}" / "benchmarks.csv")
    table = summarise("conll2003", files).splitlines()
    # bert_crf: mean 0.8667, sample std sqrt(((-.0067)^2 + 2 (.0033)^2) / 2) = 0.0058; bilstm: 0.88, 0.01
    assert table[2] == "| bert_crf | 1 | 3 | 0.8667 ± 0.0058 | 0.5500 ± 0.0000 | 0.8600, 0.8700, 0.8700 | 12 | c1 |"
    assert table[3] == "| bilstm | 1 | 3 | 0.8800 ± 0.0100 | 0.5500 ± 0.0000 | 0.8800, 0.8900, 0.8700 | 32 | c0, c1 |"
    assert len(table) == 4
    main(["--suite", "conll2003", *map(str, files), "--output", str(tmp_path / "out.md")])
    assert (tmp_path / "out.md").read_text(encoding="utf-8").splitlines() == table
    with pytest.raises(NerError, match="no row of suite 'wnut'"):
        summarise("wnut", files)
    (tmp_path / "bad.csv").write_text("suite,model\nconll2003,x\n", encoding="utf-8")
    with pytest.raises(NerError, match=r"bad.csv, line 2: no shown_as, epochs"):
        summarise("conll2003", [tmp_path / "bad.csv"])
    with pytest.raises(NerError, match=r"missing.csv: cannot be read"):
        summarise("conll2003", [tmp_path / "missing.csv"])


def test_compare_taggers_gives_each_row_its_overrides(monkeypatch):
    """A feature-CRF row reads its own overrides (its templates), not `--set`; a model row reads both."""
    from examples import compare_taggers

    calls = []
    monkeypatch.setattr(compare_taggers, "feature_crf_report",
                        lambda seed, overrides: calls.append(("crf", seed, list(overrides))) or ("report", 1.0))

    class Evaluation:
        report = "report"

    monkeypatch.setattr(compare_taggers, "train_and_evaluate",
                        lambda config, overrides: calls.append((config, overrides)) or (Evaluation(), 2.0))
    for name in ("feature_crf", "feature_crf_extended", "bert_crf_extended"):
        compare_taggers.run_model(name, 2, ["model.casing_dim=4"])
    assert calls == [("crf", 2, []), ("crf", 2, ["model.lexical_templates=extended"]),
                     ("config/bert_crf.yaml", ["run_name=bert_crf_extended_seed2", "model.word_pooling=first",
                                               "model.lexical_templates=extended", "split.seed=2", "training.seed=2",
                                               "model.casing_dim=4"])]


@pytest.mark.parametrize("name, word_pooling, templates", [
    ("bert_crf", "first", "crf"), ("bert_crf_extended", "first", "extended"),
    ("bert_crf_mean_pooling", "mean", "crf"), ("bert_crf_mean_pooling_extended", "mean", "extended"),
    ("bert_crf_bilstm", "first", "crf")])
def test_compare_taggers_rows_keep_the_settings_they_were_measured_with(name, word_pooling, templates):
    """The rows recorded in results/taggers/ before bert_crf.yaml took mean pooling and the extended
    templates still resolve to what they measured; the last of the ladder is the shipped config."""
    from examples import compare_taggers
    from ner.config import load_config

    config_file, overrides, _, _ = compare_taggers.MODELS[name]
    model = load_config(config_file, overrides, environ={}).model
    assert (model.word_pooling, model.lexical_templates) == (word_pooling, templates)
