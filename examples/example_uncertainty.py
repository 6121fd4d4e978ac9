"""Uncertainty of a trained run: calibration, error detection and out-of-domain detection, for MC dropout
and the methods it is compared with.

    python -m examples.example_uncertainty --run bert_ner
    python -m examples.example_uncertainty --run bert_ner --set uncertainty.mc_samples=50
    python -m examples.example_uncertainty --run bert_ner --ensemble bert_ner_seed1 bert_ner_seed2

T dropout passes (`uncertainty.mc_samples`, head dropout at its training rate or at
`uncertainty.mc_dropout_rate`), temperature scaling fitted on the validation words, the Mahalanobis
distance of the latent vectors, and with `--ensemble` a deep ensemble of runs of the same split, over the
run's GMB test split and over out-of-domain sentences (`data.ood_path`: WNUT-17 tweets by default).
Writes `results/uncertainty/<run name>/`: `uncertainty.md` and `.csv` (one table: accuracy and ECE per
method, AUROC of each score for token and span errors, OOD AUROC, entity ECE and selective prediction)
and the reliability diagrams, ROC curves, accuracy–rejection curves and OOD score histograms as PNG. The
same study as `ner uncertainty --run RUN` (`ner.uncertainty.study`).
"""
import argparse
import sys

from examples.common import exit_on_error
from ner.cli import uncertainty_run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Uncertainty study of a trained run.")
    parser.add_argument("--run", default="bert_ner", help="run name under saved_models/, or a run directory")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the run's config, e.g. --set uncertainty.mc_samples=50")
    parser.add_argument("--ensemble", nargs="+", default=[], metavar="RUN",
                        help="other runs of the same split (other training.seed), averaged with --run as a "
                             "deep ensemble")
    args = parser.parse_args(argv)
    command = " ".join(["python -m examples.example_uncertainty"] + (sys.argv[1:] if argv is None else list(argv)))
    exit_on_error(lambda: uncertainty_run(args.run, args.overrides, command, ensemble=args.ensemble))


if __name__ == "__main__":
    main()
