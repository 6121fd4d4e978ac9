"""Parity check: an exported MPNet SavedModel against Hugging Face's MPNetModel on the same checkpoint.

Two steps in two environments, because PyTorch and transformers are no dependency of this package:

    # 1. in this package's venv: tokenise with the exported vocabulary and run the SavedModel
    python -m benchmarks.mpnet_parity tf --checkpoint /tmp/mpnet/model \\
        --encoder saved_models/encoders/all-mpnet-base-v2 --gmb data/ner_dataset.csv --out /tmp/parity.npz
    # 2. in a venv with torch, transformers and numpy (nothing of this package is imported)
    python benchmarks/mpnet_parity.py hf --checkpoint /tmp/mpnet/model --inputs /tmp/parity.npz

Step 1 takes GMB sentences (the first few and the longest of the first 2,000, so long relative distances
are covered, plus one accented sentence), tokenises them as the package does (tensorflow-text's
BertTokenizer on the export's vocab_file, [CLS] pieces [SEP], padding 0) and saves ids, mask and the
encoder's outputs. Step 2 maps the ids back to the checkpoint's (the export moved the pad row to id 0),
checks that Hugging Face's own tokenizer gives the same ids, runs MPNetModel in float32 and prints the
largest absolute difference of every output, over real tokens and over all positions.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

_EXTRA_SENTENCE = "Zürich's café reopened on 3 May, said Mr. O'Neil of the U.N. (officially)."


def _sentences(gmb_path: str, first: int) -> List[str]:
    from ner.readers import read_gmb_csv

    sentences = read_gmb_csv(gmb_path)[:2000]
    longest = max(sentences, key=lambda s: len(s.words))
    return [" ".join(s.words) for s in sentences[:first]] + [" ".join(longest.words), _EXTRA_SENTENCE]


def run_tf(checkpoint: str, encoder_handle: str, gmb_path: str, first: int, out: str) -> None:
    import ner  # noqa: F401  (sets TF_USE_LEGACY_KERAS)
    import tensorflow as tf
    import tensorflow_text as tf_text

    from ner.encoders.hf_checkpoint import VOCAB_FILE, read_vocab
    from ner.encoders.hub_encoder import encoder_vocab, load_encoder
    from ner.encoders.mpnet_export import bert_style_vocab, read_special_tokens

    texts = _sentences(gmb_path, first)
    vocab = encoder_vocab(encoder_handle)
    exported = read_vocab(vocab.vocab_path)
    index = {token: i for i, token in enumerate(exported)}
    tokenizer = tf_text.BertTokenizer(
        str(vocab.vocab_path), lower_case=vocab.do_lower_case, token_out_type=tf.int32
    )
    pieces = [row.flat_values.numpy().tolist() for row in tokenizer.tokenize(texts)]
    rows = [[index["[CLS]"]] + p + [index["[SEP]"]] for p in pieces]
    width = max(map(len, rows))
    ids = np.array([r + [0] * (width - len(r)) for r in rows], np.int32)
    mask = (np.arange(width)[np.newaxis] < np.array([len(r) for r in rows])[:, np.newaxis]).astype(np.int32)
    outputs = load_encoder(encoder_handle, trainable=False)(
        {"input_word_ids": ids, "input_mask": mask, "input_type_ids": np.zeros_like(ids)}
    )
    ckpt = Path(checkpoint)
    vocab_path = ckpt / VOCAB_FILE
    source_ids = bert_style_vocab(read_vocab(vocab_path), read_special_tokens(ckpt), vocab_path).source_ids
    np.savez(
        out,
        texts=np.array(texts),
        input_word_ids=ids,
        input_mask=mask,
        source_ids=source_ids,
        sequence_output=outputs["sequence_output"].numpy(),
        pooled_output=outputs["pooled_output"].numpy(),
        encoder_outputs=np.stack([x.numpy() for x in outputs["encoder_outputs"]]),
    )
    print(f"{len(texts)} sentences, {int(mask.sum())} tokens, longest {width}; wrote {out}")


def run_hf(checkpoint: str, inputs: str) -> None:
    import torch
    from transformers import AutoTokenizer, MPNetModel

    torch.set_num_threads(1)
    saved = np.load(inputs)
    mask = saved["input_mask"]
    ids = saved["source_ids"][saved["input_word_ids"]]  # exported ids -> checkpoint ids
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    hf = tokenizer([str(t) for t in saved["texts"]], padding=True, return_tensors="np")
    same = hf["input_ids"].shape == ids.shape and (hf["input_ids"] == ids).all()
    same = same and (hf["attention_mask"] == mask).all()
    print(f"Hugging Face's tokenizer gives the same ids and mask: {bool(same)}")

    model = MPNetModel.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(ids, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
            output_hidden_states=True,
        )
    hidden = [h.numpy() for h in out.hidden_states[1:]]  # hidden_states[0] is the embedding output
    real = mask.astype(bool)
    print(f"{len(mask)} sentences, {int(mask.sum())} tokens; max |TF - HF| over real tokens / all positions:")
    per_layer = [(np.abs(saved["encoder_outputs"][i] - h)) for i, h in enumerate(hidden)]
    for i, diff in enumerate(per_layer):
        print(f"  encoder_outputs[{i:2d}]  {diff[real].max():.2e} / {diff.max():.2e}")
    seq = np.abs(saved["sequence_output"] - out.last_hidden_state.numpy())
    pooled = np.abs(saved["pooled_output"] - out.pooler_output.numpy())
    print(f"  sequence_output      {seq[real].max():.2e} / {seq.max():.2e}")
    print(f"  pooled_output        {pooled.max():.2e}")
    print(f"  all outputs          {max(max(d[real].max() for d in per_layer), seq[real].max(), pooled.max()):.2e}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    tf_step = sub.add_parser("tf", help="tokenise and run the exported SavedModel (this package's venv)")
    tf_step.add_argument("--checkpoint", required=True, help="the Hugging Face MPNet checkpoint directory")
    tf_step.add_argument("--encoder", required=True, help="the exported SavedModel")
    tf_step.add_argument("--gmb", required=True, help="GMB ner_dataset.csv")
    tf_step.add_argument("--first", type=int, default=9, help="how many of the first GMB sentences")
    tf_step.add_argument("--out", required=True, help=".npz file to write")
    hf_step = sub.add_parser("hf", help="compare with Hugging Face's MPNetModel (a venv with torch)")
    hf_step.add_argument("--checkpoint", required=True)
    hf_step.add_argument("--inputs", required=True, help="the .npz written by the tf step")
    args = parser.parse_args(argv)
    if args.step == "tf":
        run_tf(args.checkpoint, args.encoder, args.gmb, args.first, args.out)
    else:
        run_hf(args.checkpoint, args.inputs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
