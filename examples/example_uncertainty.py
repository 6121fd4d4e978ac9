"""Monte-Carlo dropout on a trained run: calibration, error detection and out-of-domain detection.

    python -m examples.example_uncertainty --run bert_ner
    python -m examples.example_uncertainty --run bert_ner --set uncertainty.mc_samples=50

T dropout passes (`uncertainty.mc_samples`, head dropout at `uncertainty.mc_dropout_rate`) over the run's
GMB test split and over out-of-domain sentences (`data.ood_path`: WNUT-17 tweets by default). Writes
`results/uncertainty/<run name>/`: `uncertainty.md` and `.csv` (accuracy and ECE with MC dropout off
and on, AUROC of each score for token and span errors, OOD AUROC) and the reliability diagram, ROC
curves, accuracy–rejection curves and OOD score histograms as PNG.
"""
import argparse
import sys
import time

from examples.common import exit_on_error


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="MC-dropout uncertainty study of a trained run.")
    parser.add_argument("--run", default="bert_ner", help="run name under saved_models/, or a run directory")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the run's config, e.g. --set uncertainty.mc_samples=50")
    args = parser.parse_args(argv)
    command = " ".join(["python -m examples.example_uncertainty"] + (sys.argv[1:] if argv is None else list(argv)))

    def run() -> None:
        from ner.config import load_config, resolve_path
        from ner.experiment import ModelInputs, model_for, prepare_data
        from ner.prediction import FirstPiecePredictor
        from ner.preprocessor import DataSplit, Sentence, make_dataset
        from ner.readers import read_conll
        from ner.runs import CONFIG_FILE, SPLIT_FILE, find_run
        from ner.reporting import markdown_table, write_csv
        from ner.tagging import OUTSIDE
        from ner.trainers.trainer import load_weights
        from ner.uncertainty.analysis import WordPredictions, analyse
        from ner.uncertainty.mc_dropout import MCDropoutPredictor
        from ner.uncertainty_reporting import (plot_accuracy_rejection, plot_ood_histograms, plot_reliability_diagram,
                                               plot_roc_curves)
        from ner.utils import set_seed, write_text_atomic

        run_dir = find_run(args.run, args.overrides)
        config = load_config(run_dir / CONFIG_FILE, args.overrides)
        set_seed(config.training.seed)
        data = prepare_data(config, split=DataSplit.from_json(run_dir / SPLIT_FILE))
        inputs = ModelInputs(config, data, model_for(config, data))
        load_weights(inputs.trainable_model, run_dir)
        uncertainty = config.uncertainty

        def predict(model, dataset):
            prediction = FirstPiecePredictor(model).predict(dataset, decode=False,
                                                            mc_predictor=MCDropoutPredictor.from_config(model, uncertainty))
            return WordPredictions(prediction.probabilities, prediction.mc.mean, prediction.mc.expected_entropy,
                                   prediction.labels, prediction.row_lengths)

        test_data = inputs.dataset("test", shuffle=False)
        start = time.perf_counter()
        test = predict(inputs.trainable_model, test_data)
        mc_seconds = time.perf_counter() - start
        encoded = data.encoded("test")
        sentences = data.sentences
        gold_tags = [sentences[sid].tags[offset:offset + count] for sid, offset, count
                     in zip(encoded.sentence_ids, encoded.word_offsets, encoded.num_words)]

        ood_sentences = [Sentence(s.sentence_id, s.words, (OUTSIDE,) * len(s.words))
                         for s in read_conll(resolve_path(config.data.ood_path), scheme_in="bio")]
        ood_encoded = data.featurizer.featurize(ood_sentences)
        print(f"[uncertainty] out-of-domain: {len(ood_sentences):,} sentences from {config.data.ood_path}; "
              f"{ood_encoded.stats.summary()}")
        ood = predict(inputs.model, make_dataset(ood_encoded, config.training.batch_size, shuffle=False, seed=None))

        label_map = data.label_map
        analysis = analyse(test, gold_tags, label_map.to_bio, ood, label_map.labels)
        out = config.results_dir().parent / "uncertainty" / config.run_name
        rows = [{"metric": f"token accuracy, {k}", "value": v} for k, v in analysis.accuracy.items()]
        rows += [{"metric": f"ECE (15 bins), {k}", "value": c.ece} for k, c in analysis.calibration.items()]
        rows += [{"metric": f"token-error AUROC, {k}", "value": r.auroc} for k, r in analysis.token_errors.items()]
        rows += [{"metric": f"span-error AUROC, {k} (max over span)", "value": r.auroc}
                 for k, r in analysis.span_errors.items()]
        rows += [{"metric": f"OOD AUROC, {k} (GMB test vs {len(ood_sentences)} OOD sentences)", "value": r.auroc}
                 for k, r in analysis.ood.items()]
        rows.append({"metric": f"MC prediction seconds on {len(encoded.sentence_ids)} test rows (T = "
                               f"{uncertainty.mc_samples}, incl. reading cached features)", "value": mc_seconds})
        write_csv(out / "uncertainty.csv", rows)
        best_ood = max(analysis.ood, key=lambda key: analysis.ood[key].auroc)
        figures = [
            plot_reliability_diagram(analysis.calibration, out / "reliability.png", f"{config.run_name}: reliability"),
            plot_roc_curves(analysis.token_errors, out / "roc_token_errors.png", "token misclassification"),
            plot_roc_curves(analysis.span_errors, out / "roc_span_errors.png", "wrong predicted spans"),
            plot_accuracy_rejection(analysis.rejection, out / "accuracy_rejection.png", "accuracy–rejection"),
            plot_ood_histograms(*analysis.ood_scores[best_ood], out / "ood_histograms.png",
                                f"GMB test vs {config.data.ood_path}", best_ood,
                                labels=("GMB test (in-domain)", "out-of-domain")),
        ]
        write_text_atomic(out / "uncertainty.md", "\n".join([
            f"# MC-dropout uncertainty: {config.run_name}",
            "",
            f"Produced by `{command}`: T = {uncertainty.mc_samples} samples, head dropout "
            f"{uncertainty.mc_dropout_rate} (training rate {config.model.head.dropout_rate}), encoder dropout "
            f"{'on' if uncertainty.encoder_dropout else 'off'}; {len(encoded.sentence_ids):,} GMB test rows, "
            f"{int(test.row_lengths.sum()):,} words. Scores: `smp` = 1 − max p̄, `entropy` = H(p̄), "
            "`mutual_information` = H(p̄) − E[H(p_t)]; a span's score is its most uncertain word's; a sentence's "
            "is the max or mean over its words.",
            "",
            markdown_table(rows, float_format=".4f"),
            "".join(f"![{path.name}]({path.name})\n\n" for path in figures),
        ]))
        for row in rows:
            print(f"[uncertainty] {row['metric']}: {row['value']:.4f}")
        print(f"[uncertainty] written to {out}")

    exit_on_error(run)


if __name__ == "__main__":
    main()
