"""Data-parallel verified training on Ray (docs/design.md §4.6).

``veil.Trainer(model, workers=N)`` trains one model on N workers, each a Ray actor
with its own enclave session and device, each taking a contiguous shard of every
global batch. Every worker's enclave checks its own shard's products. The update is
the sum of every worker's ``a.T @ dz``: the devices all-reduce it through Ray and
apply it, and every enclave subtracts the sum of every worker's fingerprint deltas,
which the enclaves swap sealed under a key derived from the run key. Weight updates
are exact integers, so a run of N workers ends with the same weights, bit for bit,
as one worker given the same global batches.

Ray is an optional dependency (``pip install veil[distributed]``). Without an
address, the first run starts a local Ray instance; set ``RAY_ADDRESS`` (or call
``ray.init(address=...)`` first) to run the workers on a cluster.
"""
from __future__ import annotations

import os
import secrets
import time
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from veil import _codes
from veil._cuda import CudaDevice
from veil._device import Device, NumpyDevice
from veil._errors import ConfigError, Error, InputError, ProtocolError, VerificationError

#: Bytes of a run key: the enclaves derive their shared check vectors and the
#: key that seals their exchanges from it.
RUN_KEY_BYTES = 32


class WorkerError(Error):
    """A worker of a data-parallel run died or could not be reached. Every
    worker's step ends; resume the run from its last checkpoint."""


def ray_unavailable_reason() -> Optional[str]:
    """Why Ray cannot be used here, or None when it can."""
    try:
        import ray  # noqa: F401
    except ImportError as e:
        return f"Ray is not installed ({e}); pip install 'veil[distributed]'"
    return None


def _ray():
    reason = ray_unavailable_reason()
    if reason is not None:
        raise ConfigError(f"workers=: {reason}")
    import ray

    if not ray.is_initialized():
        # RAY_ADDRESS, when set, points ray.init at a running cluster.
        ray.init(include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True, configure_logging=False)
    return ray


def run_key(key: Optional[bytes]) -> bytes:
    """The run key as bytes: the given one checked, or 32 fresh random bytes."""
    if key is None:
        return secrets.token_bytes(RUN_KEY_BYTES)
    key = bytes(key)
    if len(key) != RUN_KEY_BYTES:
        raise ConfigError(f"a run key is {RUN_KEY_BYTES} bytes, got {len(key)}")
    return key


class _Rendezvous:
    """Where the workers of a run meet, once per exchange: an async Ray actor.

    Each round is named by (attempt, what); it completes when every worker has
    given its part, and hands back every part (messages) or their sum (updates).
    A round of a failed attempt raises in every worker still waiting on it.
    """

    def __init__(self, workers: int):
        import asyncio

        self._asyncio = asyncio
        self.workers = workers
        self.rounds: Dict[tuple, dict] = {}
        self.failed: Dict[int, str] = {}

    async def meet(self, attempt: int, what, worker: int, part, reduce: bool):
        if attempt in self.failed:
            raise WorkerError(self.failed[attempt])
        key = (attempt, what)
        r = self.rounds.setdefault(key, {"event": self._asyncio.Event(), "parts": {},
                                         "result": None, "taken": 0})
        r["parts"][worker] = part
        if len(r["parts"]) == self.workers:
            parts = [r["parts"][k] for k in range(self.workers)]
            if reduce:
                # Exact: integers whose every partial sum the enclaves bounded below 2^53.
                total = np.array(parts[0], dtype=np.float64, copy=True)
                for p in parts[1:]:
                    total += p
                r["result"] = total
            else:
                r["result"] = b"".join(parts)
            r["parts"].clear()
            r["event"].set()
        await r["event"].wait()
        if r["result"] is None:
            raise WorkerError(self.failed.get(attempt, "the round was abandoned"))
        r["taken"] += 1
        result = r["result"]
        if r["taken"] == self.workers:
            del self.rounds[key]
        return result

    def fail(self, attempt: int, reason: str) -> None:
        """End every round of an attempt: its waiting workers raise WorkerError(reason)."""
        self.failed[attempt] = reason
        for (a, _what), r in list(self.rounds.items()):
            if a == attempt:
                r["event"].set()
                if r["result"] is None:
                    del self.rounds[(a, _what)]


class _Link:
    """A worker's side of the rendezvous: counts what it sends and receives."""

    #: Seconds a worker waits for the others at one exchange before it gives up
    #: (a worker that hangs rather than dies).
    timeout = float(os.environ.get("VEIL_EXCHANGE_TIMEOUT", "600"))

    def __init__(self, rendezvous, worker: int, workers: int):
        self.rendezvous = rendezvous
        self.worker = worker
        self.workers = workers
        self.attempt = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.seconds = 0.0  # spent at the rendezvous: the transfers and the wait for the others

    def _meet(self, what, part, reduce: bool):
        import ray

        start = time.perf_counter()
        try:
            return ray.get(self.rendezvous.meet.remote(self.attempt, what, self.worker, part, reduce),
                           timeout=self.timeout)
        except ray.exceptions.GetTimeoutError:
            raise WorkerError(f"worker {self.worker}: the other workers did not reach {what!r} "
                              f"within {self.timeout:g} s") from None
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            raise WorkerError(str(cause) if cause is not None else str(e)) from None
        except ray.exceptions.RayActorError as e:
            raise WorkerError(f"the run's rendezvous is gone: {e}") from None
        finally:
            self.seconds += time.perf_counter() - start

    def exchange(self, what, message: bytes) -> bytes:
        received = self._meet(what, message, False)
        self.bytes_sent += len(message)
        self.bytes_received += len(received)
        return received

    def allreduce(self, what, share: np.ndarray) -> np.ndarray:
        if self.workers == 1:
            return share  # a run of one worker has nothing to add
        total = self._meet(what, share, True)
        self.bytes_sent += share.nbytes
        self.bytes_received += total.nbytes
        return total


class _Sharing:
    """What makes a device a worker's: its update computes this worker's share
    ``a.T @ dz``, all-reduces the shares of every worker through the run and applies
    the sum, and ``exchange`` carries the enclaves' sealed messages. The worker sets
    ``link`` before its session starts."""

    link: _Link

    def share(self, layer, a, dz) -> np.ndarray:
        """This worker's part of the update, ``a.T @ dz``, on the host."""
        raise NotImplementedError

    def apply(self, layer, total: np.ndarray) -> None:
        """``M -= total``: the sum of every worker's share."""
        raise NotImplementedError

    def update(self, layer, a, dz):
        self.apply(layer, self.link.allreduce(("update", layer), self.share(layer, a, dz)))

    def exchange(self, message: bytes) -> bytes:
        return self.link.exchange("exchange", message)


class ShardDevice(_Sharing, NumpyDevice):
    """A worker's device on the CPU: NumpyDevice's exact float64 products, with the
    run's update and exchange. Subclass it (and pass the class as ``device=``) to
    attack the protocol in tests."""

    name = "shard"

    def share(self, layer, a, dz) -> np.ndarray:
        return a.T @ dz

    def apply(self, layer, total: np.ndarray) -> None:
        self.weights[layer] -= total


class CudaShardDevice(_Sharing, CudaDevice):
    """A worker's device on a CUDA GPU: CudaDevice's products, with the run's update
    and exchange; the share and the sum cross to and from the host for Ray."""

    name = "shard-cuda"

    def share(self, layer, a, dz) -> np.ndarray:
        with self._gpu:
            a_gpu, dz_gpu = self._update_operands(a, dz)
            with self._compute:
                product = a_gpu.T @ dz_gpu
                return product.get(stream=self._compute)  # waits for the product

    def apply(self, layer, total: np.ndarray) -> None:
        with self._gpu:
            total_gpu = self._to_gpu(total, self._in, self._copy)
            self._compute.wait_event(self._copy.record())
            with self._compute:
                self.weights[layer] -= total_gpu
            self._compute.synchronize()


def _device_class(spec):
    """The device class of one worker's ``device=``; "auto" is decided on the worker."""
    if isinstance(spec, type) and issubclass(spec, _Sharing) and issubclass(spec, Device):
        return spec
    if spec in ("cpu", "auto", "cuda"):
        return spec
    raise ConfigError(f"device={spec!r} for a worker: use 'auto', 'cpu', 'cuda' or a "
                      "veil.distributed.ShardDevice subclass")


class _Worker:
    """One worker of a run: a Ray actor holding an enclave session and its device."""

    def __init__(self, worker: int, workers: int, rendezvous, device_class):
        if device_class in ("cuda", "auto"):
            from veil import _cuda

            if _cuda.available():
                device_class = CudaShardDevice
            elif device_class == "cuda":
                raise ConfigError(f"worker {worker}: device='cuda' needs CuPy and a CUDA GPU: "
                                  f"{_cuda.unavailable_reason()}")
        if device_class in ("cpu", "auto"):
            device_class = ShardDevice
        self.worker = worker
        self.workers = workers
        self.link = _Link(rendezvous, worker, workers)
        self.device = device_class()
        self.device.link = self.link
        self.session = None

    def start(self, layers, config, threads, key, attempt, checkpoint=None):
        from veil import _native
        from veil._enclave import default_enclave

        self.link.attempt = attempt
        native_device = _native.python_device(self.device)
        session = _native.NativeTrainer(default_enclave(), native_device, layers, config,
                                        *(checkpoint or ()))
        session.use_threads(threads)
        session.join(key, self.worker, self.workers)
        self.native_device = native_device  # the session's device: kept alive with it
        self.session = session

    def step(self, attempt, x, labels):
        self.link.attempt = attempt
        return self.session.step(x, labels)

    def predict(self, x):
        return self.session.predict(x)

    def halve_lr(self):
        return self.session.halve_lr()

    def export_weights(self, layer):
        return self.session.export_weights(layer)

    def checkpoint(self, key):
        return self.session.checkpoint(key)

    def stats(self):
        return self.session.stats()

    def timing(self):
        return self.session.timing()

    def reset_timing(self):
        self.session.reset_timing()
        self.link.bytes_sent = self.link.bytes_received = 0
        self.link.seconds = 0.0

    def traffic(self):
        return {"bytes_sent": self.link.bytes_sent, "bytes_received": self.link.bytes_received,
                "seconds": self.link.seconds}

    def use_threads(self, threads):
        self.session.use_threads(threads)


def _shard_sizes(rows: int, workers: int) -> List[int]:
    """Contiguous shards, the first rows % workers of them one row longer."""
    return [rows // workers + (1 if k < rows % workers else 0) for k in range(workers)]


class DistributedSession:
    """The driver's side of a run: what a Trainer calls for a native session
    (step, predict, halve_lr, export_weights, checkpoint, stats, timing), each
    carried out by every worker through Ray."""

    python_exception = None  # Trainer._call's hook for a Python device's own exception

    def __init__(self, layers: list, config: dict, workers: int,
                 device: Union[str, type, Sequence] = "auto", threads: int = 1,
                 key: Optional[bytes] = None, checkpoint=None):
        limit = _codes.LIMIT["max_workers"]
        if isinstance(workers, bool) or not isinstance(workers, int) or not (
                1 <= workers <= limit):
            raise ConfigError(f"workers must be an int in [1, {limit}], got {workers!r}")
        specs = list(device) if isinstance(device, (list, tuple)) else [device] * workers
        if len(specs) != workers:
            raise ConfigError(f"device= lists {len(specs)} devices for {workers} workers")
        classes = [_device_class(spec) for spec in specs]
        ray = _ray()
        self._ray = ray
        self.workers = workers
        self._ended: Optional[Error] = None
        self._attempt = 0
        rendezvous_actor = ray.remote(num_cpus=0)(_Rendezvous)
        self._rendezvous = rendezvous_actor.remote(workers)
        worker_actor = ray.remote(num_cpus=0)(_Worker)
        self._workers = [worker_actor.remote(k, workers, self._rendezvous, cls)
                         for k, cls in enumerate(classes)]
        attempt = self._next_attempt()
        self._all("start", [
            w.start.remote(layers, config, threads, key, attempt, checkpoint)
            for w in self._workers])

    # -- plumbing ------------------------------------------------------------
    def _next_attempt(self) -> int:
        self._attempt += 1
        return self._attempt

    #: Seconds the other workers get to return once one has failed (their waits at the
    #: rendezvous end at once; a worker that still does not return is hung).
    straggler_timeout = 120.0

    def _all(self, what: str, refs: list) -> list:
        """Every worker's result, in worker order. On the first failure the other
        workers' waits end, and the error raised names that worker."""
        ray = self._ray
        results: list = [None] * len(refs)
        index = {ref: k for k, ref in enumerate(refs)}
        first = None
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1,
                                      timeout=None if first is None else self.straggler_timeout)
            if not ready:
                self._ended = WorkerError(f"{first}; then worker(s) "
                                          f"{sorted(index[r] for r in pending)} did not return "
                                          f"within {self.straggler_timeout:g} s")
                raise first
            k = index[ready[0]]
            try:
                results[k] = ray.get(ready[0])
            except Exception as e:  # noqa: BLE001 - every failure is named and re-raised
                if first is None:
                    first = self._named(k, what, e)
                    self._rendezvous.fail.remote(self._attempt, str(first))
        if first is not None:
            self._end_if_broken(first)
            raise first
        return results

    def _named(self, worker: int, what: str, e: Exception) -> Error:
        ray = self._ray
        if isinstance(e, ray.exceptions.RayActorError):
            return WorkerError(f"worker {worker} died during {what}: every worker's step ended; "
                               "resume the run from its last checkpoint (Trainer.resume with "
                               f"workers=) [{type(e).__name__}]")
        cause = getattr(e, "cause", None) if isinstance(e, ray.exceptions.RayTaskError) else e
        if isinstance(cause, Error):
            return type(cause)(f"worker {worker}: {cause}")
        return WorkerError(f"worker {worker} failed during {what}: {cause or e}")

    def _end_if_broken(self, error: Error) -> None:
        # Abandoned exchanges change nothing; a death, an integrity failure or an
        # aborted session ends the run.
        if isinstance(error, (WorkerError, VerificationError)):
            self._ended = error
            return
        try:
            stats = self._ray.get([w.stats.remote() for w in self._workers])
        except Exception as e:  # noqa: BLE001
            self._ended = WorkerError(f"a worker cannot be reached: {e}")
            return
        if any(s["aborted"] for s in stats):
            self._ended = error

    def _check_open(self, call: str) -> None:
        if self._ended is not None:
            raise ProtocolError(f"{call}: the run has ended ({self._ended})")

    # -- what a Trainer calls --------------------------------------------------
    def step(self, x: np.ndarray, labels: np.ndarray):
        self._check_open("train_step")
        batch = x.shape[0]
        if batch == 0:
            raise InputError("the batch is empty")
        attempt = self._next_attempt()
        sizes = _shard_sizes(batch, self.workers)
        starts = np.cumsum([0] + sizes)
        results = self._all(f"step (attempt {attempt})", [
            w.step.remote(attempt, x[a:b], labels[a:b])
            for w, a, b in zip(self._workers, starts[:-1], starts[1:])])
        loss = sum(r[0] * n for r, n in zip(results, sizes)) / batch
        correct = sum(r[1] for r in results)
        saturated = sum(r[2] for r in results)
        # Every worker checked its shard of each product: as many checks as one worker.
        return loss, correct, saturated, results[0][3], results[0][4]

    def predict(self, x: np.ndarray) -> np.ndarray:
        self._check_open("predict")
        starts = np.cumsum([0] + _shard_sizes(x.shape[0], self.workers))
        return np.concatenate(self._all("predict", [
            w.predict.remote(x[a:b])
            for w, a, b in zip(self._workers, starts[:-1], starts[1:]) if b > a]), axis=0)

    def halve_lr(self) -> None:
        self._check_open("halve_lr")
        self._all("halve_lr", [w.halve_lr.remote() for w in self._workers])

    def export_weights(self, layer: int) -> np.ndarray:
        self._check_open("export_weights")
        return self._all("export_weights", [self._workers[0].export_weights.remote(layer)])[0]

    def checkpoint(self, key: bytes = b""):
        """Worker 0's sealed state and the weights it checked: one checkpoint for
        the run, since every worker holds the same secrets, fingerprints and weights."""
        self._check_open("checkpoint")
        return self._all("checkpoint", [self._workers[0].checkpoint.remote(key)])[0]

    def stats(self) -> dict:
        stats = self._all("stats", [self._workers[0].stats.remote()])[0]
        return dict(stats, workers=self.workers)

    def timing(self) -> dict:
        return self._all("timing", [self._workers[0].timing.remote()])[0]

    def reset_timing(self) -> None:
        self._all("reset_timing", [w.reset_timing.remote() for w in self._workers])

    def traffic(self) -> List[dict]:
        """Per worker since the last reset_timing: the bytes it sent to and received from
        the run, and the seconds it spent at the rendezvous (transfers and waiting)."""
        return self._all("traffic", [w.traffic.remote() for w in self._workers])

    def use_threads(self, threads: int) -> None:
        self._all("use_threads", [w.use_threads.remote(threads) for w in self._workers])

    def close(self) -> None:
        """End the workers (their sessions close with their processes)."""
        for actor in getattr(self, "_workers", []) + [getattr(self, "_rendezvous", None)]:
            if actor is not None:
                try:
                    self._ray.kill(actor)
                except Exception:  # noqa: BLE001 - already gone
                    pass
        self._workers = []
        self._rendezvous = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

