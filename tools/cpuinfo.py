"""The machine a benchmark ran on, from /proc/cpuinfo (tools/bench_peers.py, tools/bench_train.py):
every figure is quoted with the CPU model and the instruction sets it has."""

import platform

# The flags that decide which kernels run (Sprig's and the peers').
WANTED = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile"]


def cpu_info():
    """(model name, family, model number, flags of interest) of the first CPU."""
    model, flags, family, number = "", [], "?", "?"
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name" and not model:
                model = value
            elif key == "cpu family" and family == "?":
                family = value
            elif key == "model" and number == "?":
                number = value
            elif key == "flags" and not flags:
                flags = value.split()
    except OSError:
        pass
    return model or platform.processor(), family, number, [f for f in WANTED if f in flags]
