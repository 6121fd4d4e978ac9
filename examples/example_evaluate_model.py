"""Evaluates a trained run on its test split and writes tables and plots to `results/<run name>/`.

    python -m examples.example_evaluate_model --run bert_ner
    python -m examples.example_evaluate_model --run ner_baseline

Writes metrics.csv, per_class.csv, entity_per_type.csv, confusion.csv, report.md, the confusion,
label-distribution and latent-PCA plots, and the config and split (sentence ids) the run used.
"""
import argparse
import sys

from examples.common import exit_on_error


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate a trained run and write its results.")
    parser.add_argument("--run", default="bert_ner", help="run name under saved_models/, or a run directory")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the run's config, e.g. --set data.gmb_path=/data/gmb.csv")
    args = parser.parse_args(argv)

    def run() -> None:
        from ner.config import save_config
        from ner.experiment import SPLIT_FILE, evaluate
        from ner.model_evaluator import latent_pca
        from ner.reporting import write_latent_plots, write_report

        evaluation = evaluate(args.run, args.overrides)
        config, report = evaluation.config, evaluation.report
        results_dir = config.results_dir()
        save_config(config, results_dir / "config.yaml")
        evaluation.split.to_json(results_dir / SPLIT_FILE)
        labels = evaluation.labels
        write_latent_plots(results_dir, latent_pca(evaluation.latent), evaluation.latent_true,
                           evaluation.latent_pred, labels, config.run_name)
        command = " ".join(["python -m examples.example_evaluate_model"] + sys.argv[1:])
        notes = (f"## Provenance\n\nProduced by `{command}` from the run in `{config.run_dir()}`; "
                 f"the config and split (sentence ids) it used are `config.yaml` and `{SPLIT_FILE}` here.\n")
        write_report(results_dir, report, config.run_name, extra_markdown=notes)
        summary = report.summary_row()
        print(f"[evaluate] {config.run_name}: accuracy {summary['accuracy']:.2%}, "
              f"accuracy without O {summary['accuracy_without_o']:.2%}, mean F1 {summary['mean_f1']:.4f}, "
              f"entity F1 {summary['entity_f1']:.4f}")
        print(f"[evaluate] tables and plots written to {results_dir}")

    exit_on_error(run)


if __name__ == "__main__":
    main()
