"""Enclave time vs device time of a convolution's verify step, by channels.

Runs veil verify training of one 3x3 convolution C -> C (padding 1, on S x S images,
batch B; then ReLU, 4x4 max pooling and a dense layer to 10 classes) with the C++ CPU
device for several C, and prints the medians of the enclave's and the device's parts of a
step. docs/design.md §4.4: the enclave's work per convolution is O(B·S²·k²·(C_in + C_out))
and the device's O(B·S²·k²·C_in·C_out), so doubling C should double the enclave's time
and quadruple the device's.

    python benchmarks/conv_scaling.py [--channels 16,32,64,128] [--side 16] [--batch 32]
                                      [--steps 5]
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np

import veil


def measure(c_in: int, c_out: int, side: int, batch: int, steps: int) -> dict:
    pooled = side // 4
    model = veil.Sequential([veil.Conv2d(c_in, c_out, 3, padding=1), veil.ReLU(),
                             veil.MaxPool2d(4), veil.Flatten(),
                             veil.Dense(c_out * pooled * pooled, 10)],
                            input_shape=(c_in, side, side))
    trainer = veil.Trainer(model, device="cpu", lr=2**-6, seed=0, batch_size=batch)
    rng = np.random.default_rng(0)
    x = rng.random((batch, c_in, side, side))
    y = rng.integers(0, 10, batch)
    trainer.train_step(x, y)  # warm-up
    enclave, device = [], []
    for _ in range(steps):
        trainer.reset_timing()
        trainer.train_step(x, y)
        timing = trainer.timing()
        enclave.append(timing["enclave"])
        device.append(timing["device"])
    return {"c_out": c_out, "enclave_ms": 1e3 * statistics.median(enclave),
            "device_ms": 1e3 * statistics.median(device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", default="16,32,64,128")
    parser.add_argument("--side", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    print(f"C -> C, {args.side}x{args.side}, batch {args.batch}, 3x3, medians of "
          f"{args.steps} steps, device=cpu")
    for c in (int(v) for v in args.channels.split(",")):
        row = measure(c, c, args.side, args.batch, args.steps)
        print(f"C {c:>5}: enclave {row['enclave_ms']:8.1f} ms   device "
              f"{row['device_ms']:8.1f} ms")


if __name__ == "__main__":
    main()
