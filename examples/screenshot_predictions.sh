#!/usr/bin/env bash
# Renders `ner predict --format html` in headless Chromium and saves a screenshot (PNG) next to the page.
#
#   examples/screenshot_predictions.sh RUN TEXTS_FILE OUTPUT.png [THRESHOLD]
#
# RUN: a run name under saved_models/ or a run directory. TEXTS_FILE: one text per line (UTF-8).
# THRESHOLD (default 0.8): entities below it get the dashed "review" outline. The page is written to
# OUTPUT.html. Needs Debian's Chromium (`apt-get install chromium`); PYTHON (default `python`) must
# import this package. --no-sandbox lets Chromium run as root in a container.
#
# The screenshot in results/predictions_screenshot.png was made with
#   PYTHON=/work/main/.venv/bin/python examples/screenshot_predictions.sh \
#       saved_models/benchmark_gmb_bert_crf examples/screenshot_texts.txt results/predictions_screenshot.png
set -euo pipefail
if [ $# -lt 3 ]; then
    sed -n '2,9p' "$0" >&2
    exit 2
fi
run=$1 texts=$2 png=$3 threshold=${4:-0.8}
page="${png%.png}.html"
"${PYTHON:-python}" -m ner.cli predict --run "$run" --input "$texts" --format html --threshold "$threshold" \
    > "$page.tmp"
mv "$page.tmp" "$page"  # no half-written page if prediction fails
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,640 \
    --screenshot="$png" "file://$(realpath "$page")" 2>/dev/null
echo "[screenshot] $page rendered to $png"
