#!/bin/sh
# Install nvc-mri (with its shipped weights) into the virtual environment $VENV.
# Used by the Dockerfile and by tests/test_docker.py, so the image and the test install alike.
#   VENV        where the environment goes                 (/opt/venv in the image)
#   SOURCE      the project folder to install              (/opt/nvc-mri in the image)
#   TORCH_SPEC  the torch requirement                      (torch==2.13.0)
#   TORCH_INDEX index serving that torch; empty = the default indexes (CPU wheels index in the image)
set -eu
python3 -m venv "$VENV"
"$VENV/bin/pip" install --no-cache-dir ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} "$TORCH_SPEC"
"$VENV/bin/pip" install --no-cache-dir "$SOURCE[dask]"
"$VENV/bin/nvc-mri" --help >/dev/null
