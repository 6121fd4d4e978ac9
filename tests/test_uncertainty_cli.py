"""`ner uncertainty` (and `examples.example_uncertainty`, its thin wrapper) on tiny trained runs."""
import contextlib
import csv
import dataclasses
import io

import pytest

import ner  # noqa: F401
from ner.experiment import train
from tests.helpers import PNG_MAGIC, give_run_random_scores, tiny_config
from tests.test_cli import run_cli

FIGURES = ("reliability.png", "roc_token_errors.png", "roc_span_errors.png", "accuracy_rejection.png",
           "roc_ood.png", "ood_histograms.png", "reliability_entities.png", "roc_entity_errors.png")
# Out-of-domain sentences (tags are ignored): two with words the tiny vocabulary splits into letters.
OOD_CONLL = "lol\tO\nthat\tO\nvideo\tB-creative-work\n\nomg\tO\nzzz\tO\nrt\tO\n@user\tO\n\nthe\tO\nbank\tO\n"


@pytest.fixture(autouse=True)
def no_environment_paths(monkeypatch):
    """Environment variables would override the `--set data.ood_path=...` of these tests."""
    for variable in ("NER_OOD_PATH", "NER_CONLL_DIR", "NER_GMB_PATH"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture(scope="module")
def ood_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ood") / "ood.conll"
    path.write_text(OOD_CONLL, encoding="utf-8")
    return path


def _trained(tmp_path_factory, encoder_handle, model_type, epochs, seed=0):
    """A tiny run of `model_type` with seeded random output weights (varied predictions): (config, run dir).
    Runs of every `seed` (`training.seed` and the output weights) share one split."""
    config = tiny_config(tmp_path_factory.mktemp(model_type), encoder_handle, model_type, "bio", epochs=epochs)
    config = dataclasses.replace(config, training=dataclasses.replace(config.training, seed=seed))
    run_dir = train(config, verbose=False)
    give_run_random_scores(run_dir, seed=seed)
    return config, run_dir


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, tiny_encoder_handle):
    return _trained(tmp_path_factory, tiny_encoder_handle, "ner_baseline", epochs=2)


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["metric"]: float(row["value"]) for row in csv.DictReader(handle)}


def test_uncertainty_verb_writes_the_study(baseline, ood_file, tmp_path):
    from ner.evaluation import evaluate

    config, run_dir = baseline
    output = tmp_path / "study"
    argv = ["uncertainty", "--run", str(run_dir), "--set", f"data.ood_path={ood_file}", "--mc-samples", "3",
            "--output", str(output)]
    status, out, err = run_cli(argv)
    assert status == 0, err
    assert {"uncertainty.md", "uncertainty.csv", *FIGURES} <= {p.name for p in output.iterdir()}
    for name in FIGURES:
        assert (output / name).read_bytes().startswith(PNG_MAGIC)
    assert not (config.results_dir().parent / "uncertainty").exists()  # --output replaces the default

    metrics = _read_csv(output / "uncertainty.csv")
    summary = evaluate(str(run_dir), verbose=False).report.summary_row()
    # MC dropout off is the run's own softmax: the accuracy that `ner evaluate` reports.
    assert metrics["token accuracy, MC dropout off"] == pytest.approx(summary["accuracy"])
    assert 0.0 <= metrics["token accuracy, MC dropout on"] <= 1.0
    assert "OOD AUROC, smp (max) (GMB test vs 3 OOD sentences)" in metrics
    assert ("MC prediction seconds on 12 test rows (T = 3, plus one pass for latent vectors and labels, "
            "incl. reading cached features)") in metrics
    # The methods beside MC dropout are rows of the same table.
    assert metrics["temperature T (fitted on the validation words)"] > 0.0
    for metric in ("ECE (15 bins), temperature scaled", "token-error AUROC, mahalanobis (latent)",
                   "OOD AUROC, mahalanobis (mean) (GMB test vs 3 OOD sentences)",
                   "entity ECE (15 bins), mean word probability", "entity-error AUROC, min word probability",
                   "entity F1, mean word probability, temperature scaled, least confident 50% set aside"):
        assert metric in metrics, metric
    assert f"[uncertainty] token accuracy, MC dropout off: {metrics['token accuracy, MC dropout off']:.4f}" in out
    assert f"[uncertainty] written to {output}" in out

    report = (output / "uncertainty.md").read_text(encoding="utf-8")
    assert report.startswith(f"# Uncertainty: {config.run_name}\n")
    assert f"Produced by `ner {' '.join(argv)}`: T = 3 samples, head dropout 0.0 (training rate 0.0)" in report
    assert "| token accuracy, MC dropout off |" in report and "![ood_histograms.png](ood_histograms.png)" in report

    # The example runs the same study, into results/uncertainty/<run name>/.
    from examples.example_uncertainty import main as example_main

    with contextlib.redirect_stdout(io.StringIO()):
        example_main(["--run", str(run_dir), "--set", f"data.ood_path={ood_file}", "--set",
                      "uncertainty.mc_samples=3"])
    default = config.results_dir().parent / "uncertainty" / config.run_name
    assert {p.name for p in default.iterdir()} == {p.name for p in output.iterdir()}
    assert "Produced by `python -m examples.example_uncertainty --run" in (default / "uncertainty.md").read_text()
    example_metrics = _read_csv(default / "uncertainty.csv")
    assert example_metrics.keys() == metrics.keys()
    for metric, value in metrics.items():
        if not metric.startswith("MC prediction seconds"):
            assert example_metrics[metric] == pytest.approx(value, nan_ok=True), metric


def test_uncertainty_verb_runs_a_crf_model(tmp_path_factory, tiny_encoder_handle, ood_file, tmp_path):
    """A CRF model reads `first_piece_mask`, so the out-of-domain batches need it too."""
    _, run_dir = _trained(tmp_path_factory, tiny_encoder_handle, "bert_crf", epochs=1)
    status, _, err = run_cli(["uncertainty", "--run", str(run_dir), "--set", f"data.ood_path={ood_file}",
                              "--mc-samples", "2", "--output", str(tmp_path)])
    assert status == 0, err
    metrics = _read_csv(tmp_path / "uncertainty.csv")
    assert 0.0 <= metrics["token accuracy, MC dropout on"] <= 1.0
    assert "OOD AUROC, entropy (mean) (GMB test vs 3 OOD sentences)" in metrics
    assert "entity ECE (15 bins), span marginal (CRF)" in metrics
    assert "entity precision, span marginal (CRF), least confident 20% set aside" in metrics


def test_uncertainty_verb_averages_a_deep_ensemble(baseline, tmp_path_factory, tiny_encoder_handle, ood_file,
                                                   tmp_path):
    """Two runs of one split, training.seed 0 and 1: the ensemble's rows join the table."""
    _, run_dir = baseline
    _, other = _trained(tmp_path_factory, tiny_encoder_handle, "ner_baseline", epochs=2, seed=1)
    argv = ["uncertainty", "--run", str(run_dir), "--set", f"data.ood_path={ood_file}", "--mc-samples", "2",
            "--ensemble", str(other), "--output", str(tmp_path)]
    status, _, err = run_cli(argv)
    assert status == 0, err
    metrics = _read_csv(tmp_path / "uncertainty.csv")
    for metric in ("token accuracy, ensemble", "ECE (15 bins), ensemble",
                   "token-error AUROC, mutual_information (ensemble)",
                   "OOD AUROC, entropy, ensemble (max) (GMB test vs 3 OOD sentences)"):
        assert metric in metrics, metric
    assert "ensemble of 2 runs (this run first)" in (tmp_path / "uncertainty.md").read_text(encoding="utf-8")


def test_uncertainty_verb_errors_are_one_line_with_status_2(baseline, tmp_path):
    _, run_dir = baseline
    for argv, expected in (
        (["uncertainty", "--run", "no_such_run"], "error: run 'no_such_run' not found"),
        (["uncertainty", "--run", str(run_dir), "--set", f"data.ood_path={tmp_path / 'absent.conll'}",
          "--mc-samples", "2", "--output", str(tmp_path / "out")], "error: CoNLL data file not found: "),
        (["uncertainty", "--run", str(run_dir), "--set", "uncertainty.mc_sample=3"],
         "unknown key 'uncertainty.mc_sample'"),
        (["uncertainty", "--run", str(run_dir), "--ensemble", "no_such_run"], "error: run 'no_such_run' not found"),
    ):
        status, out, err = run_cli(argv)
        last = err.strip().splitlines()[-1]
        assert status == 2 and last.startswith("error: ") and expected in last, (argv, err)
    assert not (tmp_path / "out").exists()
