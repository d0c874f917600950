"""veil verify training on a CUDA GPU against insecure float32 training with CuPy.

Per training step of the same MLP (w -> w -> w -> 10, ReLU), widths 1024-8192,
batch 256-1024: (a) insecure float32 CuPy training and (c) veil verify training
with the CuPy device, (c) split into the enclave's part, the GPU products and
the host<->GPU transfers (CUDA events), and the enclave's part with 1 enclave
thread and with the host's cores (--threads); (b) the same training entirely
inside the enclave on the host's CPU, with 1 thread and with the cores, up to
--enclave-only-max-width. Medians of repeated steps; ratios are the result.

    python benchmarks/gpu_bench.py OUT_DIR [--quick] [--widths ...] [--batches ...]
                                   [--threads 1,N] [--enclave-only-max-width W]

Writes OUT_DIR/gpu_bench_<gpu>.json and OUT_DIR/gpu_bench_<gpu>.png.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import asdict

import veil
from veil import _cuda, bench


def gpu_name() -> str:
    if not _cuda.available():
        raise SystemExit(f"gpu_bench: no CUDA device ({_cuda.unavailable_reason()})")
    return _cuda.CudaDevice().gpu_name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--quick", action="store_true", help="widths 1024,4096; batch 256")
    parser.add_argument("--widths", default=None)
    parser.add_argument("--batches", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default=None,
                        help="enclave thread counts, e.g. 1,16 (default: 1 and the cores)")
    parser.add_argument("--enclave-only-max-width", type=int, default=2048,
                        help="time (b) up to this width (it is slow by design)")
    args = parser.parse_args(argv)
    threads = ([int(t) for t in args.threads.split(",")] if args.threads
               else bench.default_threads())
    widths = [int(w) for w in (args.widths or ("1024,4096" if args.quick else
                                               "1024,2048,4096,8192")).split(",")]
    batches = [int(b) for b in (args.batches or ("256" if args.quick else "256,1024")).split(",")]
    name = gpu_name()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"gpu_bench_{slug}")
    rows = []
    print(f"veil {veil.__version__} on {name}: verify training vs insecure float32 (CuPy)")
    t1, tn = threads[0], threads[-1]
    print(f"(c) runs its enclave on {tn} thread(s); its enclave part is also timed on {t1}")
    print(f"{'width':>5} {'batch':>5} | {'(a) ms':>8} {'(c) ms':>8} {'encl ms':>8} {'gpu ms':>8} "
          f"{'xfer ms':>8} | {'(c)/(a)':>8} {'share':>6} | {f'encl T={t1}':>10} "
          f"{f'(b) T={t1}':>10} {f'(b) T={tn}':>10} {'(b)/(c)':>8}  knobs")
    for w in widths:
        for b in batches:
            r = bench.measure(w, b, device="cuda", repeats=args.repeats,
                              enclave_only=w <= args.enclave_only_max_width, inference=False,
                              threads=threads)
            rows.append(r)
            knobs = ",".join(f"{k}={v}" for k, v in r.knobs.items()) or "defaults"
            b_many = r.enclave_only_by_threads.get(tn)
            print(f"{w:>5} {b:>5} | {1e3 * r.insecure_s:>8.2f} {1e3 * r.verify_s:>8.2f} "
                  f"{1e3 * r.verify_enclave_s:>8.2f} {1e3 * r.verify_device_s:>8.2f} "
                  f"{1e3 * r.verify_transfer_s:>8.2f} | {r.ratios['verify/insecure']:>8.2f} "
                  f"{100 * r.ratios['enclave_share']:>5.1f}% | "
                  f"{bench._fmt(r.enclave_by_threads.get(t1)):>10} "
                  f"{bench._fmt(r.enclave_only_s):>10} {bench._fmt(b_many):>10} "
                  f"{bench._ratio(b_many / r.verify_s if b_many else None):>8}  {knobs}",
                  flush=True)
            # Rewritten after every configuration: a run cut short keeps what it measured.
            with open(stem + ".json", "w") as f:
                json.dump({"gpu": name, "veil": veil.__version__, "python": sys.version,
                           "cupy": _cuda._cupy().__version__, "repeats": args.repeats,
                           "threads": threads, "cpu_count": os.cpu_count(),
                           "rows": [asdict(r) for r in rows]}, f, indent=2)
    bench.plot(rows, stem + ".png")
    print(f"wrote {stem}.json and {stem}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
