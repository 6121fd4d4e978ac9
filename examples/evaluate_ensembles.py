"""CRF ensembles of trained runs over several seeds' splits, against their members (`ner.crf_ensemble`).

    python -m examples.evaluate_ensembles --seeds 1 2 3 4 5 \
        --member minilm=saved_models/bert_crf_seed{seed} --member mpnet=/runs/mpnet/bert_crf_seed{seed} \
        --ensemble minilm mpnet minilm+mpnet --against mpnet --output results/crf_ensemble

`--member NAME=RUN` names a run per seed (`{seed}` in RUN becomes the seed); every run of one seed must
share that seed's split (`split.seed`) and labels. `--ensemble A+B…` decodes those members together (the
Viterbi path of their mean CRF potentials); a single name scores that member alone, as `ner evaluate` does.
Writes `<output>/runs.csv` and `<output>/per_class_f1.csv` (the format of `examples.reproduce_seed001`, so
`examples.compare_runs` reads them) and `<output>/ensembles.md`: mean ± sample std over seeds and, for each
name of `--against`, the paired per-seed difference in entity F1. A (ensemble, seed) pair already in
`runs.csv` is not evaluated again.
"""
import argparse
import time
from pathlib import Path
from typing import Dict, List, Sequence

from examples.common import (METRICS, exit_on_error, git_commit, invocation, parse_pairs, read_records,
                             summarise_runs)
from examples.decompose_seed001_gap import by_seed, paired_difference


def ensemble_runs(ensemble: str, members: Dict[str, str], seed: int) -> List[str]:
    """The runs of `ensemble` (member names joined by '+') for `seed`; ConfigError for an unknown name."""
    from ner.errors import ConfigError

    names = ensemble.split("+")
    unknown = [name for name in names if name not in members]
    if unknown:
        raise ConfigError(f"--ensemble {ensemble!r} names {', '.join(unknown)}, which no --member defines; "
                          f"expected names among {', '.join(members)}")
    return [members[name].format(seed=seed) for name in names]


def markdown(rows: Sequence[Dict], ensembles: Sequence[str], against: Sequence[str], command: str) -> str:
    """The table: per ensemble, its seeds, mean ± std of each metric, and paired entity-F1 differences."""
    header = ["ensemble", "seeds", "accuracy %", "accuracy without O %", "mean F1", "entity F1",
              *(f"entity F1 − {name}" for name in against)]
    lines = [f"Made by `{command}`.", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for ensemble in ensembles:
        runs = [row for row in rows if row["model"] == ensemble]
        if not runs:
            continue
        _, cells = summarise_runs(ensemble, runs)
        paired = []
        for name in against:
            difference = paired_difference(by_seed(rows, ensemble, "entity_f1"), by_seed(rows, name, "entity_f1"))
            paired.append("" if difference is None or name == ensemble else
                          f"{difference[0]:+.4f} ± {difference[1]:.4f} ({difference[2]})")
        lines.append("| " + " | ".join([ensemble, str(len(runs)), cells, *paired]) + " |")
    commits = sorted({row["commit"] for row in rows})
    lines += ["", f"Mean ± sample std over seeds; paired: mean ± std of the per-seed differences (seeds). "
              f"Evaluated at commit(s) {', '.join(commits)}; every run in `runs.csv`."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="the splits' seeds")
    parser.add_argument("--member", action="append", required=True, metavar="NAME=RUN",
                        help="a run per seed; {seed} in RUN becomes the seed (repeatable)")
    parser.add_argument("--ensemble", nargs="+", required=True, metavar="A+B",
                        help="member names joined by '+' (one name: that member alone)")
    parser.add_argument("--against", nargs="*", default=[], metavar="NAME",
                        help="ensembles to pair every row with (entity F1, by seed)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of every run's config (e.g. paths.feature_cache_dir)")
    parser.add_argument("--output", required=True, help="directory for runs.csv, per_class_f1.csv, ensembles.md")
    args = parser.parse_args(argv)
    command = invocation("examples.evaluate_ensembles", argv)

    members = parse_pairs(args.member, "--member")
    if any("+" in name for name in members):
        raise SystemExit("error: --member names may not hold '+', which joins them in --ensemble")

    def run() -> None:
        from ner.reporting import write_csv
        from ner.utils import write_text_atomic

        for ensemble in args.ensemble:  # every name checked before any evaluation
            ensemble_runs(ensemble, members, args.seeds[0])
        import tf_keras as keras

        from ner.evaluation import evaluate

        output = Path(args.output)
        rows, per_class = read_records(output / "runs.csv"), read_records(output / "per_class_f1.csv")
        done = {(row["model"], row["seed"]) for row in rows}
        for seed in args.seeds:
            for ensemble in args.ensemble:
                if (ensemble, seed) in done:
                    continue
                first, *others = ensemble_runs(ensemble, members, seed)
                start = time.perf_counter()
                report = evaluate(first, args.overrides, verbose=False, ensemble=others).report
                keras.backend.clear_session()
                summary = report.summary_row()
                rows.append({"model": ensemble, "seed": seed, **{m: summary[m] for m in METRICS},
                             "seconds": round(time.perf_counter() - start, 1), "commit": git_commit()})
                per_class.append({"model": ensemble, "seed": seed,
                                  **dict(zip(report.token.labels, report.token.f1.tolist()))})
                write_csv(output / "per_class_f1.csv", per_class)
                write_csv(output / "runs.csv", rows)  # last: a run is recorded once it is here
                print(f"[ensembles] seed {seed} {ensemble}: entity F1 {summary['entity_f1']:.4f}", flush=True)
        text = markdown(rows, args.ensemble, args.against, command)
        write_text_atomic(output / "ensembles.md", text)
        print(text)

    exit_on_error(run)


if __name__ == "__main__":
    main()
