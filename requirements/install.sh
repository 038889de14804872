#!/usr/bin/env bash
# Installs the service into the current Python environment as the image does, resolving nothing
# anew: PyTorch (torch.txt; TORCH_INDEX_URL picks the build: PyTorch's CPU index for the CPU image,
# PyPI's CUDA build when unset), the locked dependencies with the offline models' weights
# (service.txt), then the service itself: PACKAGE, a built wheel or a source tree (default: this
# checkout). tests/test_image.py runs it in a new virtual environment and starts the app.
#   requirements/install.sh [PACKAGE]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
package="${1:-$here/..}"
pip install --no-cache-dir -r "$here/torch.txt" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
pip install --no-cache-dir --no-deps -r "$here/service.txt"
pip install --no-cache-dir --no-deps "$package"
