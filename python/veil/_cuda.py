"""The CUDA device: exact float64 products on the GPU through CuPy (cuBLAS).

Weights are uploaded once and stay on the GPU for the whole run; only the
B x (n + m) activations and gradients cross the PCIe link each step, through
pinned host buffers. Inside one product the batch is split into row blocks so
that copying block i + 1 to the GPU overlaps the product of block i (two CUDA
streams and events).

float64 products of integers are exact on the GPU as on the CPU as long as
every partial sum stays below 2^53, which the enclave guarantees before it asks.
"""
from __future__ import annotations

import sys
from typing import Dict, Optional

import numpy as np

from veil._device import Device

_reason: Optional[str] = None
_warned = False


def _cupy():
    import cupy  # noqa: F401  (imported lazily: CuPy is the optional [gpu] extra)

    return cupy


def available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    global _reason
    try:
        cp = _cupy()
        count = cp.cuda.runtime.getDeviceCount()
    except ImportError:
        _reason = "CuPy is not installed: pip install '.[gpu]' in veil's source"
        return False
    except Exception as e:  # CUDARuntimeError, missing driver
        _reason = f"{type(e).__name__}: {e}"
        return False
    if count < 1:
        _reason = "CuPy sees no CUDA device"
        return False
    return True


def unavailable_reason() -> str:
    """Why available() returned False."""
    return _reason or "CuPy reports a CUDA device"


def note_cpu_fallback() -> None:
    """Say once per process that device='auto' fell back to the CPU."""
    global _warned
    if not _warned:
        _warned = True
        # One line, without a quoted source line; device="cpu" asks for the CPU silently.
        print(f"veil: no CUDA GPU ({unavailable_reason()}); device='auto' runs on the CPU",
              file=sys.stderr)


class _Pinned:
    """A growable pinned host buffer viewed as a float64 numpy array."""

    def __init__(self, cp):
        self._cp = cp
        self._mem = None
        self._size = 0

    def view(self, shape) -> np.ndarray:
        count = int(np.prod(shape))
        if count > self._size:
            self._mem = self._cp.cuda.alloc_pinned_memory(max(count, 1) * 8)
            self._size = count
        return np.frombuffer(self._mem, dtype=np.float64, count=count).reshape(shape)


class CudaDevice(Device):
    """veil.Device on a CUDA GPU with CuPy.

    Args:
        device_id: which GPU.
        blocks: row blocks per product for copy/compute overlap (1 disables it).
        min_block_bytes: smallest block worth its own copy and launch; smaller
            operands go in fewer blocks, since each block costs a launch and two events.
    """

    name = "cuda"

    def __init__(self, device_id: int = 0, blocks: int = 4, min_block_bytes: int = 4 << 20):
        cp = _cupy()
        self._cp = cp
        self._gpu = cp.cuda.Device(device_id)
        self._blocks = max(1, int(blocks))
        self._min_block_bytes = max(0, int(min_block_bytes))
        with self._gpu:
            self._compute = cp.cuda.Stream(non_blocking=True)
            self._copy = cp.cuda.Stream(non_blocking=True)
        self.weights: Dict[int, "cp.ndarray"] = {}
        self._in = _Pinned(cp)
        self._in2 = _Pinned(cp)
        self._out = _Pinned(cp)
        self.transfer_bytes = 0
        self.transfer_seconds = 0.0  # host<->GPU copy time, measured with CUDA events

    @property
    def gpu_name(self) -> str:
        props = self._cp.cuda.runtime.getDeviceProperties(self._gpu.id)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)

    def _timed_copy(self, stream, copy):
        """Run copy() on stream between two events; returns the end event's pair."""
        cp = self._cp
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record(stream)
        copy()
        end.record(stream)
        return start, end

    def _charge(self, pairs) -> None:
        for start, end in pairs:
            end.synchronize()
            self.transfer_seconds += self._cp.cuda.get_elapsed_time(start, end) / 1e3

    def _to_gpu(self, host: np.ndarray, pinned: _Pinned, stream):
        staged = pinned.view(host.shape)
        staged[...] = host
        self.transfer_bytes += host.nbytes
        out = self._cp.empty(host.shape, dtype=np.float64)
        self._charge([self._timed_copy(stream, lambda: out.set(staged, stream=stream))])
        return out

    def upload(self, layer: int, weights: np.ndarray) -> None:
        with self._gpu:
            self.weights[layer] = self._to_gpu(np.ascontiguousarray(weights), self._in, self._copy)
            self._copy.synchronize()

    def _blocked_product(self, x: np.ndarray, rhs_fn, out_cols: int) -> np.ndarray:
        cp = self._cp
        rows = x.shape[0]
        staged = self._in.view(x.shape)
        staged[...] = x
        result = self._out.view((rows, out_cols))
        worth = x.nbytes // self._min_block_bytes if self._min_block_bytes else rows
        blocks = max(1, min(self._blocks, rows, worth))
        bounds = np.linspace(0, rows, blocks + 1, dtype=np.int64)
        with self._gpu:
            # Every block and product stays referenced until the compute stream is done:
            # freed earlier, CuPy's pool could hand the memory to the next block's copy
            # while the product still reads it (the streams don't wait on each other).
            in_flight, copies = [], []
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                if hi <= lo:
                    continue
                block = cp.empty((hi - lo, x.shape[1]), dtype=np.float64)
                copies.append(self._timed_copy(
                    self._copy, lambda: block.set(staged[lo:hi], stream=self._copy)))
                ready = self._copy.record()
                self._compute.wait_event(ready)
                with self._compute:
                    prod = rhs_fn(block)
                    # Non-blocking, so the host goes on to queue block i + 1's copy.
                    copies.append(self._timed_copy(
                        self._compute,
                        lambda: prod.get(stream=self._compute, out=result[lo:hi],
                                         blocking=False)))
                in_flight.append((block, prod))
            self._compute.synchronize()
            self._charge(copies)
        self.transfer_bytes += x.nbytes + result.nbytes
        return result

    def forward(self, layer: int, a: np.ndarray) -> np.ndarray:
        m = self.weights[layer]
        return self._blocked_product(a, lambda block: block @ m, m.shape[1])

    def backward(self, layer: int, dz: np.ndarray) -> np.ndarray:
        m = self.weights[layer]
        return self._blocked_product(dz, lambda block: block @ m.T, m.shape[0])

    def _update_operands(self, a: np.ndarray, dz: np.ndarray):
        """a and dz on the GPU, the compute stream waiting for their copies (call inside
        ``self._gpu``; keep them until the compute stream is done with them)."""
        a_gpu = self._to_gpu(a, self._in, self._copy)
        dz_gpu = self._to_gpu(dz, self._in2, self._copy)
        ready = self._copy.record()
        self._compute.wait_event(ready)
        return a_gpu, dz_gpu

    def update(self, layer: int, a: np.ndarray, dz: np.ndarray) -> None:
        with self._gpu:
            a_gpu, dz_gpu = self._update_operands(a, dz)
            with self._compute:
                self.weights[layer] -= a_gpu.T @ dz_gpu
            self._compute.synchronize()

    def scale(self, layer: int) -> None:
        with self._gpu, self._compute:
            self.weights[layer] *= 2.0
            self._compute.synchronize()

    def max_abs(self, layer: int) -> float:
        with self._gpu, self._compute:
            value = float(self._cp.abs(self.weights[layer]).max())
        return value

    def download(self, layer: int) -> np.ndarray:
        with self._gpu:
            weights = self.weights[layer].get()
        self.transfer_bytes += weights.nbytes
        return weights
