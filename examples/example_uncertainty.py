"""Monte-Carlo dropout on a trained run: calibration, error detection and out-of-domain detection.

    python -m examples.example_uncertainty --run bert_ner
    python -m examples.example_uncertainty --run bert_ner --set uncertainty.mc_samples=50

T dropout passes (`uncertainty.mc_samples`, head dropout at its training rate or at
`uncertainty.mc_dropout_rate`) over the run's GMB test split and over out-of-domain sentences (`data.ood_path`: WNUT-17 tweets by default). Writes
`results/uncertainty/<run name>/`: `uncertainty.md` and `.csv` (accuracy and ECE with MC dropout off
and on, AUROC of each score for token and span errors, OOD AUROC) and the reliability diagram, ROC
curves, accuracy–rejection curves and OOD score histograms as PNG. The same study as `ner uncertainty --run RUN`
(`ner.uncertainty.study`).
"""
import argparse
import sys

from examples.common import exit_on_error
from ner.cli import uncertainty_run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="MC-dropout uncertainty study of a trained run.")
    parser.add_argument("--run", default="bert_ner", help="run name under saved_models/, or a run directory")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the run's config, e.g. --set uncertainty.mc_samples=50")
    args = parser.parse_args(argv)
    command = " ".join(["python -m examples.example_uncertainty"] + (sys.argv[1:] if argv is None else list(argv)))
    exit_on_error(lambda: uncertainty_run(args.run, args.overrides, command))


if __name__ == "__main__":
    main()
