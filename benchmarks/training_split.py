"""Enclave time vs device time per verify-mode training step, by width.

Runs veil verify training of a width-w MLP (w -> w -> w -> 10, ReLU) on random
data at batch 256 with the C++ CPU device, and prints per step: total time,
the device's part (products and transfers, measured around the device ocalls),
the enclave's part (everything else inside the ecall) and the enclave's share.
The cost model (docs/design.md §7) says the enclave does O(B (n + m)) per layer and
the device O(B n m), so the share must fall as the width grows.

    python benchmarks/training_split.py [--widths 256,512,1024,2048,4096] [--batch 256]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import veil


def measure(width: int, batch: int, steps: int, seed: int = 0) -> dict:
    model = veil.Sequential([veil.Dense(width, width), veil.ReLU(),
                             veil.Dense(width, width), veil.ReLU(),
                             veil.Dense(width, 10)])
    trainer = veil.Trainer(model, device="cpu", lr=2**-6, seed=seed, batch_size=batch)
    rng = np.random.default_rng(seed)
    x = rng.random((batch, width))
    y = rng.integers(0, 10, batch)
    trainer.train_step(x, y)  # warm-up: first-touch of buffers, BLAS threads
    trainer.reset_timing()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(x, y)
    wall = (time.perf_counter() - start) / steps
    t = trainer.timing()
    return {
        "width": width, "batch": batch, "steps": steps,
        "step_seconds": wall,
        "device_seconds": t["device"] / steps,
        "enclave_seconds": t["enclave"] / steps,
        "enclave_share": t["enclave"] / t["total"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="256,512,1024,2048,4096")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=0, help="steps per width (0: by width)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    rows = []
    print(f"veil verify training, CPU device, batch {args.batch}, MLP w-w-w-10 (ReLU)")
    print(f"{'width':>6} {'step ms':>9} {'device ms':>10} {'enclave ms':>11} {'enclave share':>14}")
    for w in widths:
        steps = args.steps or max(2, min(20, int(4096 * 8 / w)))
        r = measure(w, args.batch, steps)
        rows.append(r)
        print(f"{w:>6} {1e3 * r['step_seconds']:>9.2f} {1e3 * r['device_seconds']:>10.2f} "
              f"{1e3 * r['enclave_seconds']:>11.2f} {100 * r['enclave_share']:>13.1f}%")
    shares = [r["enclave_share"] for r in rows]
    falling = all(b <= a * 1.05 for a, b in zip(shares, shares[1:]))
    print(f"enclave share falls as width grows: {'yes' if falling else 'NO'} "
          f"({100 * shares[0]:.1f}% at {widths[0]} -> {100 * shares[-1]:.1f}% at {widths[-1]})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
