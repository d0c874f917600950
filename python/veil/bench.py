"""veil against insecure training and against training entirely inside the enclave.

Measured in one run on one machine (docs/design.md §7), for the same MLP
(w -> w -> w -> 10, ReLU, cross-entropy) and the same batches:

(a) insecure float32 training with numpy on the CPU (CuPy on a GPU);
(b) the same training entirely inside the enclave: float32, the enclave's own
    blocked AVX2 GEMM, one thread, no BLAS (Slalom's baseline). It runs in the
    bench enclave image, which holds the production enclave plus this baseline and
    is built only with VEIL_BUILD_BENCHMARKS (bench_image_path());
(c) veil verify training on the same device as (a), split into the enclave's
    part, the device's products and the device's transfers;
(d) veil private inference against (b)'s inference and verify-mode inference,
    on one batch of 64 rows (widths up to 2048: sealing the unblinding
    factors costs O(B n m) per slot inside the enclave).

The conv row (``veil bench --conv C,S,B``) measures (a) and (c) for a convolution
C -> C channels, 3x3, padding 1, on S x S images, batch B, then ReLU, 4x4 max pooling and
a dense layer to 10 classes: the enclave's share of a verify step of a CNN (docs/design.md
§4.4). Its (b) is the convolution's own products in the bench enclave: float32 training of
the (9C + 1) x C kernel matrix on the B·S² im2col rows (the same forward and update GEMMs;
pooling and the small dense layer left out).

Every time is the median over repeats. Ratios, not absolute times, are the result.
"""
from __future__ import annotations

import json
import os
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

import veil
from veil._trainer import available_cores

QUICK_WIDTHS = (256, 1024)
INFER_ROWS = 64
INFER_MAX_WIDTH = 2048
QUICK_BATCHES = (64, 256)
FULL_WIDTHS = (256, 512, 1024, 2048, 4096)
FULL_BATCHES = (32, 128, 256, 512)


_NOT_BUILT = ("the bench enclave image, which runs baseline (b), is not part of this "
              "installation: build veil with -DVEIL_BUILD_BENCHMARKS=ON "
              "(pip: -Ccmake.define.VEIL_BUILD_BENCHMARKS=ON)")
_bench_lock = threading.Lock()
_bench_enclave = None


def bench_image_path() -> Optional[str]:
    """The bench image baseline (b) runs in, or None where it was not built."""
    try:
        from veil import _bench
    except ImportError:
        return None
    path = _bench.default_image_path()
    return path if os.path.isfile(path) else None


def enclave_only_trainer(layers: List[tuple], config: dict):
    """Baseline (b) for a model: float32 training entirely inside the bench enclave.

    layers: (inputs, outputs, activation code) per layer; config: a Trainer's config.
    The bench image is loaded once per process, beside any production enclave.
    """
    global _bench_enclave
    try:
        from veil import _bench
    except ImportError:
        raise veil.EnclaveError(_NOT_BUILT) from None
    with _bench_lock:
        if _bench_enclave is None:
            _bench_enclave = _bench.NativeBenchEnclave()
    return _bench.NativeEnclaveOnlyTrainer(_bench_enclave, layers, config)


#: Above this relative spread of a configuration's step times the bench warns: on a loaded
#: machine the medians, and so the ratios, are not to be trusted.
SPREAD_WARN = 0.25


def spread(times: Sequence[float]) -> float:
    """The interquartile range of repeated timings relative to their median."""
    if len(times) < 2:
        return 0.0
    q1, _q2, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return (q3 - q1) / statistics.median(times)


def median_seconds(fn: Callable[[], object], repeats: int,
                   spreads: Optional[List[float]] = None) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    if spreads is not None:
        spreads.append(spread(times))
    return statistics.median(times)


def _model(width: int, classes: int = 10) -> veil.Sequential:
    return veil.Sequential([veil.Dense(width, width), veil.ReLU(),
                            veil.Dense(width, width), veil.ReLU(),
                            veil.Dense(width, classes)])


class NumpyFloat32MLP:
    """Baseline (a): plain float32 SGD with numpy (or CuPy), no enclave, no checks."""

    def __init__(self, weights: Sequence[np.ndarray], lr: float, xp=np):
        self.xp = xp
        self.w = [xp.asarray(w, dtype=xp.float32) for w in weights]
        self.lr = xp.float32(lr)

    def step(self, x, labels) -> None:
        xp = self.xp
        acts, pres = [], []
        a = x
        for i, w in enumerate(self.w):
            a1 = xp.concatenate([a, xp.ones((a.shape[0], 1), dtype=xp.float32)], axis=1)
            z = a1 @ w
            acts.append(a1)
            pres.append(z)
            a = xp.maximum(z, 0) if i + 1 < len(self.w) else z
        z = pres[-1]
        p = xp.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[xp.arange(p.shape[0]), labels] -= 1
        g = p
        for i in range(len(self.w) - 1, -1, -1):
            if i > 0:
                da = g @ self.w[i][:-1].T
                g_prev = da * (pres[i - 1] > 0)
            self.w[i] -= self.lr * (acts[i].T @ g)
            if i > 0:
                g = g_prev
        if xp is not np:
            xp.cuda.Stream.null.synchronize()


def conv_model(channels: int, side: int, classes: int = 10) -> veil.Sequential:
    """The conv row's network: one C -> C 3x3 convolution, then a small classifier."""
    pooled = side // 4
    return veil.Sequential([veil.Conv2d(channels, channels, 3, padding=1), veil.ReLU(),
                            veil.MaxPool2d(4), veil.Flatten(),
                            veil.Dense(channels * pooled * pooled, classes)],
                           input_shape=(channels, side, side))


class Float32CNN:
    """Baseline (a) for the conv row: float32 SGD of the same network with numpy or CuPy
    (``xp``), laid out by the same im2col code as the float64 reference (veil._conv)."""

    def __init__(self, model: veil.Sequential, weights: Sequence[np.ndarray], lr: float, xp=np):
        from veil import _conv

        self.xp, self.conv = xp, _conv
        self.shapes = _conv.shapes(model.wire_specs())
        self.w = [xp.asarray(w, dtype=xp.float32) for w in weights]
        self.lr = xp.float32(lr)

    def step(self, x, labels) -> None:
        xp, conv = self.xp, self.conv
        n = x.shape[0]
        c0, c1 = self.shapes
        a0 = conv.im2col(xp, c0, x, first_layer=True)
        a0 = xp.concatenate([a0, xp.ones((a0.shape[0], 1), xp.float32)], axis=1)
        z0 = a0 @ self.w[0]
        pooled, arg = conv.pool(xp, c0, xp.maximum(z0, 0), n)
        a1 = conv.im2col(xp, c1, pooled, first_layer=False)
        a1 = xp.concatenate([a1, xp.ones((n, 1), xp.float32)], axis=1)
        z = a1 @ self.w[1]
        p = xp.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[xp.arange(n), labels] -= 1
        d_pooled = conv.col2im(xp, c1, p @ self.w[1][:-1].T, n)
        dz0 = conv.unpool(xp, c0, d_pooled, arg, n) * (z0 > 0)
        self.w[1] -= self.lr * (a1.T @ p)
        self.w[0] -= self.lr * (a0.T @ dz0)
        if xp is not np:
            xp.cuda.Stream.null.synchronize()


@dataclass
class ConvRow:
    channels: int
    side: int
    batch: int
    insecure_s: float    # (a)
    enclave_only_s: Optional[float]  # (b), the convolution's products only
    verify_s: float      # (c)
    verify_enclave_s: float
    verify_device_s: float
    verify_transfer_s: float
    ratios: Dict[str, float] = field(default_factory=dict)
    spreads: Dict[str, float] = field(default_factory=dict)


def _conv_enclave_only_s(model: veil.Sequential, config: dict, x: np.ndarray,
                         repeats: int) -> Optional[float]:
    """(b) of the conv row: the convolution's GEMMs in the bench enclave, or None where
    the bench image is not built or the im2col rows exceed one enclave batch."""
    from veil import _conv
    from veil._trainer import MAX_BATCH

    shape = _conv.shapes(model.wire_specs())[0]
    cols = np.ascontiguousarray(_conv.im2col(np, shape, x, first_layer=True))
    rows, channels = cols.shape[0], model.layer_specs()[0][1]
    if bench_image_path() is None or rows > MAX_BATCH:
        return None
    baseline = enclave_only_trainer([(cols.shape[1], channels, 0)], dict(config, max_batch=rows))
    labels = (np.arange(rows) % channels).astype(np.int32)
    baseline.step(cols, labels)
    return median_seconds(lambda: baseline.step(cols, labels), repeats)


def measure_conv(channels: int, side: int, batch: int, device: str = "cpu",
                 repeats: int = 3) -> ConvRow:
    """The conv row: (a), (b) where it can run, and (c) of conv_model on the same batch."""
    lr_exp = 6
    rng = np.random.default_rng(channels * 7919 + side * 31 + batch)
    x = rng.random((batch, channels, side, side))
    y = rng.integers(0, 10, batch)
    model = conv_model(channels, side)
    trainer = veil.Trainer(model, device=device, lr=2.0 ** -lr_exp, seed=0, batch_size=batch)
    weights = trainer.export_weights()
    trainer.train_step(x, y)  # warm-up
    timer = _VerifyTimer(trainer, x, y)
    for _ in range(repeats):
        timer.step()
    times, (verify_s, split, transfer) = timer.times, timer.median()
    xp = np
    if trainer.device_name == "cuda":
        import cupy as xp  # noqa: F811
    insecure = Float32CNN(model, weights, 2.0 ** -(lr_exp + int(np.ceil(np.log2(batch)))), xp=xp)
    xf, yl = xp.asarray(x.reshape(batch, -1), dtype=xp.float32), xp.asarray(y)
    insecure.step(xf, yl)
    insecure_spread: List[float] = []
    insecure_s = median_seconds(lambda: insecure.step(xf, yl), repeats, insecure_spread)
    enclave_only_s = _conv_enclave_only_s(model, trainer.config, x.reshape(batch, -1), repeats)
    row = ConvRow(channels=channels, side=side, batch=batch, insecure_s=insecure_s,
                  enclave_only_s=enclave_only_s, verify_s=verify_s, verify_enclave_s=split["enclave"],
                  verify_device_s=split["device"] - transfer,
                  verify_transfer_s=transfer,
                  spreads={"insecure": insecure_spread[0], "verify": spread(times)})
    row.ratios = {"verify/insecure": row.verify_s / row.insecure_s,
                  "enclave_share": row.verify_enclave_s / row.verify_s,
                  "enclave_only/verify": enclave_only_s / row.verify_s if enclave_only_s else None}
    return row


def run_conv(channels: int, side: int, batch: int, device: str = "cpu", repeats: int = 3,
             out: Optional[str] = None, echo=print) -> dict:
    """Measure and print the conv row; write conv_bench.json into out."""
    row = measure_conv(channels, side, batch, device=device, repeats=repeats)
    echo(f"conv {channels}->{channels} channels, 3x3, {side}x{side}, batch {batch} "
         f"(then ReLU, 4x4 max pool, dense to 10); medians of {repeats} steps, device={device}")
    echo(f"(a) insecure float32 {_fmt(row.insecure_s)} ms | (b) its convolution's GEMMs in "
         f"the enclave {_fmt(row.enclave_only_s)} ms, (b)/(c) "
         f"{_ratio(row.ratios['enclave_only/verify'])} | (c) veil verify "
         f"{_fmt(row.verify_s)} ms: enclave {_fmt(row.verify_enclave_s)} ms, device "
         f"{_fmt(row.verify_device_s)} ms, transfer {_fmt(row.verify_transfer_s)} ms | "
         f"(c)/(a) {row.ratios['verify/insecure']:.2f} | enclave share "
         f"{100 * row.ratios['enclave_share']:.1f}% | spread +-"
         f"{50 * max(row.spreads.values()):.0f}%")
    result = {"device": device, "conv": asdict(row), "repeats": repeats,
              "cpu_count": os.cpu_count()}
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "conv_bench.json"), "w") as f:
            json.dump(result, f, indent=2)
    return result


@dataclass
class Row:
    width: int
    batch: int
    insecure_s: float                 # (a)
    enclave_only_s: Optional[float]   # (b)
    verify_s: float                   # (c) total
    verify_enclave_s: float
    verify_device_s: float
    verify_transfer_s: float
    knobs: Dict[str, int] = field(default_factory=dict)  # Trainer knobs changed from the defaults
    private_infer_s: Optional[float] = None       # (d)
    enclave_only_infer_s: Optional[float] = None
    verify_infer_s: Optional[float] = None
    ratios: Dict[str, float] = field(default_factory=dict)
    # Interquartile range / median of (a)'s and (c)'s step times.
    spreads: Dict[str, float] = field(default_factory=dict)
    # The enclave's part of (c) by enclave thread count (median seconds), timed in
    # turns on identical trainers; (c)'s own figures are those of the last count.
    enclave_by_threads: Dict[int, float] = field(default_factory=dict)
    # What a step cost beyond its passes (Trainer.stats' trace), per step of (c).
    trace: Dict[str, float] = field(default_factory=dict)
    # (b) by enclave thread count (its GEMM runs on the threads lent to its session).
    enclave_only_by_threads: Dict[int, float] = field(default_factory=dict)


#: Trainer.stats counters that trace a step (docs/design.md §7).
TRACE = ("limb_splits", "max_abs_refreshes", "update_operands_sent", "audits")


def default_threads() -> List[int]:
    """1 and the cores available: what `veil bench` times the enclave's part with."""
    cores = available_cores()
    return [1] if cores == 1 else [1, cores]


# The GEMM measurement needs a session, not a model: the smallest valid one.
_GEMM_CONFIG = dict(loss=0, frac_act=8, frac_grad=12, lr_exp=0, max_batch=8, seed=0,
                    act_clip=64.0, grad_clip=8.0, weight_max=2.0)


def gemm_throughput(size: int = 1024, repeats: int = 3) -> Dict[str, float]:
    """The enclave's GEMM against numpy's single-threaded float32 matmul, same sizes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; without it numpy keeps its threads
        threadpool_limits = None
    trainer = enclave_only_trainer([(8, 8, 0)], _GEMM_CONFIG)
    trainer.gemm(size, size, size, 1)  # warm-up
    enclave_s = median_seconds(lambda: trainer.gemm(size, size, size, 1), repeats)
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    if threadpool_limits is not None:
        with threadpool_limits(limits=1):
            a @ b
            numpy_s = median_seconds(lambda: a @ b, repeats)
        threads = 1
    else:
        a @ b
        numpy_s = median_seconds(lambda: a @ b, repeats)
        threads = os.cpu_count() or 1
    flops = 2.0 * size ** 3
    return {
        "size": size,
        "enclave_gflops": flops / enclave_s / 1e9,
        "numpy_gflops": flops / numpy_s / 1e9,
        "numpy_threads": threads,
        "ratio": numpy_s / enclave_s,
    }


# Knobs tried in order when the defaults could overflow the exact float64 range
# (8192 wide at batch 1024 needs one fractional bit less on the activations).
_NARROWER_KNOBS = ({}, {"frac_act": 7}, {"frac_act": 6})


class _VerifyTimer:
    """Times verify steps of one trainer on one batch: wall seconds, the time split and
    the device's copy seconds of each step."""

    def __init__(self, trainer: "veil.Trainer", x, y) -> None:
        self.trainer, self.x, self.y = trainer, x, y
        self.times: List[float] = []
        self.splits: List[dict] = []
        self.transfers: List[float] = []

    def step(self) -> None:
        device = self.trainer.python_device
        self.trainer.reset_timing()
        # Devices that move data (CUDA) report their copy time; host devices move none.
        moved = getattr(device, "transfer_seconds", 0.0)
        start = time.perf_counter()
        self.trainer.train_step(self.x, self.y)
        self.times.append(time.perf_counter() - start)
        self.splits.append(self.trainer.timing())
        self.transfers.append(getattr(device, "transfer_seconds", 0.0) - moved)

    def median(self):
        """(seconds, time split, copy seconds) of the median step."""
        i = int(np.argsort(self.times)[len(self.times) // 2])
        return self.times[i], self.splits[i], self.transfers[i]


def _trainer_within_budget(width: int, batch: int, device: str, lr_exp: int, threads: int):
    """The default Trainer, or the first narrower one the enclave accepts."""
    for knobs in _NARROWER_KNOBS:
        try:
            return veil.Trainer(_model(width), device=device, lr=2.0 ** -lr_exp, seed=0,
                                batch_size=batch, threads=threads, **knobs), knobs
        except veil.ConfigError as error:
            refusal = error
    raise refusal


def _enclave_by_threads(others: Dict[int, "veil.Trainer"], x, y, repeats: int,
                        main: Callable[[], None]) -> Dict[int, float]:
    """Median enclave seconds per step for each trainer, stepped in turns with main()."""
    times: Dict[int, List[float]] = {t: [] for t in others}
    for t in others.values():
        t.train_step(x, y)  # warm-up
    for _ in range(repeats):
        main()
        for threads, t in others.items():
            t.reset_timing()
            t.train_step(x, y)
            times[threads].append(t.timing()["enclave"])
    return {t: statistics.median(v) for t, v in times.items()}


def measure(width: int, batch: int, device: str = "cpu", repeats: int = 3,
            enclave_only: bool = True, inference: bool = True,
            threads: Optional[Sequence[int]] = None) -> Row:
    """One configuration: every baseline on the same batch."""
    lr_exp = 6
    threads = list(threads or default_threads())
    rng = np.random.default_rng(width * 7919 + batch)
    x = rng.random((batch, width))
    y = rng.integers(0, 10, batch)

    trainer, narrowed = _trainer_within_budget(width, batch, device, lr_exp, threads[-1])
    others = {t: _trainer_within_budget(width, batch, device, lr_exp, t)[0] for t in threads[:-1]}
    weights = trainer.export_weights()
    trainer.train_step(x, y)  # warm-up
    traced = {k: trainer.stats()[k] for k in TRACE}
    timer = _VerifyTimer(trainer, x, y)
    by_threads = _enclave_by_threads(others, x, y, repeats, timer.step)
    trace = {k: (trainer.stats()[k] - traced[k]) / repeats for k in TRACE}
    del others
    verify_times, (verify_s, split, transfer) = timer.times, timer.median()

    xp = np
    if trainer.device_name == "cuda":
        import cupy as xp  # noqa: F811
    lr = 2.0 ** -(lr_exp + int(np.ceil(np.log2(batch))))
    insecure = NumpyFloat32MLP(weights, lr, xp=xp)
    xf = xp.asarray(x, dtype=xp.float32)
    yl = xp.asarray(y)
    insecure.step(xf, yl)
    insecure_spread: List[float] = []
    insecure_s = median_seconds(lambda: insecure.step(xf, yl), repeats, insecure_spread)

    row = Row(width=width, batch=batch, knobs=narrowed, insecure_s=insecure_s, enclave_only_s=None,
              verify_s=verify_s, verify_enclave_s=split["enclave"],
              verify_device_s=split["device"] - transfer, verify_transfer_s=transfer,
              spreads={"insecure": insecure_spread[0], "verify": spread(verify_times)},
              enclave_by_threads=by_threads, trace=trace)
    row.enclave_by_threads[threads[-1]] = statistics.median(s["enclave"] for s in timer.splits)
    specs = [(w.shape[0] - 1, w.shape[1], 1 if k < 2 else 0) for k, w in enumerate(weights)]
    labels = np.ascontiguousarray(y, dtype=np.int32)
    if enclave_only:
        # The same configuration as (c): model, schedule, seed and clips.
        for t in dict.fromkeys([1] + threads):
            baseline = enclave_only_trainer(specs, trainer.config)
            baseline.use_threads(t)
            baseline.step(x, labels)
            row.enclave_only_by_threads[t] = median_seconds(lambda: baseline.step(x, labels),
                                                            repeats)
        row.enclave_only_s = row.enclave_only_by_threads[1]  # Slalom's baseline: one thread
        if inference:
            xi = np.ascontiguousarray(x[:INFER_ROWS])
            row.enclave_only_infer_s = median_seconds(lambda: baseline.predict(xi), repeats)
    if inference:
        # Inference is timed on one batch of at most INFER_ROWS rows: sealing the
        # unblinding factors offline costs O(B n m) in the enclave per slot.
        xi = np.ascontiguousarray(x[:INFER_ROWS])
        row.verify_infer_s = median_seconds(lambda: trainer.predict_proba(xi), repeats)
        infer = veil.Inference(trainer, mode="private", device=device, batch_size=len(xi),
                               threads=threads[-1])
        infer.precompute(batches=repeats + 1, batch_size=len(xi), verbose=0)
        infer.predict_proba(xi)
        row.private_infer_s = median_seconds(lambda: infer.predict_proba(xi), repeats)
    row.ratios = {
        "enclave_only/verify": (row.enclave_only_s / row.verify_s) if row.enclave_only_s else None,
        "verify/insecure": row.verify_s / row.insecure_s,
        "enclave_share": row.verify_enclave_s / row.verify_s,
    }
    if row.private_infer_s:
        row.ratios["private/verify_infer"] = row.private_infer_s / row.verify_infer_s
        if row.enclave_only_infer_s:
            row.ratios["enclave_only_infer/private"] = row.enclave_only_infer_s / row.private_infer_s
    return row


def _fmt(seconds: Optional[float]) -> str:
    return "-" if seconds is None else f"{1e3 * seconds:.1f}"


def _ratio(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}"


def _spread(row: Row) -> str:
    worst = max(row.spreads.values(), default=0.0)
    return f"+-{50 * worst:.0f}%"  # half the interquartile range, around the median


def spread_warnings(rows: List[Row]) -> List[str]:
    """One line per configuration whose repeated steps disagree too much to trust."""
    return [f"warning: width {r.width} batch {r.batch}: step times spread "
            f"{100 * max(r.spreads.values()):.0f}% (interquartile range / median) > "
            f"{100 * SPREAD_WARN:.0f}%: the machine is busy or the repeats too few; its ratios "
            "are unreliable (rerun on an idle machine, or with more --repeats)"
            for r in rows if max(r.spreads.values(), default=0.0) > SPREAD_WARN]


def format_table(rows: List[Row]) -> str:
    head = (f"{'width':>5} {'batch':>5} | {'(a) ms':>8} {'(b) ms':>9} {'(c) ms':>8} "
            f"{'encl ms':>8} {'dev ms':>8} | {'(b)/(c)':>8} {'(c)/(a)':>8} {'share':>6} "
            f"{'spread':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.width:>5} {r.batch:>5} | {_fmt(r.insecure_s):>8} {_fmt(r.enclave_only_s):>9} "
            f"{_fmt(r.verify_s):>8} {_fmt(r.verify_enclave_s):>8} {_fmt(r.verify_device_s):>8} | "
            f"{_ratio(r.ratios['enclave_only/verify']):>8} {_ratio(r.ratios['verify/insecure']):>8} "
            f"{100 * r.ratios['enclave_share']:>5.1f}% {_spread(r):>7}")
    counts = sorted({t for r in rows for t in r.enclave_by_threads})
    if len(counts) > 1:
        lines.append("")
        lines.append("the enclave's part of (c) by enclave threads (median ms per step), the "
                     f"speed-up of {counts[-1]} threads over {counts[0]}, (b) on {counts[-1]} "
                     "threads (ms), and the trace per step")
        lines.append(f"{'width':>5} {'batch':>5} | " + " ".join(f"{f'T={t}':>8}" for t in counts)
                     + f" | {'speed-up':>8} | {'(b) T=' + str(counts[-1]):>10} | "
                     + " ".join(f"{k:>20}" for k in TRACE))
        for r in rows:
            by = r.enclave_by_threads
            up = by[counts[0]] / by[counts[-1]] if counts[0] in by and counts[-1] in by else None
            lines.append(f"{r.width:>5} {r.batch:>5} | "
                         + " ".join(f"{_fmt(by.get(t)):>8}" for t in counts)
                         + f" | {_ratio(up):>8} | "
                         + f"{_fmt(r.enclave_only_by_threads.get(counts[-1])):>10} | "
                         + " ".join(f"{r.trace.get(k, 0):>20.2f}" for k in TRACE))
    if any(r.private_infer_s for r in rows):
        lines.append("")
        lines.append(f"inference, {INFER_ROWS} rows: (d) private vs verify vs all inside the enclave")
        lines.append(f"{'width':>5} {'batch':>5} | {'private ms':>10} {'verify ms':>10} "
                     f"{'in-encl ms':>10} | {'priv/verify':>11} {'in-encl/priv':>12}")
        for r in rows:
            if r.private_infer_s:
                lines.append(
                    f"{r.width:>5} {INFER_ROWS:>5} | {_fmt(r.private_infer_s):>10} "
                    f"{_fmt(r.verify_infer_s):>10} {_fmt(r.enclave_only_infer_s):>10} | "
                    f"{_ratio(r.ratios.get('private/verify_infer')):>11} "
                    f"{_ratio(r.ratios.get('enclave_only_infer/private')):>12}")
    return "\n".join(lines)


def plot(rows: List[Row], path: str) -> None:
    """Time per verify step against width, enclave / device / transfer stacked, per batch."""
    import matplotlib.pyplot as plt

    fig = figure(rows)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def figure(rows: List[Row]):
    """The figure :func:`plot` writes: one panel per batch size, one bar per width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = sorted({r.batch for r in rows})
    fig, axes = plt.subplots(1, len(batches), figsize=(4.5 * len(batches), 4), squeeze=False)
    for ax, batch in zip(axes[0], batches):
        sel = sorted((r for r in rows if r.batch == batch), key=lambda r: r.width)
        labels = [str(r.width) for r in sel]
        enclave = np.array([1e3 * r.verify_enclave_s for r in sel])
        device = np.array([1e3 * r.verify_device_s for r in sel])
        transfer = np.array([1e3 * r.verify_transfer_s for r in sel])
        ax.bar(labels, enclave, label="enclave")
        ax.bar(labels, device, bottom=enclave, label="device products")
        ax.bar(labels, transfer, bottom=enclave + device, label="transfer")
        ax.plot(labels, [1e3 * r.insecure_s for r in sel], "k--o", label="(a) insecure float32")
        if any(r.enclave_only_s for r in sel):  # (b), where it was measured
            ax.plot(labels, [np.nan if r.enclave_only_s is None else 1e3 * r.enclave_only_s
                             for r in sel], "r:s", label="(b) all in enclave")
        total = enclave + device + transfer
        for x, top, r in zip(labels, total, sel):  # the enclave's share, printed on each bar
            ax.annotate(f"{100 * r.ratios['enclave_share']:.0f}%", (x, top), ha="center",
                        va="bottom", fontsize=8)
        # Headroom above the tallest bar or line, so that the share labels stay below the title.
        tallest = max([*total, *(1e3 * r.insecure_s for r in sel),
                       *(1e3 * r.enclave_only_s for r in sel if r.enclave_only_s)])
        ax.set_ylim(0, 1.2 * tallest)
        ax.set_title(f"verify step, batch {batch}")
        ax.set_xlabel("width")
        ax.set_ylabel("ms per step")
    # One legend below the panels, where it covers no bar, label or title.
    handles, names = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in names:
                handles.append(h)
                names.append(n)
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def run(quick: bool = False, widths: Optional[Sequence[int]] = None,
        batches: Optional[Sequence[int]] = None, device: str = "cpu", repeats: int = 3,
        out: Optional[str] = None, enclave_only_max_width: int = 4096, echo=print,
        threads: Optional[Sequence[int]] = None) -> dict:
    """Run the sweep, print the table, and write bench.json / bench.png into out."""
    widths = list(widths or (QUICK_WIDTHS if quick else FULL_WIDTHS))
    batches = list(batches or (QUICK_BATCHES if quick else FULL_BATCHES))
    gemm = gemm_throughput()
    echo(f"enclave GEMM: {gemm['enclave_gflops']:.1f} GFLOP/s, numpy float32 matmul with "
         f"{gemm['numpy_threads']} thread(s): {gemm['numpy_gflops']:.1f} GFLOP/s -> "
         f"{100 * gemm['ratio']:.0f}% (n={gemm['size']})")
    rows: List[Row] = []
    for width in widths:
        for batch in batches:
            row = measure(width, batch, device=device, repeats=repeats,
                          enclave_only=width <= enclave_only_max_width,
                          inference=batch == batches[0] and width <= INFER_MAX_WIDTH,
                          threads=threads)
            rows.append(row)
            echo(f"  measured width={width} batch={batch}: verify {1e3 * row.verify_s:.1f} ms, "
                 f"enclave share {100 * row.ratios['enclave_share']:.1f}%")
    table = format_table(rows)
    echo("")
    echo("(a) insecure float32  (b) all inside the enclave  (c) veil verify; medians of "
         f"{repeats} steps, device={device}")
    echo(table)
    for line in spread_warnings(rows):
        echo(line)
    result = {"device": device, "gemm": gemm, "rows": [asdict(r) for r in rows],
              "repeats": repeats, "cpu_count": os.cpu_count()}
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "bench.json"), "w") as f:
            json.dump(result, f, indent=2)
        plot(rows, os.path.join(out, "bench.png"))
        echo(f"wrote {os.path.join(out, 'bench.json')} and {os.path.join(out, 'bench.png')}")
    return result
