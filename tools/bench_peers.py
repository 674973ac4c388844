#!/usr/bin/env python3
"""Sprig against ONNX Runtime and LiteRT on the same blobs, f32 and int8: cross-check and benchmark.

Run through tools/bench-peers (which makes the venv, builds the binaries and pins
to core 1). Each blob goes to the peers with its own weights:
  ORT     through `sprig export --onnx`: f32 blobs as a float graph, q8 blobs as a
          QDQ graph of the blob's own int8 tensors, which ORT fuses into its int8
          kernels at graph optimisation level all;
  LiteRT  through tools/tflite_from_blob.py, a TFLite flatbuffer written from the
          blob's records (the blob's int8 scheme is TFLite's), run by the default
          interpreter with its XNNPACK delegate.

Both peers run one thread. ORT: intra_op 1, inter_op 1, sequential execution;
each `session.run` is timed with perf_counter_ns in a tight loop over one
prepared feed, so its figures include the Python binding's cost of a call. That
cost is stated: every round also times session.run on a one-Identity graph (the
call floor), and the table shows ORT less that floor beside it. LiteRT: the
input is set once and each `invoke()` is timed the same way. `sprig-edge bench`
times invokes in-process.

Timing rounds are interleaved over all blobs (round r: for each blob, ORT, LiteRT,
then Sprig), so every ratio compares figures taken at the same time. Medians of
the rounds' medians, minimums of their minimums, in seconds.
"""
import argparse, json, os, platform, re, statistics, struct, subprocess, sys, tempfile, time

import cpuinfo

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sprig_blob import Blob
try:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tflite_from_blob import tflite_from_blob
    LITERT = True
except ImportError:
    LITERT = False


def read_idx(path):
    data = open(path, "rb").read()
    if data[0] != 0 or data[1] != 0 or data[2] != 8:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    rank = data[3]
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(dims)


def cpu_info():
    """(model name with its family and model number, flags of interest)."""
    model, family, number, flags = cpuinfo.cpu_info()
    return f"{model} (family {family}, model {number})", flags

def edge_info(edge, blob):
    """Precision (from `sprig-edge info`) and the input normalisation (mean, std), read
    from the blob's input record as stored: `info` prints them rounded to three digits."""
    txt = subprocess.run([edge, "info", blob], check=True, capture_output=True, text=True).stdout
    p = re.search(r"^precision:\s*(\S+)", txt, re.M)
    mean, std = Blob(open(blob, "rb").read()).input_normalisation()
    return (p.group(1) if p else "f32"), mean, std


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


def output_quantization(onnx_path):
    """(scale, zero point) of the DequantizeLinear that makes the graph output, or None."""
    g = onnx.load(onnx_path).graph
    out = g.output[0].name
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for n in g.node:
        if n.output[0] == out and n.op_type == "DequantizeLinear":
            return float(inits[n.input[1]]), int(inits[n.input[2]])
    return None


def session(onnx_path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])


def cross_check(row, peer, ours, theirs, quant):
    """Keys `<peer>_…`. f32: the largest relative difference. int8: the outputs' int8 values,
    recovered through the output Dequantize's (scale, zero point), compared value by value."""
    row["outputs"] = int(ours.size)
    row["images"] = int(ours.shape[0])
    row[f"{peer}_argmax_agree"] = int(np.sum(ours.argmax(1) == theirs.argmax(1)))
    row[f"{peer}_max_abs_diff"] = float(np.max(np.abs(ours - theirs)))
    row[f"{peer}_max_rel_diff"] = float(np.max(np.abs(ours - theirs)) / max(float(np.max(np.abs(theirs))), 1e-30))
    if quant is None:
        return
    s, z = quant
    q_ours = np.rint(ours.astype(np.float64) / s).astype(np.int64) + z
    q_theirs = np.rint(theirs.astype(np.float64) / s).astype(np.int64) + z
    lsb = np.abs(q_ours - q_theirs)
    row[f"{peer}_int8_outputs_differing"] = int(np.count_nonzero(lsb))
    row[f"{peer}_int8_max_lsb_diff"] = int(lsb.max())
    row[f"{peer}_int8_lsb_histogram"] = {str(k): int(np.count_nonzero(lsb == k)) for k in range(1, int(lsb.max()) + 1)
                                         if np.count_nonzero(lsb == k)}


def time_ort(sess, feed, runs):
    """Per-call seconds of `runs` session.run calls in a tight loop."""
    ts = [0] * runs
    run, clock = sess.run, time.perf_counter_ns
    for i in range(runs):
        t0 = clock(); run(None, feed); ts[i] = clock() - t0
    return [t * 1e-9 for t in ts]


def litert_interpreter(blob, xnnpack=True):
    """LiteRT on one thread; `xnnpack=False` runs TFLite's own builtin kernels (integer
    requantization, as Sprig's), used only for the cross-check."""
    kind = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(model_content=tflite_from_blob(blob), num_threads=1, experimental_op_resolver_type=kind)
    interp.allocate_tensors()
    return interp


def litert_outputs(interp, x_nchw):
    """One invoke per image; the input is the NCHW batch turned back to NHWC."""
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    rows = []
    for i in range(x_nchw.shape[0]):
        interp.set_tensor(inp, np.ascontiguousarray(x_nchw[i:i + 1].transpose(0, 2, 3, 1)))
        interp.invoke()
        rows.append(interp.get_tensor(out).reshape(-1).copy())
    return np.array(rows, np.float32)


def time_litert(interp, runs):
    """Per-call seconds of `runs` invoke() calls in a tight loop on the input already set."""
    ts = [0] * runs
    invoke, clock = interp.invoke, time.perf_counter_ns
    for i in range(runs):
        t0 = clock(); invoke(); ts[i] = clock() - t0
    return [t * 1e-9 for t in ts]


def call_floor_seconds(tmp, runs):
    """The median session.run time of a one-Identity graph on a [1, 1] tensor, same options:
    the fixed cost of a call (Python binding, feed and fetch, ORT's run set-up)."""
    from onnx import helper, TensorProto
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "floor",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])])
    path = os.path.join(tmp, "floor.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    sess = session(path)
    feed = {"x": np.zeros((1, 1), np.float32)}
    for _ in range(50):
        sess.run(None, feed)
    return statistics.median(time_ort(sess, feed, runs))


def clock_overhead_seconds(n=10000):
    clock = time.perf_counter_ns
    ts = []
    for _ in range(n):
        t0 = clock(); ts.append(clock() - t0)
    return statistics.median(ts) * 1e-9


def net_name(blob):
    base = os.path.basename(blob).removesuffix(".sprig")
    return re.sub(r"(^|[-_.])(f32|q8)($|[-_.])", r"\1*\3", base)


def litert_version():
    try:
        from importlib.metadata import version
        return version("ai-edge-litert")
    except Exception:
        return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("blobs", nargs="*")
    ap.add_argument("--sprig", required=True)
    ap.add_argument("--edge", required=True)
    ap.add_argument("--images", default="Tests/Fixtures/ref-input.idx")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-litert", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    use_litert = LITERT and not a.no_litert
    model, isa = cpu_info()
    images = read_idx(a.images)
    tmp = tempfile.mkdtemp(prefix="bench-peers-")
    rows, live = [], []
    for blob in a.blobs:
        name = os.path.basename(blob).removesuffix(".sprig")
        precision, mean, std = edge_info(a.edge, blob)
        row = {"blob": blob, "net": net_name(blob), "precision": precision}
        rows.append(row)
        onnx_path = os.path.join(tmp, name + ".onnx")
        r = subprocess.run([a.sprig, "export", blob, "--onnx", onnx_path], capture_output=True, text=True)
        if r.returncode != 0:
            row["error"] = r.stderr.strip()
            continue
        sess = session(onnx_path)
        inp = sess.get_inputs()[0]
        x = normalised_input(images, mean, std, inp.shape)
        ours = sprig_logits(a.edge, blob, a.images)
        theirs = np.concatenate([sess.run(None, {inp.name: x[i:i + 1]})[0].reshape(1, -1) for i in range(x.shape[0])])
        if ours.shape != theirs.shape:
            row["error"] = f"output shapes differ: sprig {ours.shape}, ort {theirs.shape}"
            continue
        quant = output_quantization(onnx_path)
        cross_check(row, "ort", ours, theirs, quant)
        feed = {inp.name: np.ascontiguousarray(x[0:1])}
        for _ in range(50):
            sess.run(None, feed)
        interp = None
        if use_litert:
            try:
                interp = litert_interpreter(blob)
                cross_check(row, "litert", ours, litert_outputs(interp, x), quant)
                cross_check(row, "tflite_builtin", ours, litert_outputs(litert_interpreter(blob, False), x), quant)
                interp.set_tensor(interp.get_input_details()[0]["index"], np.ascontiguousarray(x[0:1].transpose(0, 2, 3, 1)))
                for _ in range(50):
                    interp.invoke()
            except (ValueError, RuntimeError) as e:
                row["litert_error"] = str(e)
                interp = None
        live.append((row, sess, feed, interp, {k: [] for k in ("ort_med", "ort_min", "lt_med", "lt_min", "sp_med", "sp_min")}))

    # Interleaved rounds over all blobs, each round also timing ORT's empty-graph call floor.
    floors = []
    for _ in range(a.rounds):
        floors.append(call_floor_seconds(tmp, a.runs))
        for row, sess, feed, interp, acc in live:
            ts = time_ort(sess, feed, a.runs)
            acc["ort_med"].append(statistics.median(ts)); acc["ort_min"].append(min(ts))
            if interp is not None:
                ts = time_litert(interp, a.runs)
                acc["lt_med"].append(statistics.median(ts)); acc["lt_min"].append(min(ts))
            b = json.loads(subprocess.run([a.edge, "bench", row["blob"], "--runs", str(a.runs), "--json"],
                                          check=True, capture_output=True, text=True).stdout)
            acc["sp_med"].append(b["latency_seconds_median"]); acc["sp_min"].append(b["latency_seconds_min"])
            row["sprig_instruction_set"] = b.get("instruction_set", "")
    floor = statistics.median(floors) if floors else None
    for row, _, _, interp, acc in live:
        row.update(ort_seconds_median=statistics.median(acc["ort_med"]), ort_seconds_min=min(acc["ort_min"]),
                   sprig_seconds_median=statistics.median(acc["sp_med"]), sprig_seconds_min=min(acc["sp_min"]))
        row["ratio_sprig_to_ort"] = row["sprig_seconds_median"] / row["ort_seconds_median"]
        row["ort_seconds_median_less_call_floor"] = row["ort_seconds_median"] - floor
        row["ratio_sprig_to_ort_less_call_floor"] = row["sprig_seconds_median"] / row["ort_seconds_median_less_call_floor"]
        peers = [row["ort_seconds_median"]]
        if interp is not None:
            row.update(litert_seconds_median=statistics.median(acc["lt_med"]), litert_seconds_min=min(acc["lt_min"]))
            row["ratio_sprig_to_litert"] = row["sprig_seconds_median"] / row["litert_seconds_median"]
            peers.append(row["litert_seconds_median"])
        row["ratio_sprig_to_best_peer"] = row["sprig_seconds_median"] / min(peers)

    # Per net: q8 time over f32 time, for Sprig and for each peer.
    nets = {}
    for row in rows:
        if "error" not in row:
            nets.setdefault(row["net"], {})[row["precision"]] = row
    pairs = []
    for net, by in nets.items():
        if "f32" in by and "q8" in by:
            f, q = by["f32"], by["q8"]
            pair = {"net": net}
            for who in ("sprig", "ort", "litert"):
                if f"{who}_seconds_median" in f and f"{who}_seconds_median" in q:
                    pair[f"{who}_q8_to_f32"] = q[f"{who}_seconds_median"] / f[f"{who}_seconds_median"]
            pairs.append(pair)

    timing = ("ORT: 1 thread (intra_op 1, inter_op 1, sequential), graph optimisation all, CPU provider; "
              "each session.run timed with perf_counter_ns in a tight loop over one prepared feed, so the "
              "figures include the Python call; the call floor is the median session.run of a one-Identity "
              "graph on a [1,1] tensor with the same options, timed the same way in every round, and "
              "'less floor' subtracts it (an upper bound on the Python cost: it holds ORT's own per-run "
              "set-up too). LiteRT: Interpreter(num_threads=1) with its default XNNPACK delegate, input set "
              "once, each invoke() timed the same way. Sprig: sprig-edge bench, in-process clock_gettime, "
              "50 warm-up invokes.")
    result = {"cpu_model": model, "isa": isa, "onnxruntime_version": ort.__version__,
              "litert_version": litert_version() if use_litert else "not run", "threads": 1, "batch": 1,
              "runs_per_round": a.runs, "rounds": a.rounds, "timing": timing,
              "python_clock_overhead_seconds": clock_overhead_seconds(), "ort_call_floor_seconds": floor,
              "results": rows, "q8_to_f32": pairs}
    if a.json:
        print(json.dumps(result))
        return
    us = lambda s: f"{s * 1e6:8.1f}" if s is not None else "       -"
    ratio = lambda r: f"{r:8.2f}" if r is not None else "       -"
    print(f"CPU: {model}; ISA: {' '.join(isa)}; onnxruntime {ort.__version__}; LiteRT {result['litert_version']}; "
          f"batch 1, 1 thread; {a.rounds} interleaved rounds of {a.runs} runs")
    print(timing)
    print(f"Python perf_counter_ns pair: {result['python_clock_overhead_seconds'] * 1e9:.0f} ns; "
          f"ORT call floor: {us(floor).strip()} µs")
    print(f"\n{'blob':<26}{'prec':>5}{'Sprig':>9}{'min':>8}{'ORT':>9}{'min':>8}{'ORT-fl':>9}{'LiteRT':>9}{'min':>8}"
          f"{'S/ORT':>8}{'S/ORTfl':>8}{'S/LiteRT':>9}{'S/best':>8}   (medians and minimums, µs)")
    for r in rows:
        n = os.path.basename(r["blob"])
        if "error" in r:
            print(f"{n:<26}{r['precision']:>5}  not run: {r['error']}")
            continue
        print(f"{n:<26}{r['precision']:>5}{us(r['sprig_seconds_median']):>9}{us(r['sprig_seconds_min']):>8}"
              f"{us(r['ort_seconds_median']):>9}{us(r['ort_seconds_min']):>8}{us(r['ort_seconds_median_less_call_floor']):>9}"
              f"{us(r.get('litert_seconds_median')):>9}{us(r.get('litert_seconds_min')):>8}"
              f"{ratio(r['ratio_sprig_to_ort']):>8}{ratio(r['ratio_sprig_to_ort_less_call_floor']):>8}"
              f"{ratio(r.get('ratio_sprig_to_litert')):>9}{ratio(r['ratio_sprig_to_best_peer']):>8}")
        if "litert_error" in r:
            print(f"{'':<26}  LiteRT not run: {r['litert_error']}")
    if pairs:
        print(f"\n{'net':<26}{'Sprig q8/f32':>13}{'ORT q8/f32':>12}{'LiteRT q8/f32':>15}")
        for p in pairs:
            print(f"{p['net']:<26}{ratio(p.get('sprig_q8_to_f32')):>13}{ratio(p.get('ort_q8_to_f32')):>12}"
                  f"{ratio(p.get('litert_q8_to_f32')):>15}")
    print("\ncross-check (sprig-edge run --logits against each peer on the same images; int8: the output's "
          "int8 values. ORT and LiteRT's XNNPACK requantize in float and round once, Sprig rounds twice, "
          "TFLite-style; 'TFLite builtin kernels' is LiteRT without XNNPACK, integer requantization like Sprig's):")
    for r in rows:
        if "error" in r:
            continue
        for peer, label in (("ort", "ORT"), ("litert", "LiteRT"), ("tflite_builtin", "TFLite builtin kernels")):
            if f"{peer}_argmax_agree" not in r:
                continue
            line = f"  {os.path.basename(r['blob']):<26}{label:<24}argmax agree {r[f'{peer}_argmax_agree']}/{r['images']}, "
            if f"{peer}_int8_outputs_differing" in r:
                hist = ", ".join(f"{c} by {k} LSB" for k, c in r[f"{peer}_int8_lsb_histogram"].items()) or "none"
                line += f"int8 outputs differing {r[f'{peer}_int8_outputs_differing']}/{r['outputs']} ({hist})"
            else:
                line += f"max rel diff {r[f'{peer}_max_rel_diff']:.2e} over {r['outputs']} outputs"
            print(line)


if __name__ == "__main__":
    main()
