#!/bin/sh
# Installs PyTorch for bench/bench_train.py: Debian's python3-torch (a CPU build; bookworm
# ships 1.13) with apt, used through /usr/bin/python3. PyTorch is only the benchmark's
# peer; tensord itself never needs it.
set -eu
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    echo "PyTorch already importable by /usr/bin/python3:" \
        "$(/usr/bin/python3 -c 'import torch; print(torch.__version__)')"
    exit 0
fi
apt-cache policy python3-torch | sed -n '1,3p'
if ! apt-cache show python3-torch >/dev/null 2>&1; then
    echo "setup_torch.sh: no python3-torch package in the apt sources" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get install -y --no-install-recommends python3-torch
/usr/bin/python3 -c "import torch; print('PyTorch', torch.__version__, 'installed')"
