#!/usr/bin/env bash
# Benchmark-only virtual environment for the spaCy side of bench/ner_quality.py: spaCy 3.8's own NER training
# (`spacy init config` + `spacy train`, CPU, no transformers). spaCy is not a SpanLab dependency. Safe to run
# again; `--force` rebuilds it.
#   bash bench/setup_spacy_env.sh            -> bench/.venv-spacy
# No pretrained spaCy pipeline is downloaded: the benchmark trains from a blank English pipeline
# (`--optimize efficiency`, no static vectors), so nothing but PyPI packages is needed.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=.venv-spacy
if [ "${1:-}" = "--force" ]; then
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  echo '*' > "$VENV/.gitignore"   # never committed
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "spacy==3.8.18"
"$VENV/bin/python" -c "import spacy, thinc, numpy; print('spacy', spacy.__version__, 'thinc', thinc.__version__, 'numpy', numpy.__version__)"
