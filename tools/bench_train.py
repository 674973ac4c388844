#!/usr/bin/env python3
"""Sprig's trainer against OpenBLAS and PyTorch on this machine, side by side.

Run through tools/bench-train (which makes the venv, builds `sprig` and pins the run
to the cores it names). Two measurements, each interleaved in rounds:

  GEMM     C[M][N] = A[M][K]·B[K][N], float32, row-major, no transposes, at the same
           shapes: Sprig's sgemm through `sprig bench --shapes … --gemm-threads T`
           against OpenBLAS through numpy.matmul(a, b, out=c) (numpy's bundled
           OpenBLAS, its thread count set by threadpoolctl). 1 thread on --core,
           2 threads on --cores. Each side: untimed warm-up calls for 50 ms (at
           least one), then `iterations` timed calls; the round's figure is their
           median.
  training forward + backward + optimizer step at batch 64 on random data, at 2
           threads on --cores, Sprig (`sprig bench --models …`) against PyTorch
           (torch.set_num_threads(2)). PyTorch's networks are built from the
           descriptions `sprig bench` prints (tools/torch_bridge.py's build_module),
           so they are Sprig's architectures layer for layer (the parameter counts
           are checked); both sides use `sprig train`'s optimizer: SGD, learning
           rate 0.05, momentum 0.9, weight decay 5e-4. No data loading on either
           side. The round's figure is images per second over its timed steps.

Round r runs every GEMM thread count (Sprig, OpenBLAS), then every model (Sprig,
PyTorch), the order of the pair alternating between rounds, with --settle seconds
of rest after each side: OpenBLAS's and OpenMP's workers spin for a while after a
call and would slow whatever runs next on their cores. Medians over rounds;
ratios are Sprig/peer (above 1: Sprig is faster). The 2-thread figures need both
cores otherwise idle: a busy second core starves a spinning peer far more than
Sprig (the load average is printed).
"""
import argparse, json, os, platform, statistics, subprocess, sys, time

import cpuinfo

HERE = os.path.dirname(os.path.abspath(__file__))

# (name for --models, `sprig bench --models` item, head classes, label)
MODELS = {
    "cnn": ("cnn", 5, "cnn supernet 32-64-128-128, 5 classes"),
    "mlp": ("mlp", 5, "MLP 784-512-256-5"),
    "mlp@0.5": ("mlp@0.5", 10, "MLP 784-256-128-10"),
}
DEFAULT_SHAPES = "256x256x256,512x512x512,1024x1024x1024,12544x64x288"


def fail(message):
    print(f"bench-train: {message}", file=sys.stderr)
    sys.exit(1)


def progress(message):
    print(f"bench-train: {message}", file=sys.stderr, flush=True)


def parse_cores(text, what):
    try:
        cores = sorted({int(c) for c in text.split(",")})
    except ValueError:
        fail(f"{what}: '{text}' is not a comma-separated list of core numbers")
    allowed = os.sched_getaffinity(0)
    if not cores or not set(cores) <= allowed:
        fail(f"{what}: cores {cores} are not all among this process's cores {sorted(allowed)}")
    return cores


def parse_shapes(text):
    shapes = []
    for item in text.split(","):
        try:
            m, n, k = (int(v) for v in item.split("x"))
        except ValueError:
            fail(f"--shapes: '{item}' is not MxNxK")
        if min(m, n, k) < 1:
            fail(f"--shapes: '{item}' has a size below 1")
        shapes.append((item, m, n, k))
    return shapes


def run_sprig(sprig, cores, args):
    """`sprig bench ARGS --json` pinned to `cores`, as a dict."""
    cmd = ["taskset", "-c", ",".join(map(str, cores)), sprig, "bench"] + args + ["--json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{' '.join(cmd)} failed (exit {r.returncode}): {r.stderr.strip()}")
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError:
        fail(f"{' '.join(cmd)} printed no JSON object: {r.stdout[:200]!r}")


def busy_fractions(cores, seconds=1.0):
    """{core: fraction of the next `seconds` not idle}, from /proc/stat (others' load: we sleep)."""
    def sample():
        out = {}
        for line in open("/proc/stat"):
            if line.startswith("cpu") and line[3].isdigit():
                f = line.split()
                ticks = [int(v) for v in f[1:]]
                out[int(f[0][3:])] = (sum(ticks), ticks[3] + ticks[4])
        return out
    a = sample(); time.sleep(seconds); b = sample()
    return {c: 1 - (b[c][1] - a[c][1]) / max(1, b[c][0] - a[c][0]) for c in cores}


def wait_until_idle(cores, limit):
    """Waits up to `limit` seconds for every core of `cores` to be at least 90% idle over a second;
    returns the busiest core's fraction in the last second looked at."""
    deadline = time.time() + limit
    while True:
        busy = max(busy_fractions(cores).values())
        if busy < 0.1 or time.time() >= deadline:
            return busy
        progress(f"cores {sorted(cores)} busy ({busy:.0%}); waiting for them to be idle")


def openblas_info(np, threadpoolctl):
    """What numpy multiplies with: threadpoolctl's view of its BLAS, and numpy's build record."""
    blas = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    if not blas:
        fail("numpy loaded no BLAS that threadpoolctl can see")
    b = blas[0]
    if b.get("internal_api") != "openblas":
        fail(f"numpy's BLAS is {b.get('internal_api')} ({b.get('filepath')}), not OpenBLAS")
    build = {}
    try:
        build = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:
        pass
    return {"version": b.get("version"), "core_type": b.get("architecture"),
            "threading_layer": b.get("threading_layer"), "library": os.path.basename(b.get("filepath", "")),
            "numpy_version": np.__version__, "numpy_blas": f"{build.get('name', '?')} {build.get('version', '')}".strip(),
            "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE", "")}


def torch_libraries(torch):
    """The BLAS and convolution libraries torch was built with, from torch.__config__.show()."""
    found = []
    for line in torch.__config__.show().splitlines():
        line = line.strip(" -")
        if "Math Kernel Library Version" in line:
            found.append("MKL " + line.split("Version")[1].split("-")[0].strip())
        elif line.startswith("Intel(R) MKL-DNN") or line.startswith("Intel(R) oneDNN"):
            found.append("oneDNN " + line.split()[2])
    return ", ".join(found) or "?"


def main():
    ap = argparse.ArgumentParser(
        prog="tools/bench-train",
        description="GEMM GFLOP/s of Sprig against OpenBLAS (1 and 2 threads) and training images/s of the "
                    "cnn supernet and both MLPs against PyTorch (2 threads), side by side in interleaved rounds. "
                    "Medians over rounds; ratios Sprig/peer.",
        epilog="Run through tools/bench-train, which makes .build/train-venv and builds sprig -c release.")
    ap.add_argument("--sprig", default=".build/release/sprig", help="the sprig binary (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default: %(default)s)")
    ap.add_argument("--shapes", default=DEFAULT_SHAPES, help="GEMM shapes, MxNxK comma-separated, or none (default: %(default)s)")
    ap.add_argument("--iterations", type=int, default=0,
                    help="timed GEMM calls per shape, side and round (default: 20, 5 above 2e8 multiply-adds)")
    ap.add_argument("--models", default="cnn,mlp,mlp@0.5",
                    help="networks to train: cnn (the supernet), mlp (784-512-256-5), mlp@0.5 (784-256-128-10), "
                         "comma-separated, or none (default: %(default)s)")
    ap.add_argument("--steps", type=int, default=0, help="timed training steps per model, side and round "
                    "(default: 300 for the MLPs, 40 for cnn)")
    ap.add_argument("--train-threads", type=int, choices=(1, 2), default=2,
                    help="training threads: 2 on --cores, or 1 on --core (default: %(default)s)")
    ap.add_argument("--batch", type=int, default=64, help="training batch, `sprig train`'s default (default: %(default)s)")
    ap.add_argument("--core", default="0", help="the core of the 1-thread GEMMs (default: %(default)s)")
    ap.add_argument("--cores", default="0,1", help="the two cores of the 2-thread GEMMs and the training (default: %(default)s)")
    ap.add_argument("--openblas-coretype", default="",
                    help="OPENBLAS_CORETYPE for numpy's OpenBLAS, e.g. SkylakeX (default: OpenBLAS's own detection)")
    ap.add_argument("--settle", type=float, default=0.5,
                    help="seconds of rest after each side, so that one side's spinning worker threads (OpenBLAS's, "
                         "OpenMP's) are asleep before the other starts (default: %(default)s)")
    ap.add_argument("--wait-idle", type=float, default=120,
                    help="before each round, wait up to this many seconds for the cores to be 90%% idle "
                         "(0: do not look) (default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    a = ap.parse_args()
    if a.rounds < 1 or a.iterations < 0 or a.steps < 0 or a.batch < 1 or a.settle < 0:
        fail("--rounds and --batch must be positive, --iterations and --steps not negative")
    one = parse_cores(a.core, "--core")
    two = parse_cores(a.cores, "--cores")
    if len(one) != 1 or len(two) != 2:
        fail(f"--core takes one core and --cores two, got {one} and {two}")
    shapes = [] if a.shapes == "none" else parse_shapes(a.shapes)
    tcores = two if a.train_threads == 2 else one
    models = [] if a.models == "none" else a.models.split(",")
    for m in models:
        if m not in MODELS:
            fail(f"--models: '{m}' is not one of {', '.join(MODELS)}")
    if not os.access(a.sprig, os.X_OK):
        fail(f"{a.sprig}: no sprig binary there (build it: swift build -c release --product sprig)")

    # OpenBLAS reads OPENBLAS_CORETYPE when numpy loads it; its threads start with this process's cores.
    if a.openblas_coretype:
        os.environ["OPENBLAS_CORETYPE"] = a.openblas_coretype
    else:
        os.environ.pop("OPENBLAS_CORETYPE", None)
    os.environ.pop("OPENBLAS_NUM_THREADS", None)
    try:
        import numpy as np
        import threadpoolctl
        import torch
        from torch import nn
        sys.path.insert(0, HERE)
        import torch_bridge
    except ImportError as e:
        fail(f"{e} (run through tools/bench-train, which makes the venv)")
    blas = openblas_info(np, threadpoolctl)
    model, family, number, flags = cpuinfo.cpu_info()
    clock = time.perf_counter_ns

    # MARK: GEMM operands (OpenBLAS side), made once
    operands = {}
    for name, m, n, k in shapes:
        rng = np.random.default_rng(0x5EED)
        operands[name] = (rng.random((m, k), dtype=np.float32) - np.float32(0.5),
                          rng.random((k, n), dtype=np.float32) - np.float32(0.5), np.empty((m, n), np.float32))

    def iterations_for(m, n, k):
        return a.iterations or (5 if m * n * k > 200_000_000 else 20)

    def openblas_seconds(name, threads, cores):
        x, y, z = operands[name]
        os.sched_setaffinity(0, cores)
        with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
            warm_end = clock() + 50_000_000          # the warm-up rule of `sprig bench`
            np.matmul(x, y, out=z)
            while clock() < warm_end:
                np.matmul(x, y, out=z)
            ts = []
            for _ in range(iterations_for(x.shape[0], y.shape[1], x.shape[1])):
                t0 = clock(); np.matmul(x, y, out=z); ts.append(clock() - t0)
        return statistics.median(ts) * 1e-9

    # MARK: PyTorch training set-up (on the training cores from the start: torch's OpenMP
    # workers keep the cores of the thread that starts them)
    os.sched_setaffinity(0, tcores)
    torch.set_num_threads(a.train_threads)
    descriptions = {}
    if models:
        # The networks' descriptions and parameter counts, from one short `sprig bench` each.
        for m in models:
            item, classes, _ = MODELS[m]
            d = run_sprig(a.sprig, tcores, ["--shapes", "none", "--models", item, "--classes", str(classes),
                                            "--steps", "1", "--batch", str(a.batch)])
            t = d["training"][0]
            descriptions[m] = (t["architecture"], t["parameters"], t["optimizer"])
    trainers = {}
    for m in models:
        description, sprig_params, opt = descriptions[m]
        net = torch_bridge.build_module(description)
        net.train()
        params = sum(p.numel() for p in net.parameters())
        if params != sprig_params:
            fail(f"{m}: PyTorch's network has {params} parameters, Sprig's {sprig_params}")
        i = description["input"]
        g = torch.Generator().manual_seed(2)
        x = torch.randn(a.batch, i["channels"], i["height"], i["width"], generator=g)
        y = torch.randint(0, description["head"]["classes"], (a.batch,), generator=g)
        optimizer = torch.optim.SGD(net.parameters(), lr=opt["learning_rate"], momentum=opt["momentum"],
                                    weight_decay=opt["weight_decay"])
        loss = nn.CrossEntropyLoss()

        def step(net=net, x=x, y=y, optimizer=optimizer, loss=loss):
            optimizer.zero_grad()
            loss(net(x), y).backward()
            optimizer.step()
        for _ in range(3):
            step()
        trainers[m] = (step, params)

    def torch_images_per_second(m, steps):
        step, _ = trainers[m]
        os.sched_setaffinity(0, tcores)
        step()
        ts = []
        start = clock()
        for _ in range(steps):
            t0 = clock(); step(); ts.append(clock() - t0)
        return steps * a.batch / ((clock() - start) * 1e-9), statistics.median(ts) * 1e-9

    def steps_for(m):
        return a.steps or (40 if m == "cnn" else 300)

    # MARK: Interleaved rounds
    load_start = os.getloadavg()
    thread_sets = [(1, one), (2, two)]
    gemm = {(name, t): {"sprig": [], "openblas": []} for name, *_ in shapes for t, _ in thread_sets}
    train = {m: {"sprig": [], "torch": [], "sprig_step": [], "torch_step": []} for m in models}
    sprig_isa = ""
    busy_before = []
    for r in range(a.rounds):
        if a.wait_idle > 0:
            busy_before.append(wait_until_idle(set(one) | (set(two) if shapes else set()) | (set(tcores) if models else set()), a.wait_idle))
        sprig_first = r % 2 == 0
        for threads, cores in thread_sets:
            if not shapes:
                break
            progress(f"round {r + 1}/{a.rounds}: GEMM, {threads} thread(s) on core(s) {cores}")

            def sprig_side():
                nonlocal sprig_isa
                args = ["--shapes", ",".join(s[0] for s in shapes), "--gemm-threads", str(threads), "--models", "none"]
                if a.iterations:
                    args += ["--iterations", str(a.iterations)]
                d = run_sprig(a.sprig, cores, args)
                sprig_isa = d.get("instruction_set", "")
                for (name, *_), g in zip(shapes, d["gemm"]):
                    gemm[(name, threads)]["sprig"].append(g["runs"][0]["seconds_median"])

            def peer_side():
                for name, *_ in shapes:
                    gemm[(name, threads)]["openblas"].append(openblas_seconds(name, threads, cores))
            for side in ((sprig_side, peer_side) if sprig_first else (peer_side, sprig_side)):
                side()
                time.sleep(a.settle)
        for m in models:
            progress(f"round {r + 1}/{a.rounds}: training {m}, {a.train_threads} thread(s) on core(s) {tcores}")
            item, classes, _ = MODELS[m]
            steps = steps_for(m)

            def sprig_side():
                d = run_sprig(a.sprig, tcores, ["--shapes", "none", "--models", item, "--classes", str(classes),
                                                "--threads", str(a.train_threads), "--steps", str(steps), "--batch", str(a.batch)])
                t = d["training"][0]
                train[m]["sprig"].append(t["images_per_second"])
                train[m]["sprig_step"].append(t["step_seconds_median"])

            def peer_side():
                ips, step_median = torch_images_per_second(m, steps)
                train[m]["torch"].append(ips)
                train[m]["torch_step"].append(step_median)
            for side in ((sprig_side, peer_side) if sprig_first else (peer_side, sprig_side)):
                side()
                time.sleep(a.settle)

    # MARK: Results
    med = statistics.median
    gemm_rows = []
    for name, m, n, k in shapes:
        for threads, cores in thread_sets:
            g = gemm[(name, threads)]
            flops = 2.0 * m * n * k
            s, o = med(g["sprig"]), med(g["openblas"])
            gemm_rows.append({"shape": name, "m": m, "n": n, "k": k, "threads": threads, "cores": cores,
                              "iterations": a.iterations or iterations_for(m, n, k),
                              "sprig_seconds_median": s, "openblas_seconds_median": o,
                              "sprig_gflops": flops / s * 1e-9, "openblas_gflops": flops / o * 1e-9,
                              "sprig_gflops_rounds": [flops / t * 1e-9 for t in g["sprig"]],
                              "openblas_gflops_rounds": [flops / t * 1e-9 for t in g["openblas"]],
                              "ratio_sprig_to_openblas": o / s, "meets_target": o / s >= 0.9})
    train_rows = []
    for m in models:
        t = train[m]
        s, p = med(t["sprig"]), med(t["torch"])
        train_rows.append({"model": m, "network": MODELS[m][2], "classes": MODELS[m][1], "parameters": trainers[m][1],
                           "batch": a.batch, "threads": a.train_threads, "cores": tcores, "steps": steps_for(m),
                           "sprig_images_per_second": s, "torch_images_per_second": p,
                           "sprig_step_seconds_median": med(t["sprig_step"]), "torch_step_seconds_median": med(t["torch_step"]),
                           "sprig_images_per_second_rounds": t["sprig"], "torch_images_per_second_rounds": t["torch"],
                           "ratio_sprig_to_torch": s / p, "meets_target": s / p >= 1.0})
    result = {"cpu_model": model, "cpu_family": family, "cpu_model_number": number, "cpu_flags": flags,
              "sprig_instruction_set": sprig_isa or "(no GEMM run)", "openblas": blas,
              "torch_version": torch.__version__, "torch_num_threads": torch.get_num_threads(),
              "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch_libraries": torch_libraries(torch),
              "rounds": a.rounds, "core_1_thread": one, "cores_2_threads": two, "settle_seconds": a.settle,
              "load_average_start": load_start[0], "load_average_end": os.getloadavg()[0],
              "busiest_core_before_rounds": busy_before,
              "optimizer": descriptions[models[0]][2] if models else None,
              "targets": {"gemm_ratio_at_least": 0.9, "training_ratio_at_least": 1.0},
              "gemm": gemm_rows, "training": train_rows}
    if a.json:
        print(json.dumps(result))
        return
    print(f"CPU: {model} (family {family}, model {number}); flags: {' '.join(flags)}")
    print(f"Sprig kernels: {result['sprig_instruction_set']}; OpenBLAS {blas['version']} core type {blas['core_type']} "
          f"({blas['numpy_blas']}, numpy {blas['numpy_version']}, {blas['threading_layer']} threads"
          + (f", OPENBLAS_CORETYPE={blas['openblas_coretype_env']}" if blas["openblas_coretype_env"] else "") + ")"
          f"; PyTorch {torch.__version__} ({result['torch_cpu_capability']}; {result['torch_libraries']})")
    print(f"{a.rounds} interleaved rounds; 1 thread on core {one[0]}, 2 threads on cores {','.join(map(str, two))}; medians; "
          f"load average {result['load_average_start']:.2f} at the start, {result['load_average_end']:.2f} at the end"
          + (f"; busiest core in the second before each round: {', '.join(f'{b:.0%}' for b in busy_before)}" if busy_before else ""))
    if gemm_rows:
        print(f"\n{'GEMM MxNxK':<18}{'threads':>8}{'Sprig':>10}{'OpenBLAS':>10}{'Sprig/OB':>10}   (GFLOP/s, median call)")
        for g in gemm_rows:
            flag = "" if g["meets_target"] else "   below 0.9"
            print(f"{g['shape']:<18}{g['threads']:>8}{g['sprig_gflops']:>10.1f}{g['openblas_gflops']:>10.1f}"
                  f"{g['ratio_sprig_to_openblas']:>10.2f}{flag}")
    if train_rows:
        print(f"\n{f'training (batch {a.batch}, {a.train_threads} thread' + ('s)' if a.train_threads == 2 else ')'):<40}{'Sprig':>10}{'PyTorch':>10}{'Sprig/PT':>10}   (images/s)")
        for t in train_rows:
            flag = "" if t["meets_target"] else "   below 1.0"
            print(f"{t['network']:<40}{t['sprig_images_per_second']:>10.0f}{t['torch_images_per_second']:>10.0f}"
                  f"{t['ratio_sprig_to_torch']:>10.2f}{flag}")


if __name__ == "__main__":
    main()
