"""The handshake's device list against what the machine has: the CPU always, and each GPU that
nvidia-smi lists (with its model name and memory) when the daemon was built with CUDA."""
import os
import shutil
import subprocess

import pytest

from conftest import TENSORD_BIN


def machine_gpus():
    """[(index, name, memory MiB)] from nvidia-smi, or [] without a GPU or driver."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    r = subprocess.run([smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return []
    gpus = []
    for line in r.stdout.strip().splitlines():
        idx, name, mem = [f.strip() for f in line.split(",")]
        gpus.append((int(idx), name, int(mem)))
    return gpus


def built_with_cuda():
    return b"td_cuda_devices" in open(TENSORD_BIN, "rb").read()


def test_cpu_device(daemon, connect):
    hs = connect(daemon.unix).handshake()
    cpu = hs.devices[0]
    assert (cpu.name, cpu.kind) == ("cpu", "cpu")
    assert cpu.memory_bytes == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def test_cuda_devices_match_nvidia_smi(daemon, connect):
    gpus = machine_gpus()
    if not gpus:
        pytest.skip("no GPU on this machine (nvidia-smi lists none): CUDA discovery not exercised")
    if not built_with_cuda():
        pytest.skip("daemon built without CUDA (nvcc not found at configure time)")
    hs = connect(daemon.unix).handshake()
    cuda = [d for d in hs.devices if d.kind == "cuda"]
    assert [d.name for d in cuda] == [f"cuda:{i}" for i, _, _ in gpus]
    for d, (_, name, mem_mib) in zip(cuda, gpus):
        assert d.model == name
        # nvidia-smi reports total memory in MiB, rounded; allow 1% for driver reservations.
        assert abs(d.memory_bytes / 2**20 - mem_mib) <= 0.01 * mem_mib
