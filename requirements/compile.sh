#!/usr/bin/env bash
# Regenerate requirements/lock.txt: every package of pyproject.toml and its extras, pinned.
#   pip install pip-tools && requirements/compile.sh
# torch is written as the public version (torch==2.13.0): the lock serves CPU and CUDA installs
# alike, and the index a user installs from picks the build (a local label such as +cpu would
# exist only on PyTorch's CPU index).
set -euo pipefail
cd "$(dirname "$0")/.."
pip-compile --quiet --extra test --extra slurm --extra cloud --strip-extras \
    --no-emit-index-url --no-emit-find-links --annotation-style line \
    --output-file requirements/lock.txt pyproject.toml
sed -i -E 's/^torch==([0-9.]+)\+[a-z0-9]+ /torch==\1       /' requirements/lock.txt
