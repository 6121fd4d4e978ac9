"""Tables, figures and result files for an `EvaluationReport`.

The evaluator only computes numbers; this module turns them into CSV, Markdown and PNG files. Every
file is written atomically (`ner.utils.atomic_path`). Figures are drawn on a bare
`matplotlib.figure.Figure`, so no display, pyplot state or global backend switch is involved.
"""
import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from ner.model_evaluator import EntityMetrics, EvaluationReport, TokenMetrics
from ner.utils import PathLike, atomic_path, write_text_atomic

METRICS_CSV = "metrics.csv"
PER_CLASS_CSV = "per_class.csv"
ENTITY_CSV = "entity_per_type.csv"
CONFUSION_CSV = "confusion.csv"
REPORT_MD = "report.md"
CONFUSION_BY_TRUE_PNG = "confusion_by_true.png"
CONFUSION_BY_PREDICTED_PNG = "confusion_by_predicted.png"
DISTRIBUTION_PNG = "label_distribution.png"
LATENT_TRUE_PNG = "latent_pca_true.png"
LATENT_PREDICTED_PNG = "latent_pca_predicted.png"

Row = dict[str, str | int | float]


def per_class_table(token: TokenMetrics) -> list[Row]:
    """One row per class: label, precision, recall, f1, support, true and predicted token fractions."""
    true_fraction = token.true_distribution()
    pred_fraction = token.predicted_distribution()
    return [
        {
            "label": label,
            "precision": float(token.precision[i]),
            "recall": float(token.recall[i]),
            "f1": float(token.f1[i]),
            "support": int(token.support[i]),
            "true_fraction": float(true_fraction[i]),
            "predicted_fraction": float(pred_fraction[i]),
        }
        for i, label in enumerate(token.labels)
    ]


def entity_table(entity: EntityMetrics) -> list[Row]:
    """One row per entity type (precision, recall, f1, support), then a "micro avg" row over all types."""
    rows: list[Row] = [
        {"type": name, "precision": p, "recall": r, "f1": f, "support": s}
        for name, (p, r, f, s) in entity.per_type.items()
    ]
    rows.append({
        "type": "micro avg",
        "precision": entity.precision,
        "recall": entity.recall,
        "f1": entity.f1,
        "support": sum(s for _, _, _, s in entity.per_type.values()),
    })
    return rows


def confusion_table(token: TokenMetrics) -> list[Row]:
    """Confusion counts as rows: `true_label` then one column per predicted label."""
    return [
        {"true_label": label, **{pred: int(count) for pred, count in zip(token.labels, counts)}}
        for label, counts in zip(token.labels, token.confusion)
    ]


def write_csv(path: PathLike, rows: Sequence[Row], columns: Sequence[str] | None = None) -> Path:
    """Writes `rows` as CSV with a header, atomically; floats keep full precision. Returns the path.

    Args:
        path: destination file.
        rows: dicts that all have the same keys.
        columns: header order; defaults to the keys of the first row, and is required when `rows` is
            empty.
    """
    columns = _columns(rows, columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, buffer.getvalue())


def markdown_table(rows: Sequence[Row], float_format: str = ".4f", columns: Sequence[str] | None = None) -> str:
    """Renders `rows` as a GitHub Markdown table; floats use `float_format`, e.g. ".4f" or ".2%"."""
    columns = _columns(rows, columns)

    def cell(value: str | int | float) -> str:
        text = format(value, float_format) if isinstance(value, float) else str(value)
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_report(
    results_dir: PathLike,
    report: EvaluationReport,
    run_name: str,
    extra_markdown: str = "",
) -> list[Path]:
    """Writes a run's tables, confusion and distribution figures, and `report.md` into `results_dir`.

    Files: metrics.csv (one summary row), per_class.csv, entity_per_type.csv, confusion.csv (counts),
    confusion_by_true.png, confusion_by_predicted.png, label_distribution.png and report.md. The
    Markdown also links latent_pca_true.png and latent_pca_predicted.png when they are already in
    `results_dir` (see `write_latent_plots`), and ends with `extra_markdown`.

    Returns:
        The paths written, report.md last.
    """
    results_dir = Path(results_dir)
    token = report.token
    summary: Row = {"run_name": run_name, "num_sentences": report.num_sentences, "num_tokens": report.num_tokens}
    summary.update(report.summary_row())
    per_class = per_class_table(token)
    entities = entity_table(report.entity)

    written = [
        write_csv(results_dir / METRICS_CSV, [summary]),
        write_csv(results_dir / PER_CLASS_CSV, per_class),
        write_csv(results_dir / ENTITY_CSV, entities),
        write_csv(results_dir / CONFUSION_CSV, confusion_table(token)),
        plot_confusion_matrix(
            token.confusion_normalized_by_true(), token.labels, results_dir / CONFUSION_BY_TRUE_PNG,
            f"{run_name}: confusion normalised by true label (recall)",
        ),
        plot_confusion_matrix(
            token.confusion_normalized_by_predicted(), token.labels, results_dir / CONFUSION_BY_PREDICTED_PNG,
            f"{run_name}: confusion normalised by predicted label (precision)",
        ),
        plot_label_distribution(
            report.true_distribution, report.pred_distribution, token.labels, results_dir / DISTRIBUTION_PNG,
        ),
    ]
    figures = [path.name for path in written if path.suffix == ".png"]
    figures += [name for name in (LATENT_TRUE_PNG, LATENT_PREDICTED_PNG) if (results_dir / name).is_file()]

    headline = [
        {"metric": "token accuracy", "value": f"{token.accuracy:.2%}"},
        {"metric": "accuracy without O", "value": f"{token.accuracy_without_outside:.2%}"},
        {"metric": "mean F1 over classes (incl. O)", "value": f"{token.mean_f1:.4f}"},
        {"metric": "entity F1 (strict spans, micro)", "value": f"{report.entity.f1:.4f}"},
        {"metric": "sentences / tokens", "value": f"{report.num_sentences} / {report.num_tokens}"},
    ]
    sections = [
        f"# Evaluation: {run_name}\n",
        "## Summary\n",
        markdown_table(headline),
        "## Per-class token scores\n",
        "Precision = TP / predicted tokens of the class, recall = TP / true tokens of the class; "
        "0 where undefined.\n",
        markdown_table(per_class),
        "## Entity scores (seqeval strict, IOB2)\n",
        markdown_table(entities),
        "## Figures\n",
        "".join(f"![{name}]({name})\n\n" for name in figures),
    ]
    if extra_markdown:
        sections.append(extra_markdown.rstrip("\n") + "\n")
    written.append(write_text_atomic(results_dir / REPORT_MD, "\n".join(sections)))
    return written


def write_latent_plots(
    results_dir: PathLike,
    points: np.ndarray,
    true_ids: np.ndarray,
    pred_ids: np.ndarray,
    labels: Sequence[str],
    run_name: str,
) -> list[Path]:
    """Writes latent_pca_true.png and latent_pca_predicted.png (points [n, 2], ids [n]); returns the paths."""
    results_dir = Path(results_dir)
    return [
        plot_latent_pca(points, true_ids, labels, results_dir / LATENT_TRUE_PNG,
                        f"{run_name}: latent PCA, coloured by true label"),
        plot_latent_pca(points, pred_ids, labels, results_dir / LATENT_PREDICTED_PNG,
                        f"{run_name}: latent PCA, coloured by predicted label"),
    ]


def plot_confusion_matrix(matrix: np.ndarray, labels: Sequence[str], path: PathLike, title: str) -> Path:
    """Heatmap of `matrix` [C, C] (rows true, columns predicted) with each cell annotated; returns path.

    Integer matrices are annotated as counts, float ones with two decimals.
    """
    matrix = np.asarray(matrix)
    if matrix.shape != (len(labels), len(labels)):
        raise ValueError(f"matrix must have shape ({len(labels)}, {len(labels)}), got {matrix.shape}")
    size = 2.5 + 0.55 * len(labels)
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, shrink=0.8)
    integer = np.issubdtype(matrix.dtype, np.integer)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(col, row, f"{value:d}" if integer else f"{value:.2f}", ha="center", va="center",
                fontsize=7, color="white" if value > threshold else "black")
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels=list(labels), rotation=45, ha="right")
    ax.set_yticks(ticks, labels=list(labels))
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title, fontsize=10)
    return save_png(fig, path)


def plot_latent_pca(
    points: np.ndarray, label_ids: np.ndarray, labels: Sequence[str], path: PathLike, title: str
) -> Path:
    """Scatter of 2-D points [n, 2] coloured by label_ids [n] (one legend entry per class present)."""
    points = np.asarray(points)
    label_ids = np.asarray(label_ids)
    if points.ndim != 2 or points.shape[1] != 2 or label_ids.shape != (points.shape[0],):
        raise ValueError(f"points must be [n, 2] and label_ids [n], got {points.shape} and {label_ids.shape}")
    fig = Figure(figsize=(7.0, 6.0), layout="constrained")
    ax = fig.subplots()
    palette = _palette(len(labels))
    for class_id, label in enumerate(labels):
        mask = label_ids == class_id
        if mask.any():
            ax.scatter(points[mask, 0], points[mask, 1], s=3, alpha=0.5, color=palette[class_id],
                       label=f"{label} ({int(mask.sum())})", rasterized=True, linewidths=0)
    ax.legend(markerscale=4, fontsize=8, loc="best", framealpha=0.8)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title, fontsize=10)
    return save_png(fig, path)


def plot_label_distribution(
    true_dist: np.ndarray, pred_dist: np.ndarray, labels: Sequence[str], path: PathLike
) -> Path:
    """Grouped bars of true vs predicted label fractions (arrays [C]) on a log axis; returns path."""
    true_dist = np.asarray(true_dist, dtype=np.float64)
    pred_dist = np.asarray(pred_dist, dtype=np.float64)
    if true_dist.shape != (len(labels),) or pred_dist.shape != (len(labels),):
        raise ValueError(
            f"distributions must have shape ({len(labels)},), got {true_dist.shape} and {pred_dist.shape}"
        )
    positions = np.arange(len(labels))
    width = 0.4
    fig = Figure(figsize=(2.0 + 0.6 * len(labels), 4.0), layout="constrained")
    ax = fig.subplots()
    ax.bar(positions - width / 2, true_dist, width, label="true")
    ax.bar(positions + width / 2, pred_dist, width, label="predicted")
    ax.set_yscale("log")
    ax.set_xticks(positions, labels=list(labels), rotation=45, ha="right")
    ax.set_ylabel("fraction of tokens (log scale)")
    ax.set_title("Label distribution: true vs predicted", fontsize=10)
    ax.legend(fontsize=8)
    return save_png(fig, path)


def _palette(num_colours: int) -> list[tuple[float, float, float, float]]:
    """Distinct RGBA colours: tab10 up to 10 classes, tab20 up to 20, then a continuous map."""
    if num_colours <= 10:
        return [colormaps["tab10"](i) for i in range(num_colours)]
    if num_colours <= 20:
        return [colormaps["tab20"](i) for i in range(num_colours)]
    return [colormaps["turbo"](i / (num_colours - 1)) for i in range(num_colours)]


def save_png(fig: Figure, path: PathLike) -> Path:
    """Saves `fig` as PNG at `path` atomically and returns the path."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return Path(path)


def _columns(rows: Sequence[Row], columns: Sequence[str] | None) -> list[str]:
    """The header: `columns`, or the first row's keys; raises ValueError if rows disagree with it."""
    if columns is None:
        if not rows:
            raise ValueError("columns must be given when there are no rows")
        columns = list(rows[0])
    columns = list(columns)
    for index, row in enumerate(rows):
        if set(row) != set(columns):
            raise ValueError(f"row {index} has keys {sorted(row)}, expected {sorted(columns)}")
    return columns
