"""Parity check: a run's serving SavedModel (`ner export`) against `evaluate` on the run's test part.

    python -m benchmarks.serving_parity --run RUN [--ensemble RUN ...] [--export DIR] [--chunk-size 256]

Evaluates the run as `ner evaluate` does (with `--ensemble`, decoded with those CRF runs as one CRF),
exports it (or loads `--export`), serves the test sentences through the signature in chunks of
`--chunk-size`, shortest first, and prints how many words and sentences get another tag from the export
than from `evaluate`, and both entity F1 against the gold tags. The two may differ only where they decode
differently: `evaluate` decodes each model row, the export of an ensemble each sentence whole (a sentence
longer than `data.max_seq_length` pieces fills several rows).
"""
import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="run name under saved_models/, or a run directory")
    parser.add_argument("--ensemble", nargs="+", default=[], metavar="RUN", help="other CRF runs to tag with")
    parser.add_argument("--export", help="a serving SavedModel of the same run(s); default: export to a temp dir")
    parser.add_argument("--chunk-size", type=int, default=256, help="sentences per signature call")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from ner.api import load
    from ner.evaluation import evaluate
    from ner.model_evaluator import entity_metrics
    from ner.serving import SIGNATURE, export_serving

    evaluation = evaluate(args.run, ensemble=args.ensemble)
    tagger = load(args.run, ensemble=args.ensemble)
    sentences = evaluation.sentences
    with tempfile.TemporaryDirectory(prefix="ner-parity-") as tmp:
        export_dir = args.export or export_serving(tagger, Path(tmp) / "export")
        serve = tf.saved_model.load(str(export_dir)).signatures[SIGNATURE]
        order = np.argsort([len(sentence.words) for sentence in sentences], kind="stable")
        served = [None] * len(sentences)
        start = time.perf_counter()
        for first in range(0, len(order), args.chunk_size):
            chunk = order[first:first + args.chunk_size]
            out = serve(sentences=tf.constant([" ".join(sentences[i].words) for i in chunk]))
            for k, i in enumerate(chunk):
                count = int(out["num_words"][k])
                if count != len(sentences[i].words):
                    raise RuntimeError(f"test sentence {sentences[i].sentence_id}: the signature read {count} words, "
                                       f"the corpus has {len(sentences[i].words)}")
                served[i] = tagger.label_map.to_bio([tag.decode() for tag in out["tags"][k, :count].numpy()])
        seconds = time.perf_counter() - start
    pairs = list(zip(served, evaluation.predicted_tags))
    other_words = sum(a != b for tags, want in pairs for a, b in zip(tags, want))
    other_sentences = sum(list(tags) != list(want) for tags, want in pairs)
    gold = [list(sentence.tags) for sentence in sentences]
    members = f" with {', '.join(args.ensemble)}" if args.ensemble else ""
    print(f"run {args.run}{members}: {len(sentences):,} test sentences, "
          f"{sum(len(s.words) for s in sentences):,} words served in {seconds:.1f} s")
    print(f"words tagged otherwise than evaluate: {other_words}, in {other_sentences} sentences")
    print(f"entity F1: evaluate {evaluation.report.entity.f1:.4f}, export {entity_metrics(gold, served).f1:.4f}")


if __name__ == "__main__":
    main()
