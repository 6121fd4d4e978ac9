"""Figures for `ner.uncertainty.metrics`: reliability diagram, ROC curves, accuracy–rejection, OOD histograms.

Like `ner.reporting`, each function draws on a bare `matplotlib.figure.Figure` (no pyplot state) and
writes one PNG atomically (`ner.reporting.save_png`), returning its path. The numbers come in computed;
nothing here measures anything.
"""
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ner.reporting import save_png
from ner.uncertainty.metrics import AccuracyRejection, Calibration, RocCurve
from ner.utils import PathLike


def plot_reliability_diagram(calibrations: Mapping[str, Calibration], path: PathLike, title: str,
                             items: str = "tokens", confidence: str = "max mean probability") -> Path:
    """Accuracy per confidence bin against the diagonal, one bar series per entry (e.g. MC off, MC on).

    The legend gives each entry's ECE; a lower panel shows the `items` (tokens, entities) per bin on a log
    axis; `confidence` says what the confidence is. All entries must use the same bins.
    """
    if not calibrations:
        raise ValueError("no calibrations to plot")
    edges = next(iter(calibrations.values())).bin_edges
    for name, calibration in calibrations.items():
        if not np.array_equal(calibration.bin_edges, edges):
            raise ValueError(f"{name!r} uses other bins than the first entry")
    width = np.diff(edges) / (len(calibrations) + 1)  # [M]
    fig = Figure(figsize=(6.5, 7.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    for index, (name, calibration) in enumerate(calibrations.items()):
        left = edges[:-1] + (index + 0.5) * width
        top.bar(left, np.nan_to_num(calibration.accuracy), width, align="edge", alpha=0.8,
                label=f"{name} (ECE {calibration.ece:.4f})")
        bottom.bar(left, calibration.counts, width, align="edge", alpha=0.8, label=name)
    top.set_xlim(0.0, 1.0)
    top.set_ylim(0.0, 1.0)
    top.set_ylabel("accuracy in bin")
    top.set_title(title, fontsize=10)
    top.legend(fontsize=8, loc="upper left")
    bottom.set_yscale("log")
    bottom.set_xlabel(f"confidence ({confidence})")
    bottom.set_ylabel(items)
    return save_png(fig, path)


def plot_roc_curves(curves: Mapping[str, RocCurve], path: PathLike, title: str) -> Path:
    """One ROC curve per entry (e.g. per score), with its AUROC in the legend, and the chance diagonal."""
    if not curves:
        raise ValueError("no ROC curves to plot")
    fig = Figure(figsize=(6.0, 6.0), layout="constrained")
    ax = fig.subplots()
    ax.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="grey", linewidth=1, label="chance (0.5)")
    for name, curve in curves.items():
        ax.plot(curve.fpr, curve.tpr, linewidth=1.5, label=f"{name} (AUROC {curve.auroc:.4f})")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return save_png(fig, path)


def plot_accuracy_rejection(curves: Mapping[str, AccuracyRejection], path: PathLike, title: str) -> Path:
    """Accuracy of the kept tokens against the percentage set aside as most uncertain, one line per entry."""
    if not curves:
        raise ValueError("no accuracy-rejection curves to plot")
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.subplots()
    for name, curve in curves.items():
        ax.plot(100.0 * curve.rejection_rates, curve.accuracy, linewidth=1.5, label=name)
    ax.set_xlim(0.0, 100.0)
    ax.set_xlabel("tokens set aside, most uncertain first (%)")
    ax.set_ylabel("accuracy on the kept tokens")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save_png(fig, path)


def plot_ood_histograms(
    in_domain: np.ndarray,
    out_of_domain: np.ndarray,
    path: PathLike,
    title: str,
    score_name: str,
    labels: Sequence[str] = ("in-domain", "out-of-domain"),
    bins: int = 30,
) -> Path:
    """Overlaid density histograms of sentence scores [S_in] and [S_out] on shared bins."""
    in_domain = np.asarray(in_domain, dtype=np.float64)
    out_of_domain = np.asarray(out_of_domain, dtype=np.float64)
    if in_domain.ndim != 1 or out_of_domain.ndim != 1 or not in_domain.size or not out_of_domain.size:
        raise ValueError(f"scores must be non-empty 1-D arrays, got shapes {in_domain.shape} and {out_of_domain.shape}")
    if len(labels) != 2:
        raise ValueError(f"labels must name the two sets, got {labels}")
    edges = np.histogram_bin_edges(np.concatenate([in_domain, out_of_domain]), bins=bins)
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.subplots()
    for values, label in zip((in_domain, out_of_domain), labels):
        ax.hist(values, bins=edges, density=True, alpha=0.5, label=f"{label} ({values.size} sentences)")
    ax.set_xlabel(score_name)
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return save_png(fig, path)
