"""Tests for ner.reporting: result files round-trip, Markdown content, PNGs written atomically."""
import csv

import numpy as np
import pytest

from ner import model_evaluator as ev
from ner import reporting
from tests.helpers import PNG_MAGIC


@pytest.fixture
def report() -> ev.EvaluationReport:
    true = [["O", "B-geo", "I-geo", "O"], ["B-per", "I-per", "O"], ["B-geo", "O"]]
    pred = [["O", "B-geo", "I-geo", "O"], ["B-per", "O", "O"], ["B-per", "O"]]
    return ev.build_report(true, pred, ("O", "geo", "per"))


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000


def assert_no_temp_files(directory) -> None:
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_write_report_files_round_trip(tmp_path, report):
    written = reporting.write_report(tmp_path / "run", report, "demo run")
    run_dir = tmp_path / "run"
    names = {p.name for p in written}
    assert names == {
        "metrics.csv", "per_class.csv", "entity_per_type.csv", "confusion.csv", "report.md",
        "confusion_by_true.png", "confusion_by_predicted.png", "label_distribution.png",
    }
    assert written[-1].name == "report.md"

    (summary,) = read_csv(run_dir / "metrics.csv")
    assert summary["run_name"] == "demo run"
    assert int(summary["num_tokens"]) == report.num_tokens == 9
    for key, value in report.summary_row().items():
        assert float(summary[key]) == value  # full precision survives the CSV

    per_class = read_csv(run_dir / "per_class.csv")
    assert [row["label"] for row in per_class] == list(report.token.labels) == ["O", "geo", "per"]
    np.testing.assert_array_equal([float(row["precision"]) for row in per_class], report.token.precision)
    np.testing.assert_array_equal([float(row["recall"]) for row in per_class], report.token.recall)
    np.testing.assert_array_equal([int(row["support"]) for row in per_class], report.token.support)
    np.testing.assert_array_equal([float(row["true_fraction"]) for row in per_class], report.true_distribution)

    confusion = read_csv(run_dir / "confusion.csv")
    assert list(confusion[0]) == ["true_label", "O", "geo", "per"]
    counts = [[int(row[label]) for label in report.token.labels] for row in confusion]
    np.testing.assert_array_equal(counts, report.token.confusion)

    entities = read_csv(run_dir / "entity_per_type.csv")
    assert [row["type"] for row in entities] == ["geo", "per", "micro avg"]
    assert float(entities[-1]["f1"]) == report.entity.f1

    for name in names - {"report.md"} - {n for n in names if n.endswith(".csv")}:
        assert_png(run_dir / name)
    assert_no_temp_files(run_dir)


def test_report_markdown_content(tmp_path, report):
    reporting.write_report(tmp_path, report, "demo", extra_markdown="Notes: seed 1.")
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert text.startswith("# Evaluation: demo")
    for label in report.token.labels:
        assert f"| {label} |" in text
    assert f"{report.token.accuracy:.2%}" in text
    assert "![confusion_by_true.png](confusion_by_true.png)" in text
    assert "latent_pca" not in text  # not written yet
    assert text.rstrip().endswith("Notes: seed 1.")


def test_report_links_latent_plots_when_present(tmp_path, report):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(200, 2))
    ids = rng.integers(0, 3, size=200)
    latent = reporting.write_latent_plots(tmp_path, points, ids, ids[::-1], report.token.labels, "demo")
    for path in latent:
        assert_png(path)
    reporting.write_report(tmp_path, report, "demo")
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "![latent_pca_true.png](latent_pca_true.png)" in text
    assert "![latent_pca_predicted.png](latent_pca_predicted.png)" in text


def test_plots_write_png_atomically(tmp_path):
    labels = ("O", "geo", "per")
    counts = np.array([[5, 1, 0], [0, 2, 1], [0, 0, 0]])
    paths = [
        reporting.plot_confusion_matrix(counts, labels, tmp_path / "counts.png", "counts"),
        reporting.plot_confusion_matrix(counts / 6.0, labels, tmp_path / "frac.png", "fractions"),
        reporting.plot_latent_pca(np.random.default_rng(1).normal(size=(50, 2)), np.arange(50) % 2, labels,
                                  tmp_path / "pca.png", "pca"),
        reporting.plot_label_distribution(np.array([0.7, 0.3, 0.0]), np.array([0.6, 0.3, 0.1]), labels,
                                          tmp_path / "dist.png"),
    ]
    for path in paths:
        assert path.parent == tmp_path
        assert_png(path)
    assert_no_temp_files(tmp_path)


def test_plots_reject_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        reporting.plot_confusion_matrix(np.zeros((2, 3)), ("a", "b"), tmp_path / "x.png", "x")
    with pytest.raises(ValueError, match="points"):
        reporting.plot_latent_pca(np.zeros((4, 3)), np.zeros(4, dtype=int), ("a",), tmp_path / "x.png", "x")
    with pytest.raises(ValueError, match="distributions"):
        reporting.plot_label_distribution(np.zeros(2), np.zeros(3), ("a", "b"), tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_markdown_table_formats_floats_and_escapes_pipes():
    rows = [{"name": "a|b", "value": 0.123456, "count": 3}]
    text = reporting.markdown_table(rows, float_format=".2%")
    assert text.splitlines() == ["| name | value | count |", "|---|---|---|", "| a\\|b | 12.35% | 3 |"]


def test_write_csv_validates_columns(tmp_path):
    with pytest.raises(ValueError, match="row 1"):
        reporting.write_csv(tmp_path / "x.csv", [{"a": 1}, {"b": 2}])
    with pytest.raises(ValueError, match="columns"):
        reporting.write_csv(tmp_path / "x.csv", [])
    path = reporting.write_csv(tmp_path / "empty.csv", [], columns=["a", "b"])
    assert path.read_text(encoding="utf-8") == "a,b\n"
