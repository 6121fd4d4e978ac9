"""The gap between seed 001's reported table and the package's leak-free one, measured in steps (issue #15).

    python -m examples.decompose_seed001_gap   # → results/reproduction_gap.{md,csv}

Reads the runs that `examples.reproduce_seed001` wrote under both protocols (`results/reproduction/runs.csv`,
`results/reproduction_seed001_protocol/runs.csv`) and the all-mpnet-base-v2 runs of the same leak-free
protocol (`results/encoder_mpnet/reproduction/runs.csv`). For each row seed 001 reported and each of its
metrics, it starts from the leak-free MiniLM BERT NER (the NER baseline's row: the leak-free baseline, then
the protocol step alone) and adds, each as the mean ± sample std over seeds of per-seed differences:

- **encoder**: MPNet (the size of seed 001's BERT-base) − MiniLM, leak-free BERT NER;
- **protocol**: seed 001's leaky protocol − leak-free, BERT NER (the test draw differs too);
- **seed 001's head** and **seed 001's input**, when their runs exist (`results/seed001_details/head/` and
  `head_input/`, each holding a `reproduction_seed001_protocol/` of `examples.reproduce_seed001
  --protocol seed001 --output ...`): its MLP head on the encoder's last layer with dropout 0 − BERT NER (our
  head reads a learned mix of all layers with dropout 0.1), then its input of one word piece per word
  (`data.max_pieces_per_word=1`) − that head; both seed 001's protocol; for the baseline row, its own runs
  (its head step is dropout 0 alone: it has no encoder layers);
- **extra labelled batches** (KL rows): the KL schedule with KL weight 0 − BERT NER, seed 001's protocol,
  where each KL pass draws fresh labelled batches;
- **KL terms** (KL rows): the KL stage − that control, seed 001's protocol, with its KL details;

then the sum, seed 001's number and what is left unexplained (seed 001 − sum). The start is the mean over
all its seeds; each difference pairs the runs of the same seed.

Mean F1 is the mean of the 9 classes' token F1, so every step of it splits exactly into the share of the three
rare classes (art, nat, eve: their F1 summed and divided by 9) and the share of the other six; the two extra
columns show where each step, and the unexplained rest, lies (from each run's `per_class_f1.csv` and seed
001's per-class table).
"""
import argparse
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from examples.common import exit_on_error, read_records
from examples.reproduce_seed001 import MODELS, SEED001_PER_CLASS_F1

RARE_CLASSES = ("art", "nat", "eve")
RARE_SHARE, OTHER_SHARE = "mean_f1: art, nat, eve", "mean_f1: the other six"
SEED001_METRICS = ("accuracy", "accuracy_without_o", "mean_f1", RARE_SHARE, OTHER_SHARE)
# the models whose row seed 001 reported; their names, and seed 001's numbers, are reproduce_seed001's
SEED001_MODELS = ("ner_baseline", "bert_ner", "bert_data_dist_kl", "bert_confidence_kl")
BASELINE = "ner_baseline"
CONTROL = "bert_ce_control"
STARTS_FROM = "leak-free MiniLM BERT NER"
BASELINE_STARTS_FROM = "leak-free NER baseline"
HEAD_STEP = "seed 001's head: last layer, dropout 0"
BASELINE_HEAD_STEP = "seed 001's head: dropout 0"  # the baseline has no encoder layers to choose from
INPUT_STEP = "seed 001's input: one piece per word"
DETAILS = ("head", "head_input")  # folders under results/seed001_details/, in step order
LEVELS = ("sum", "seed 001 reported")  # values, not differences


def class_shares(per_class_f1: Dict[str, float]) -> Dict[str, float]:
    """The rare classes' and the other classes' shares of the mean F1 of one run's per-class F1 (label → F1)."""
    rare = sum(per_class_f1[label] for label in RARE_CLASSES)
    return {RARE_SHARE: rare / len(per_class_f1), OTHER_SHARE: (sum(per_class_f1.values()) - rare) / len(per_class_f1)}


def with_class_shares(runs: Sequence[Dict], per_class: Sequence[Dict]) -> List[Dict]:
    """`runs` (model, seed, metrics) with the `class_shares` of the per-class row of the same model and seed
    (rows: model, seed, one F1 per class); a run without one gets none."""
    shares = {(row["model"], row["seed"]): class_shares({label: value for label, value in row.items()
                                                          if label not in ("model", "seed")}) for row in per_class}
    return [{**run, **shares.get((run["model"], run["seed"]), {})} for run in runs]


def by_seed(rows: Sequence[Dict], model: str, metric: str) -> Dict[int, float]:
    """seed → `metric` of `model`'s runs that have it (accuracies in %)."""
    scale = 100.0 if metric.startswith("accuracy") else 1.0
    return {row["seed"]: scale * row[metric] for row in rows if row["model"] == model and metric in row}


def seed001_reported(stage: str) -> Dict[str, float]:
    """metric → seed 001's number for the row of `stage`."""
    return {**dict(zip(SEED001_METRICS, MODELS[stage][2])), **class_shares(SEED001_PER_CLASS_F1[stage])}


def summary(values: Sequence[float]) -> Optional[Tuple[float, float, int]]:
    """(mean, sample std (0 for one value), n) of `values`, or None if there are none."""
    if not len(values):
        return None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, len(values)


def paired_difference(minuend: Dict[int, float], subtrahend: Dict[int, float]) -> Optional[Tuple[float, float, int]]:
    """`summary` of minuend − subtrahend over the seeds both have."""
    return summary([minuend[seed] - subtrahend[seed] for seed in sorted(set(minuend) & set(subtrahend))])


def detail_steps(seed001: Sequence[Dict], head: Sequence[Dict], head_input: Sequence[Dict], model: str,
                 metric: str) -> List[Tuple[str, Optional[Tuple[float, float, int]]]]:
    """The steps of seed 001's head and input for `model`'s runs, each only where its runs of `model` exist."""
    protocol, with_head, with_input = (by_seed(runs, model, metric) for runs in (seed001, head, head_input))
    steps = []
    if with_head:
        steps.append((BASELINE_HEAD_STEP if model == BASELINE else HEAD_STEP, paired_difference(with_head, protocol)))
        if with_input:
            steps.append((INPUT_STEP, paired_difference(with_input, with_head)))
    return steps


def decompose(leak_free: Sequence[Dict], seed001: Sequence[Dict], mpnet: Sequence[Dict],
              head: Sequence[Dict] = (), head_input: Sequence[Dict] = ()) -> List[Dict]:
    """One record per (seed 001 row, metric, step): the step's mean, std and seeds (see the module docstring);
    a step whose runs are missing is left out, and so are the sum and the residual; the steps of seed 001's
    head and input (`head`, `head_input`: their runs under seed 001's protocol) are there only when those
    runs are. Runs: model, seed, metrics (the class shares from `with_class_shares`)."""
    records = []
    for stage in SEED001_MODELS:
        row = MODELS[stage][1]
        for metric, theirs in seed001_reported(stage).items():
            if stage == BASELINE:  # no encoder below the word-piece embedding, no KL loop
                base = by_seed(leak_free, BASELINE, metric)
                steps = [(BASELINE_STARTS_FROM, summary(list(base.values()))),
                         ("protocol: seed 001's − leak-free",
                          paired_difference(by_seed(seed001, BASELINE, metric), base))]
                steps += detail_steps(seed001, head, head_input, BASELINE, metric)
            else:
                base = by_seed(leak_free, "bert_ner", metric)
                protocol_ner = by_seed(seed001, "bert_ner", metric)
                steps = [(STARTS_FROM, summary(list(base.values()))),
                         ("encoder: MPNet − MiniLM", paired_difference(by_seed(mpnet, "bert_ner", metric), base)),
                         ("protocol: seed 001's − leak-free", paired_difference(protocol_ner, base))]
                steps += detail_steps(seed001, head, head_input, "bert_ner", metric)
            if stage not in (BASELINE, "bert_ner"):
                control = by_seed(seed001, CONTROL, metric)
                steps += [("extra labelled batches: control − BERT NER", paired_difference(control, protocol_ner)),
                          ("KL terms: stage − control", paired_difference(by_seed(seed001, stage, metric), control))]
            for step, value in steps:
                if value is not None:
                    records.append({"row": row, "metric": metric, "step": step, "mean": value[0], "std": value[1],
                                    "seeds": value[2]})
            if all(value is not None for _, value in steps):
                total = sum(value[0] for _, value in steps)
                records += [{"row": row, "metric": metric, "step": LEVELS[0], "mean": total, "std": float("nan"),
                             "seeds": 0},
                            {"row": row, "metric": metric, "step": LEVELS[1], "mean": theirs,
                             "std": float("nan"), "seeds": 1},
                            {"row": row, "metric": metric, "step": "unexplained: seed 001 − sum",
                             "mean": theirs - total, "std": float("nan"), "seeds": 0}]
    return records


def cell(record: Dict, digits: int) -> str:
    """"0.1234 ± 0.0056 (5)" for the start, signed for the differences, the value alone for the totals."""
    sign = "" if record["step"] in (STARTS_FROM, BASELINE_STARTS_FROM) + LEVELS else "+"
    value = f"{record['mean']:{sign}.{digits}f}"
    return value if record["seeds"] == 0 or record["step"] in LEVELS else \
        f"{value} ± {record['std']:.{digits}f} ({record['seeds']})"


def markdown(records: Sequence[Dict]) -> str:
    """A table per seed 001 row: a line per step, a column per metric ("mean ± std (n seeds)")."""
    lines = ["# Seed 001's table, step by step from the leak-free one", "",
             "Produced by `python -m examples.decompose_seed001_gap` from the runs of "
             "`results/reproduction/runs.csv`, `results/reproduction_seed001_protocol/runs.csv` and "
             "`results/encoder_mpnet/reproduction/runs.csv`, with those of `results/seed001_details/*/` where they exist "
             "(each with its command and commits). Each step is "
             "the mean ± sample std over seeds of per-seed differences (n seeds in brackets); accuracies in %. "
             "The module docstring defines the steps. The control runs the 80 pairs of the confidence stage; the "
             "data-distribution stage runs 40, so on its row the extra labelled batches count twice as many "
             "passes as the stage had. The last two columns split mean F1 exactly: the F1 of art, nat and eve "
             "summed and divided by 9, and the same for the other six classes."]
    for row in (MODELS[stage][1] for stage in SEED001_MODELS):
        steps = list(dict.fromkeys(r["step"] for r in records if r["row"] == row))
        lines += ["", f"## {row}", "", "| step | " + " | ".join(SEED001_METRICS) + " |",
                  "|---|" + "---|" * len(SEED001_METRICS)]
        for step in steps:
            cells = []
            for metric in SEED001_METRICS:
                found = [r for r in records if (r["row"], r["metric"], r["step"]) == (row, metric, step)]
                if not found:
                    cells.append("—")
                    continue
                cells.append(cell(found[0], 2 if metric.startswith("accuracy") else 4))
            lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="results", help="the results directory (default: %(default)s)")
    args = parser.parse_args(argv)

    def run() -> None:
        from ner.errors import DataError
        from ner.reporting import write_csv
        from ner.utils import write_text_atomic

        results = Path(args.results)
        folders = (results / "reproduction", results / "reproduction_seed001_protocol",
                   results / "encoder_mpnet" / "reproduction")
        missing = [str(folder / "runs.csv") for folder in folders if not (folder / "runs.csv").is_file()]
        if missing:
            raise DataError(f"no runs to decompose: {', '.join(missing)} not found (written by "
                            "examples.reproduce_seed001 under each protocol and encoder)")
        details = [results / "seed001_details" / name / "reproduction_seed001_protocol" for name in DETAILS]
        records = decompose(*(with_class_shares(read_records(folder / "runs.csv"),
                                                read_records(folder / "per_class_f1.csv"))
                              for folder in folders + tuple(details)))
        write_csv(results / "reproduction_gap.csv", records)
        text = markdown(records)
        write_text_atomic(results / "reproduction_gap.md", text)
        print(text)

    exit_on_error(run)


if __name__ == "__main__":
    main()
