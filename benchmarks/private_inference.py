"""Online private inference against verify-mode inference and against inference done
entirely inside the enclave, measured in one run on one machine (docs/design.md §7).

The same MLP (w -> w -> w -> 10, ReLU, softmax; He-uniform weights, zero biases) and the
same batch of 64 random rows, for each width w:

- private: ``veil.Inference(mode="private")``, online part only (the device gets two
  24-bit limbs of X~ = X_q + R mod p_b per layer; the enclave checks both products,
  unmasks with the sealed U, applies the activation). The offline precompute per slot
  is reported beside it.
- verify: ``veil.Inference(mode="verify")`` on the same device (X_q in the clear, one
  checked product per layer).
- enclave-only: the whole inference inside the enclave, float32, its own single-threaded
  blocked GEMM, no BLAS (the benchmarks' in-enclave baseline, docs/design.md §7 (b), in the bench
  enclave image built with VEIL_BUILD_BENCHMARKS); it draws its own He-uniform weights
  inside the enclave (the time does not depend on the values).
- insecure: float32 numpy on the CPU (CuPy on a GPU), for scale (docs/design.md §7 (a)).

Every time is the median over --repeats batches; the result is the ratios.

The offline phase is measured on its own too (``--offline-widths``, default 2048): one
w -> w layer, precompute of one slot of ``--batch`` rows (PRG, the exact float64 GEMM
U = R·W_q mod p_b of docs/design.md §4.1, sealing) against the bench enclave's float32 GEMM
of the same shape (batch x (w+1) times (w+1) x w), both on one thread, alternated, best of
``--repeats`` each. The field-GEMM rate is field multiply-adds per second,
batch·(w+1)·w / precompute time; the baseline's rate is its FLOP/2 per second, so the
ratio compares multiply-adds with multiply-adds (issue target: at least 30% at width
2048, batch 64).

Private fine-tuning (``--finetune-widths``, default 1024): the same w -> w -> w -> 10 model
with its first two layers frozen and the last trained in the enclave
(``veil.Trainer(mode="private")``), one step per batch on precomputed slots, against
training the whole model inside the enclave (the bench image's float32 trainer).

    python benchmarks/private_inference.py [--quick] [--widths 256,1024] [--device auto]
    python benchmarks/private_inference.py --offline-only [--offline-widths 2048,4096]
"""
from __future__ import annotations

import argparse
import gc
import time
from typing import Dict, List

import numpy as np

import veil
from veil.bench import enclave_only_trainer
from veil.bench import median_seconds as _median

FULL_WIDTHS = (256, 512, 1024, 2048, 4096)
QUICK_WIDTHS = (256, 1024)
ACTIVATIONS = ["relu", "relu", "identity"]


def measure(width: int, batch: int, repeats: int, device: str) -> Dict[str, object]:
    """Seconds per batch of each way to run the same model on the same batch."""
    rng = np.random.default_rng(width)
    x = rng.random((batch, width))
    weights = []
    for n, m in ((width, width), (width, width), (width, 10)):
        w = rng.uniform(-1.0, 1.0, (n + 1, m)) * np.sqrt(6.0 / n)
        w[-1] = 0.0
        weights.append(w)
    row: Dict[str, object] = {"width": width}

    infer = veil.Inference(weights, mode="private", device=device, activations=ACTIVATIONS,
                           batch_size=batch)
    start = time.perf_counter()
    infer.precompute(batches=repeats + 1, verbose=0)
    row["precompute_s"] = (time.perf_counter() - start) / (repeats + 1)
    row["sealed_bytes_per_slot"] = infer.sealed_bytes / (repeats + 1)
    row["device"] = infer.device_name
    private = infer.predict_proba(x)  # warm-up
    infer.reset_timing()
    row["private_s"] = _median(lambda: infer.predict_proba(x), repeats)
    split = infer.timing()
    row["private_enclave_share"] = split["enclave"] / split["total"]
    del infer
    gc.collect()

    verify = veil.Inference(weights, mode="verify", device=device, activations=ACTIVATIONS,
                            batch_size=batch)
    if not np.array_equal(verify.predict_proba(x), private):
        raise AssertionError("private and verify-mode predictions differ")
    verify.reset_timing()
    row["verify_s"] = _median(lambda: verify.predict_proba(x), repeats)
    split = verify.timing()
    row["verify_enclave_share"] = split["enclave"] / split["total"]
    del verify
    gc.collect()

    specs = [(w.shape[0] - 1, w.shape[1], 1 if k < 2 else 0) for k, w in enumerate(weights)]
    config = dict(loss=0, frac_act=8, frac_grad=12, lr_exp=2, max_batch=batch, seed=0,
                  act_clip=64.0, grad_clip=8.0, weight_max=8.0)
    inside = enclave_only_trainer(specs, config)
    inside.predict(x)
    row["enclave_only_s"] = _median(lambda: inside.predict(x), repeats)
    del inside

    w32 = [w.astype(np.float32) for w in weights]
    x32 = x.astype(np.float32)

    def insecure():
        a = x32
        for k, w in enumerate(w32):
            a = a @ w[:-1] + w[-1]
            if k < 2:
                a = np.maximum(a, 0)
        e = np.exp(a - a.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    insecure()
    row["insecure_s"] = _median(insecure, repeats)
    del weights
    gc.collect()
    return row


def measure_offline(width: int, batch: int, repeats: int) -> Dict[str, float]:
    """Precompute of one w -> w layer against the enclave's float32 GEMM, same shape."""
    rng = np.random.default_rng(width)
    w = rng.uniform(-1.0, 1.0, (width + 1, width)) * np.sqrt(6.0 / width)
    infer = veil.Inference([w], mode="private", device="cpu", activations=["identity"],
                           batch_size=batch)
    specs = [(8, 8, 0)]
    config = dict(loss=0, frac_act=8, frac_grad=12, lr_exp=0, max_batch=8, seed=0,
                  act_clip=64.0, grad_clip=8.0, weight_max=2.0)
    inside = enclave_only_trainer(specs, config)
    # The gemm ecall fills its operands first: time 1 and 1 + extra products and keep the
    # difference, so the baseline is charged for its products only.
    extra = 4
    precompute_s, one_s, more_s = [], [], []
    infer.precompute(batches=1, verbose=0)  # warm-up
    inside.gemm(batch, width, width + 1, 1)
    for _ in range(repeats):
        start = time.perf_counter()
        infer.precompute(batches=1, verbose=0)
        precompute_s.append(time.perf_counter() - start)
        infer.sealed.clear()  # the host may drop slots; only memory is at stake here
        for repeats_in, times in ((1, one_s), (1 + extra, more_s)):
            start = time.perf_counter()
            inside.gemm(batch, width, width + 1, repeats_in)
            times.append(time.perf_counter() - start)
    macs = float(batch) * (width + 1) * width
    best_pre, best_sgemm = min(precompute_s), (min(more_s) - min(one_s)) / extra
    return {"width": width, "precompute_s": best_pre, "field_macs_per_s": macs / best_pre,
            "sgemm_half_flops_per_s": macs / best_sgemm,
            "ratio": best_sgemm / best_pre}


def measure_finetune(width: int, batch: int, repeats: int, device: str) -> Dict[str, float]:
    """A private fine-tuning step against an all-in-enclave training step, same model."""
    rng = np.random.default_rng(width)
    frozen = []
    for n in (width, width):
        w = rng.uniform(-1.0, 1.0, (n + 1, width)) * np.sqrt(6.0 / n)
        w[-1] = 0.0
        frozen.append(w)
    x, y = rng.random((batch, width)), rng.integers(0, 10, batch)
    model = veil.Sequential([veil.Dense(width, width), veil.ReLU(), veil.Dense(width, width),
                             veil.ReLU(), veil.Dense(width, 10)]).freeze(upto=2)
    tuner = veil.Trainer(model, mode="private", device=device, weights=frozen, lr=0.05,
                         batch_size=batch)
    start = time.perf_counter()
    tuner.precompute(repeats + 1)
    precompute_s = (time.perf_counter() - start) / (repeats + 1)
    tuner.train_step(x, y)  # warm-up
    private_s = _median(lambda: tuner.train_step(x, y), repeats)
    specs = [(width, width, 1), (width, width, 1), (width, 10, 0)]
    config = dict(loss=0, frac_act=8, frac_grad=12, lr_exp=2, max_batch=batch, seed=0,
                  act_clip=64.0, grad_clip=8.0, weight_max=8.0)
    inside = enclave_only_trainer(specs, config)
    labels = y.astype(np.int32)
    inside.step(x, labels)
    inside_s = _median(lambda: inside.step(x, labels), repeats)
    return {"width": width, "device": tuner.device_name, "private_step_s": private_s,
            "precompute_s": precompute_s, "enclave_only_step_s": inside_s}


def format_finetune(rows: List[Dict[str, float]], batch: int) -> str:
    lines = [f"private fine-tuning, batch {batch}, w -> w -> w -> 10, layers 0-1 frozen:",
             f"{'width':>5} | {'private step':>12} {'precompute/slot':>15} | "
             f"{'all-in-enclave step':>19} | {'all-in-enclave / private':>24}"]
    for r in rows:
        lines.append(f"{int(r['width']):>5} | {1e3 * r['private_step_s']:>9.2f} ms "
                     f"{1e3 * r['precompute_s']:>12.1f} ms | "
                     f"{1e3 * r['enclave_only_step_s']:>16.2f} ms | "
                     f"{r['enclave_only_step_s'] / r['private_step_s']:>24.2f}")
    lines.append(f"device: {rows[0]['device']}; private step: online only (slots sealed "
                 "before), frozen layers on the device, head in the enclave; all-in-enclave: "
                 "float32 training of every layer inside the enclave, one thread.")
    return "\n".join(lines)


def format_offline(rows: List[Dict[str, float]], batch: int, repeats: int) -> str:
    lines = [f"offline phase, batch {batch}, one w -> w layer, one thread, best of {repeats}:",
             f"{'width':>5} | {'precompute/slot':>15} | {'field-GEMM':>16} | "
             f"{'enclave sgemm FLOP/2':>20} | {'ratio':>5}"]
    for r in rows:
        lines.append(f"{int(r['width']):>5} | {1e3 * r['precompute_s']:>12.1f} ms | "
                     f"{r['field_macs_per_s'] / 1e9:>8.2f} GMAC/s | "
                     f"{r['sgemm_half_flops_per_s'] / 1e9:>13.2f} GMAC/s | "
                     f"{100 * r['ratio']:>4.0f}%")
    lines.append("field-GEMM: field multiply-adds mod p_b per second, PRG and sealing included; "
                 "ratio: of the in-enclave float32 GEMM's multiply-adds per second (FLOP/2).")
    return "\n".join(lines)


def format_table(rows: List[Dict[str, object]], batch: int, device: str) -> str:
    lines = [
        f"private inference, batch {batch}, device {device}: ms per batch (median) and ratios",
        f"{'width':>5} | {'private':>8} {'verify':>8} {'encl-only':>9} {'insecure':>8} | "
        f"{'private/verify':>14} {'encl-only/private':>17} {'private/insecure':>16} | "
        f"{'encl. share':>11} {'precompute/slot':>15} {'sealed/slot':>11}",
    ]
    for r in rows:
        lines.append(
            f"{int(r['width']):>5} | {1e3 * r['private_s']:>8.2f} {1e3 * r['verify_s']:>8.2f} "
            f"{1e3 * r['enclave_only_s']:>9.2f} {1e3 * r['insecure_s']:>8.2f} | "
            f"{r['private_s'] / r['verify_s']:>14.2f} "
            f"{r['enclave_only_s'] / r['private_s']:>17.2f} "
            f"{r['private_s'] / r['insecure_s']:>16.1f} | "
            f"{100 * r['private_enclave_share']:>10.0f}% {1e3 * r['precompute_s']:>12.0f} ms "
            f"{r['sealed_bytes_per_slot'] / 2**20:>7.2f} MiB")
    lines.append("private/verify: cost of hiding the activations (two limb products per layer, "
                 "masking and unmasking); encl-only/private: speed-up over running the model "
                 "inside the enclave; encl. share: the enclave's part of a private batch.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="widths 256 and 1024 only")
    parser.add_argument("--widths", default=None, help="comma-separated widths")
    parser.add_argument("--batch", type=int, default=64, help="rows per batch (default 64)")
    parser.add_argument("--repeats", type=int, default=3, help="batches timed per way (default 3)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="device of private and verify-mode inference (default auto)")
    parser.add_argument("--offline-widths", default="2048",
                        help="comma-separated widths of the offline-phase rows (default 2048)")
    parser.add_argument("--finetune-widths", default="1024",
                        help="comma-separated widths of the fine-tuning rows (default 1024; "
                             "'' for none)")
    parser.add_argument("--offline-only", action="store_true",
                        help="measure the offline phase only")
    args = parser.parse_args()
    print(f"veil {veil.__version__}, enclave backend {veil.enclave_backend()}", flush=True)
    offline = [measure_offline(int(w), args.batch, max(args.repeats, 5))
               for w in args.offline_widths.split(",") if w]
    print(format_offline(offline, args.batch, max(args.repeats, 5)), flush=True)
    if args.offline_only:
        return
    tuned = [measure_finetune(int(w), args.batch, args.repeats, args.device)
             for w in args.finetune_widths.split(",") if w]
    if tuned:
        print(format_finetune(tuned, args.batch), flush=True)
    widths = ([int(w) for w in args.widths.split(",")] if args.widths
              else list(QUICK_WIDTHS if args.quick else FULL_WIDTHS))
    rows = []
    for width in widths:
        rows.append(measure(width, args.batch, args.repeats, args.device))
        print(f"  width {width} done", flush=True)
    print(format_table(rows, args.batch, str(rows[0]["device"])))


if __name__ == "__main__":
    main()
