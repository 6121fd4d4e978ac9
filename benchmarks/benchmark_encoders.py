"""Benchmark: inference throughput and export size of TF-Hub encoders, side by side in one process.

    python -m benchmarks.benchmark_encoders \\
        --encoders saved_models/encoders/all-MiniLM-L6-v2 saved_models/encoders/all-mpnet-base-v2

Each encoder tokenises the first `--sentences` GMB sentences with its own vocabulary (the package's
WordPieceFeaturizer, max_seq_length 128) and encodes them frozen, in order, `--batch` rows at a time,
each batch trimmed to its longest row, through the compiled function the feature cache uses. After one
warm-up pass, `--repeats` timed passes; the best and the median are printed as sentences/s and word
pieces/s (padding not counted), with the encoder's size, parameters and SavedModel size on disk. Encoders
alternate pass by pass, so a change in the machine's load affects them alike.
"""
import argparse
import statistics
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")


def _disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _batches(encoded, batch: int) -> List[Dict[str, np.ndarray]]:
    out = []
    for begin in range(0, len(encoded.input_mask), batch):
        rows = slice(begin, begin + batch)
        width = int(encoded.input_mask[rows].sum(1).max())
        out.append({name: getattr(encoded, name)[rows, :width] for name in _INPUTS})
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoders", nargs="+", required=True, help="encoder handles (local SavedModels)")
    parser.add_argument("--gmb", default=None, help="GMB ner_dataset.csv (default: the config's data.gmb_path)")
    parser.add_argument("--sentences", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import ner  # noqa: F401  (sets TF_USE_LEGACY_KERAS)
    import tensorflow as tf

    from ner.config import CONFIG_DIR, load_config, resolve_path
    from ner.encoders.hub_encoder import encoder_info, encoder_vocab, load_encoder, resolve_handle
    from ner.feature_cache import make_encode_fn
    from ner.preprocessor import WordPieceFeaturizer
    from ner.readers import read_gmb_csv
    from ner.tagging import LabelMap

    gmb = args.gmb or resolve_path(load_config(CONFIG_DIR / "config.yaml").data.gmb_path)
    sentences = read_gmb_csv(gmb)[:args.sentences]
    runs = {}
    for handle in args.encoders:
        vocab = encoder_vocab(handle)
        featurizer = WordPieceFeaturizer(vocab.vocab_path, vocab.do_lower_case, 128, LabelMap.for_scheme("io"))
        encoded = featurizer.featurize(sentences)
        layer = load_encoder(handle, trainable=False)
        batches = _batches(encoded, args.batch)
        runs[handle] = {
            "encode": make_encode_fn(layer, use_all_layers=False),
            "batches": [{k: tf.constant(v) for k, v in b.items()} for b in batches],
            "pieces": int(encoded.input_mask.sum()),
            "rows": len(encoded.input_mask),
            "info": encoder_info(layer),
            "params": sum(int(np.prod(v.shape)) for v in layer.weights if v.dtype != tf.bool),
            "disk": _disk_bytes(Path(resolve_handle(handle))),
            "seconds": [],
        }
    for repeat in range(args.repeats + 1):  # pass 0 is the warm-up
        for run in runs.values():
            start = time.perf_counter()
            for batch in run["batches"]:
                run["encode"](batch).numpy()
            if repeat:
                run["seconds"].append(time.perf_counter() - start)

    print(f"{len(sentences)} GMB sentences, batch {args.batch}, {args.repeats} timed passes after a warm-up; "
          f"TensorFlow {tf.__version__}, {len(tf.config.list_physical_devices('GPU'))} GPUs")
    print("| encoder | layers x hidden | parameters | SavedModel on disk | rows | word pieces "
          "| sentences/s (best / median) | pieces/s (best) |")
    print("|---|---|---|---|---|---|---|---|")
    for handle, run in runs.items():
        best, median = min(run["seconds"]), statistics.median(run["seconds"])
        info = run["info"]
        print(f"| {Path(handle).name} | {info.num_layers} x {info.hidden_size} | {run['params'] / 1e6:.1f} M "
              f"| {run['disk'] / 1e6:.0f} MB | {run['rows']} | {run['pieces']:,} "
              f"| {len(sentences) / best:.1f} / {len(sentences) / median:.1f} | {run['pieces'] / best:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
