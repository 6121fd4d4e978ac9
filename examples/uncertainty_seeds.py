"""The uncertainty study (issue #14) over several runs (seeds) and out-of-domain sets, as mean ± std.

    python -m examples.uncertainty_seeds --runs bert_crf_seed1 bert_crf_seed2 bert_crf_seed3 \\
        --ood wnut17=../shared/data/wnut17/emerging.test.annotated conll2003=../shared/data/conll2003/test.txt \\
        --ensemble bert_crf_seed1=bert_crf_seed1_t2,bert_crf_seed1_t3 --output results/uncertainty/bert_crf

Each (run, out-of-domain set) is the study of `ner uncertainty` with `data.ood_path` set to that set,
written to `<output>/<run>_<set>/`; a study already there (its `uncertainty.csv`) is read, not run again.
`--ensemble RUN=MEMBER,…` adds a deep ensemble of RUN and other runs of its split to RUN's studies.
Writes `<output>/summary.md` and `.csv`: every metric's mean ± sample std over the runs that have it
(`n`). The in-domain metrics come from each run's study with the first set; the out-of-domain AUROCs are
named by their set.
"""
import argparse
import re
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from examples.common import exit_on_error, invocation, parse_pairs

OOD_METRIC = re.compile(r"^OOD AUROC, (?P<score>.+) \(GMB test vs \d+ OOD sentences\)$")


def read_study(path: Path) -> Dict[str, float]:
    """`uncertainty.csv` of one study as {metric: value}."""
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        return {row["metric"]: float(row["value"]) for row in csv.DictReader(handle)}


def summary_rows(studies: Dict[str, Dict[str, Dict[str, float]]], ood_sets: Sequence[str]) -> List[dict]:
    """studies[run][set] = {metric: value} → one row per metric: its mean, sample std and n over the runs.
    In-domain metrics are taken from the first set's study, OOD AUROCs from every set's, renamed by set."""
    values: Dict[str, List[float]] = {}
    for by_set in studies.values():
        for position, ood in enumerate(ood_sets):
            for metric, value in by_set.get(ood, {}).items():
                match = OOD_METRIC.match(metric)
                if match:
                    values.setdefault(f"OOD AUROC vs {ood}, {match['score']}", []).append(value)
                elif position == 0:
                    values.setdefault(metric, []).append(value)
    return [{"metric": metric, "mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
             "n": len(v)} for metric, v in values.items()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="The uncertainty study over runs and out-of-domain sets.")
    parser.add_argument("--runs", nargs="+", required=True, help="trained runs (one per seed)")
    parser.add_argument("--ood", nargs="+", required=True, metavar="NAME=PATH",
                        help="out-of-domain CoNLL files (tags ignored), by name")
    parser.add_argument("--ensemble", nargs="*", default=[], metavar="RUN=MEMBER,…",
                        help="deep-ensemble members (other training seeds of RUN's split)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of every run's config")
    parser.add_argument("--output", required=True, help="directory for the studies and summary.{md,csv}")
    args = parser.parse_args(argv)
    ood_sets, ensembles = parse_pairs(args.ood, "--ood"), parse_pairs(args.ensemble, "--ensemble")
    command = invocation("examples.uncertainty_seeds", argv)

    def run() -> None:
        from ner.cli import uncertainty_run
        from ner.reporting import markdown_table, write_csv
        from ner.uncertainty.study import CSV_FILE
        from ner.utils import write_text_atomic

        output = Path(args.output)
        studies: Dict[str, Dict[str, Dict[str, float]]] = {}
        for run_name in args.runs:
            for ood, path in ood_sets.items():
                directory = output / f"{Path(run_name).name}_{ood}"
                if not (directory / CSV_FILE).is_file():
                    members = ensembles.get(run_name, "")
                    uncertainty_run(run_name, [*args.overrides, f"data.ood_path={path}"], command, output=str(directory),
                                    ensemble=members.split(",") if members else ())
                studies.setdefault(run_name, {})[ood] = read_study(directory / CSV_FILE)
        rows = summary_rows(studies, list(ood_sets))
        write_csv(output / "summary.csv", rows)
        write_text_atomic(output / "summary.md", "\n".join([
            f"# Uncertainty over {len(args.runs)} runs",
            "",
            f"Produced by `{command}`. Mean ± sample std over the runs (`n` of them) of every number of their "
            f"studies (one directory per run and out-of-domain set beside this file); out-of-domain sets: "
            + ", ".join(f"{name} = `{path}`" for name, path in ood_sets.items()) + ".",
            "",
            markdown_table(rows, float_format=".4f"),
            "",
        ]))
        print(f"[uncertainty] summary written to {output / 'summary.md'}")

    exit_on_error(run)


if __name__ == "__main__":
    main()
