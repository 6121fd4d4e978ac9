"""Evaluates a trained run on its test split and writes tables and plots to `results/<run name>/`.

    python -m examples.example_evaluate_model --run bert_ner
    python -m examples.example_evaluate_model --run ner_baseline
    python -m examples.example_evaluate_model --run bert_crf --ensemble bert_crf_mpnet   # → results/bert_crf_ensemble2/

Writes metrics.csv, per_class.csv, entity_per_type.csv, confusion.csv, report.md, the confusion,
label-distribution and latent-PCA plots, and the config and split (sentence ids) the run used. With
`--ensemble`, the run is decoded together with other CRF runs of its split (`ner.crf_ensemble`).
"""
import argparse
import sys

from examples.common import exit_on_error
from ner.cli import evaluate_run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate a trained run and write its results.")
    parser.add_argument("--run", default="bert_ner", help="run name under saved_models/, or a run directory")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the run's config, e.g. --set data.gmb_path=/data/gmb.csv")
    parser.add_argument("--ensemble", nargs="+", default=[], metavar="RUN",
                        help="other CRF runs of the same split (any encoder) to decode with")
    parser.add_argument("--output", metavar="DIR", help="results directory (default results/<run>/, or "
                                                        "results/<run>_ensemble<M>/ for an ensemble of M runs)")
    args = parser.parse_args(argv)
    command = " ".join(["python -m examples.example_evaluate_model"] + list(sys.argv[1:] if argv is None else argv))
    exit_on_error(lambda: evaluate_run(args.run, args.overrides, command, args.ensemble, args.output))


if __name__ == "__main__":
    main()
