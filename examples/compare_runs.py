"""Paired per-seed differences between two sets of `examples.reproduce_seed001` runs (a method against its base).

    python -m examples.compare_runs results/logit_adjustment/reproduction results/reproduction \
        [--models bert_ner bert_crf] [--output FILE]

Each argument is a folder that `reproduce_seed001` wrote (`runs.csv`, `per_class_f1.csv`), for example the
same models trained with one setting changed (`--set ...` and `--output`). For each model both folders
hold, a Markdown table gives every metric: the first folder's mean, the second's, and the mean ± sample
std over the seeds both ran of (first − second), the seeds paired. Accuracies are in %. The last two
rows split mean F1 into the share of art, nat and eve and that of the other six classes
(`examples.decompose_seed001_gap`). A difference counts as real only when it is well beyond its std.
"""
import argparse
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from examples.common import exit_on_error, read_records
from examples.decompose_seed001_gap import OTHER_SHARE, RARE_SHARE, by_seed, paired_difference, with_class_shares

METRICS = ("accuracy", "accuracy_without_o", "mean_f1", "entity_f1", RARE_SHARE, OTHER_SHARE)


def compare(first: Sequence[Dict], second: Sequence[Dict], models: Sequence[str]) -> List[Dict]:
    """One record per (model, metric) that both sets of runs have: model, metric, each side's mean over the
    paired seeds, and the mean, sample std and count of the per-seed differences (first − second)."""
    records = []
    for model in models:
        for metric in METRICS:
            ours, theirs = by_seed(first, model, metric), by_seed(second, model, metric)
            seeds = sorted(set(ours) & set(theirs))
            if not seeds:
                continue
            mean, std, count = paired_difference(ours, theirs)
            records.append({"model": model, "metric": metric, "first": float(np.mean([ours[s] for s in seeds])),
                            "second": float(np.mean([theirs[s] for s in seeds])), "difference": mean, "std": std,
                            "seeds": count})
    return records


def markdown(records: Sequence[Dict], first: str, second: str) -> str:
    """A table per model: metric, each side's mean, and the paired difference "±std (n seeds)"."""
    lines = [f"Paired by seed: `{first}` (first) against `{second}` (second); accuracies in %.", ""]
    for model in dict.fromkeys(record["model"] for record in records):
        lines += [f"## {model}", "", "| metric | first | second | first − second |", "|---|---|---|---|"]
        for record in (r for r in records if r["model"] == model):
            digits = 2 if record["metric"].startswith("accuracy") else 4
            lines.append(f"| {record['metric']} | {record['first']:.{digits}f} | {record['second']:.{digits}f} | "
                         f"{record['difference']:+.{digits}f} ± {record['std']:.{digits}f} ({record['seeds']}) |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("first", help="a folder of runs (runs.csv, per_class_f1.csv)")
    parser.add_argument("second", help="the folder of the runs it is compared with")
    parser.add_argument("--models", nargs="+", help="only these models (default: every model both hold)")
    parser.add_argument("--output", help="also write the Markdown to this file")
    args = parser.parse_args(argv)

    def run() -> None:
        from ner.errors import DataError
        from ner.utils import write_text_atomic

        sides = []
        for folder in map(Path, (args.first, args.second)):
            if not (folder / "runs.csv").is_file():
                raise DataError(f"{folder / 'runs.csv'} not found; expected a folder that examples.reproduce_seed001 "
                                "wrote")
            per_class = read_records(folder / "per_class_f1.csv")
            sides.append(with_class_shares(read_records(folder / "runs.csv"), per_class))
        shared = [model for model in dict.fromkeys(row["model"] for row in sides[0])
                  if any(row["model"] == model for row in sides[1])]
        text = markdown(compare(*sides, args.models or shared), args.first, args.second)
        if args.output:
            write_text_atomic(Path(args.output), text)
        print(text)

    exit_on_error(run)


if __name__ == "__main__":
    main()
