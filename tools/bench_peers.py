#!/usr/bin/env python3
"""Sprig against ONNX Runtime on the same blobs: cross-check and benchmark.

Run through tools/bench-peers (which makes the venv and builds the binaries).
Batch 1, one thread, pinned by the caller (taskset); ORT and `sprig-edge bench`
rounds interleaved; medians and minimums in seconds.
"""
import argparse, json, os, platform, re, statistics, struct, subprocess, sys, tempfile, time

import numpy as np
import onnxruntime as ort


def read_idx(path):
    data = open(path, "rb").read()
    if data[0] != 0 or data[1] != 0 or data[2] != 8:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    rank = data[3]
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(dims)


def cpu_info():
    model, flags, fam = "", [], "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("cpu family") and "family" not in model:
                fam = line.split(":", 1)[1].strip()
            if re.match(r"model\s*:", line) and "family" not in model and model:
                model += f" (family {fam}, model {line.split(':', 1)[1].strip()})"
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    model = model or platform.processor()
    wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16"]
    return model, [f for f in wanted if f in flags]


def sprig_logits(edge, blob, idx):
    out = subprocess.run([edge, "run", blob, idx, "--logits"], check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        hexes = [t for t in line.split() if re.fullmatch(r"(0x)?[0-9a-fA-F]{8}", t)]
        if hexes:
            rows.append([struct.unpack("<f", struct.pack("<I", int(h, 16)))[0] for h in hexes])
    return np.array(rows, np.float32)


def normalised_input(images, mean, std, shape):
    # (p/255 - mean)/std, NHWC pixels to the ONNX NCHW input.
    n = images.shape[0]
    _, c, h, w = shape
    x = images.reshape(n, h, w, c).astype(np.float32) / np.float32(255)
    x = (x - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("blobs", nargs="*")
    ap.add_argument("--sprig", required=True)
    ap.add_argument("--edge", required=True)
    ap.add_argument("--images", default="Tests/Fixtures/ref-input.idx")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    model, isa = cpu_info()
    images = read_idx(a.images)
    tmp = tempfile.mkdtemp(prefix="bench-peers-")
    rows = []
    for blob in a.blobs:
        name = os.path.basename(blob).removesuffix(".sprig")
        row = {"blob": blob}
        onnx_path = os.path.join(tmp, name + ".onnx")
        r = subprocess.run([a.sprig, "export", blob, "--onnx", onnx_path], capture_output=True, text=True)
        if r.returncode != 0:
            row["error"] = r.stderr.strip()
            rows.append(row)
            continue
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        mean, std = io_normalisation(a.edge, blob)
        x = normalised_input(images, mean, std, inp.shape)
        ours = sprig_logits(a.edge, blob, a.images)
        theirs = np.concatenate([sess.run(None, {inp.name: x[i:i + 1]})[0].reshape(1, -1) for i in range(x.shape[0])])
        if ours.shape != theirs.shape:
            row["error"] = f"output shapes differ: sprig {ours.shape}, ort {theirs.shape}"
            rows.append(row)
            continue
        row["max_rel_diff"] = float(np.max(np.abs(ours - theirs) / np.maximum(np.max(np.abs(theirs)), 1e-30)))
        row["max_abs_diff"] = float(np.max(np.abs(ours - theirs)))
        row["outputs"] = int(ours.size)
        row["argmax_agree"] = int(np.sum(ours.argmax(1) == theirs.argmax(1)))
        row["images"] = int(ours.shape[0])
        # Benchmark: interleaved rounds.
        one = x[0:1]
        for _ in range(50):
            sess.run(None, {inp.name: one})
        ort_med, ort_min, sp_med, sp_min = [], [], [], []
        for _ in range(a.rounds):
            ts = []
            for _ in range(a.runs):
                t0 = time.perf_counter_ns(); sess.run(None, {inp.name: one}); ts.append(time.perf_counter_ns() - t0)
            ort_med.append(statistics.median(ts) * 1e-9); ort_min.append(min(ts) * 1e-9)
            b = json.loads(subprocess.run([a.edge, "bench", blob, "--runs", str(a.runs), "--json"], check=True,
                                          capture_output=True, text=True).stdout)
            sp_med.append(b["latency_seconds_median"]); sp_min.append(b["latency_seconds_min"])
        row.update(ort_seconds_median=statistics.median(ort_med), ort_seconds_min=min(ort_min),
                   sprig_seconds_median=statistics.median(sp_med), sprig_seconds_min=min(sp_min))
        row["ratio_sprig_to_ort"] = row["sprig_seconds_median"] / row["ort_seconds_median"]
        rows.append(row)
    result = {"cpu_model": model, "isa": isa, "onnxruntime_version": ort.__version__, "threads": 1, "batch": 1,
              "runs_per_round": a.runs, "rounds": a.rounds, "litert": "not done", "results": rows}
    if a.json:
        print(json.dumps(result))
        return
    print(f"CPU: {model}; ISA: {' '.join(isa)}; onnxruntime {ort.__version__}; batch 1, 1 thread, "
          f"{a.rounds} interleaved rounds of {a.runs} runs; LiteRT: not done")
    print(f"{'blob':<28}{'Sprig med':>11}{'Sprig min':>11}{'ORT med':>11}{'ORT min':>11}{'Sprig/ORT':>10}  cross-check")
    for r in rows:
        n = os.path.basename(r["blob"])
        if "error" in r:
            print(f"{n:<28}  not run: {r['error']}")
            continue
        us = lambda s: f"{s * 1e6:9.1f}µs"
        print(f"{n:<28}{us(r['sprig_seconds_median']):>11}{us(r['sprig_seconds_min']):>11}{us(r['ort_seconds_median']):>11}"
              f"{us(r['ort_seconds_min']):>11}{r['ratio_sprig_to_ort']:>10.2f}  max rel diff {r['max_rel_diff']:.2e} "
              f"over {r['outputs']} outputs, argmax agree {r['argmax_agree']}/{r['images']}")


def io_normalisation(edge, blob):
    """The input record's mean and std, as `sprig-edge info` prints them."""
    txt = subprocess.run([edge, "info", blob], check=True, capture_output=True, text=True).stdout
    m = re.search(r"\(p/255 - ([-+0-9.eE]+)\)/([-+0-9.eE]+)", txt)
    if not m:
        sys.exit(f"{blob}: no input normalisation in sprig-edge info")
    return float(m.group(1)), float(m.group(2))


if __name__ == "__main__":
    main()
