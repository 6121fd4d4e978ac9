"""Mean ± sample std over seeds of `benchmark_taggers` runs that went to several `benchmarks.csv` files.

    python -m benchmarks.summarise_seeds --suite conll2003 results/benchmarks.csv \\
        results/benchmarks_seeds/*/benchmarks.csv [--output results/benchmarks_seeds/conll2003.md]

`benchmark_taggers --seed N --output DIR` keeps one row per suite and model in DIR's CSV, so the seeds of
a comparison go to one directory each. This groups the rows of `--suite` by model and epochs across the
files and prints (or writes, atomically) a Markdown table: runs, test and validation entity F1 as mean ±
sample std, each run's test F1 in the order of the files, and the mean epoch time.
"""
import argparse
import csv
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from examples.common import exit_on_error, mean_std

COLUMNS = ("suite", "shown_as", "epochs", "test_entity_f1", "validation_entity_f1", "epoch_seconds", "commit")


def summarise(suite: str, files: Sequence[Path]) -> str:
    """The Markdown table of the rows of `suite` in `files`, grouped by (model, epochs) in order of first
    appearance. Raises NerError naming the file that cannot be read or lacks a column, or the files when
    none has a row of `suite`."""
    from ner.errors import NerError

    groups: Dict[Tuple[str, str], List[dict]] = {}
    for path in files:
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError) as error:
            raise NerError(f"{path}: cannot be read ({error}); expected a benchmarks.csv of "
                           "benchmarks/benchmark_taggers.py") from None
        for line, row in enumerate(rows, start=2):
            missing = [column for column in COLUMNS if row.get(column) is None]
            if missing:
                raise NerError(f"{path}, line {line}: no {', '.join(missing)}; expected the columns of "
                               "benchmarks/benchmark_taggers.py's benchmarks.csv")
            if row["suite"] == suite:
                groups.setdefault((row["shown_as"], row["epochs"]), []).append(row)
    if not groups:
        raise NerError(f"no row of suite {suite!r} in {', '.join(map(str, files))}")
    lines = ["| model | epochs | runs | test entity F1 | validation entity F1 | each run's test F1 | s / epoch | commits |",
             "|---|---|---|---|---|---|---|---|"]
    for (shown_as, epochs), rows in groups.items():
        test = [float(r["test_entity_f1"]) for r in rows]
        lines.append(f"| {shown_as} | {epochs} | {len(rows)} | {mean_std(test)} | "
                     f"{mean_std([float(r['validation_entity_f1']) for r in rows])} | "
                     f"{', '.join(f'{value:.4f}' for value in test)} | "
                     f"{sum(float(r['epoch_seconds']) for r in rows) / len(rows):.0f} | "
                     f"{', '.join(sorted({r['commit'] for r in rows}))} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", required=True, help="the suite whose rows to summarise (gmb, conll2003)")
    parser.add_argument("files", nargs="+", type=Path, help="benchmarks.csv files, one seed each")
    parser.add_argument("--output", type=Path, help="write the table here instead of printing it")
    args = parser.parse_args(argv)

    def run():
        table = summarise(args.suite, args.files)
        if args.output is None:
            print(table, end="")
        else:
            from ner.utils import write_text_atomic

            write_text_atomic(args.output, table)

    exit_on_error(run)


if __name__ == "__main__":
    main()
