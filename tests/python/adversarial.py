"""Adversarial devices: an honest numpy device that lies once, in one chosen way.

The device is untrusted (docs/design.md §1): whatever it returns, the enclave must either
accept a correct result or end the session with ``veil.VerificationError`` naming the
layer, the phase and the step. A result of the wrong shape never reaches the enclave:
the host bridge refuses it as ``veil.DeviceError`` naming the shape.

What "the result" of each phase is, and so what a strategy alters:

=============  ==========================================  =========================
phase          the device's result                         host call
=============  ==========================================  =========================
forward        Z = A @ M                                   Trainer.train_step
backward       dA = dZ @ M.T                               Trainer.train_step
update         D = A.T @ dZ, the change it subtracts       Trainer.train_step
export         M, as download() returns it                 Trainer.export_weights
predict        Z = A @ M                                   Trainer.predict (verify)
private_low    X~_lo @ W_q, the low 24-bit limb's product  Inference.predict (private)
private_high   X~_hi @ W_q, the high limb's product        Inference.predict (private)
private_model  W_q, the weights it computes with           Inference.predict (private)
=============  ==========================================  =========================

Strategies that need history (an earlier update, an earlier model) take it from
what the device saw in training; an inference device is given that history with
``remember`` (the weights of earlier versions of the deployed model).

Usage::

    device = Adversary("swap_rows", phase="backward", layer=2, step=3)
    trainer = veil.Trainer(model, device=device, ...)
    with device.calling("train"):
        trainer.train_step(x, y)          # steps 1, 2 honest; step 3 lies

The harness says which host call it is making (``calling``): the host is the
adversary in the threat model, so its device may know that much.
"""
from __future__ import annotations

import contextlib
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

import veil

#: The verification field's modulus, q = 2^61 - 1 (docs/design.md §3).
Q = 2**61 - 1
#: The first float64 integer the range check must refuse.
EXACT = 2.0**53

#: Phases of verify training and verify-mode inference, in the order of the report.
TRAINING_PHASES = ("forward", "backward", "update", "export", "predict")
#: Phases of private inference (veil.Inference(mode="private")).
PRIVATE_PHASES = ("private_low", "private_high", "private_model")


class Strategy:
    """One way to lie. Element-wise strategies implement ``alter``; the others
    override the three hooks below.

    ``alter`` receives a copy of the honest result and returns the lie. For the
    update phase (``update=True``) the result is D = A.T @ dZ, and a strategy that
    touches a single row prefers the bias row (the last one): the bias column of the
    next forward's A is 2^f_a in every row, so the lie is never multiplied away by an
    input that happens to be zero.
    """

    name = ""
    what = ""

    def alter(self, r: np.ndarray, rng: np.random.Generator, update: bool) -> np.ndarray:
        raise NotImplementedError

    def product(self, dev: "Adversary", op: str, layer: int, honest: np.ndarray,
                operand: np.ndarray) -> np.ndarray:
        """The lie for a forward/backward/predict product."""
        return self.alter(honest.copy(), dev.rng, update=False)

    def new_weights(self, dev: "Adversary", layer: int, m: np.ndarray,
                    delta: np.ndarray) -> np.ndarray:
        """The weights the device keeps after a dishonest update."""
        return m - self.alter(delta.copy(), dev.rng, update=True)

    def download(self, dev: "Adversary", layer: int, m: np.ndarray) -> np.ndarray:
        """The weights the device hands over for export."""
        return self.alter(m.copy(), dev.rng, update=False)


def _spot(r: np.ndarray, update: bool) -> Tuple[int, int]:
    return (r.shape[0] - 1 if update else r.shape[0] // 2), r.shape[1] // 2


def _differing_pair(r: np.ndarray, axis: int, first: Optional[int] = None) -> Tuple[int, int]:
    """Two indices along axis whose slices differ (so swapping them is a real lie)."""
    n = r.shape[axis]
    take = (lambda k: r[k]) if axis == 0 else (lambda k: r[:, k])
    firsts = [first] if first is not None else range(n)
    for i in firsts:
        for k in range(n):
            if k != i and not np.array_equal(take(i), take(k)):
                return i, k
    return 0, min(1, n - 1)  # every slice equal: no swap can change the result


class OneElement(Strategy):
    name, what = "one_element", "one element changed by one"

    def alter(self, r, rng, update):
        i, j = _spot(r, update)
        r[i, j] += 1.0
        return r


class RowOffByOne(Strategy):
    name, what = "row_off_by_one", "a whole row off by +1 or -1"

    def alter(self, r, rng, update):
        i, _ = _spot(r, update)
        r[i, :] += float(rng.choice((-1.0, 1.0)))
        return r


class OffByQ(Strategy):
    name, what = "off_by_q", "one element off by exactly q = 2^61 - 1 (vanishes mod q)"

    def alter(self, r, rng, update):
        i, j = _spot(r, update)
        r[i, j] += float(Q)
        return r


class SwapColumns(Strategy):
    name, what = "swap_columns", "two columns swapped"

    def alter(self, r, rng, update):
        j, k = _differing_pair(r, axis=1)
        r[:, [j, k]] = r[:, [k, j]]
        return r


class SwapRows(Strategy):
    name, what = "swap_rows", "two rows swapped"

    def alter(self, r, rng, update):
        i, k = _differing_pair(r, axis=0, first=r.shape[0] - 1 if update else None)
        r[[i, k], :] = r[[k, i], :]
        return r


class Scaled(Strategy):
    name, what = "scaled", "the whole result scaled by 2"

    def alter(self, r, rng, update):
        return r * 2.0


class NonIntegral(Strategy):
    name, what = "non_integral", "one element off by 0.5 (not an integer)"

    def alter(self, r, rng, update):
        i, j = _spot(r, update)
        r[i, j] += 0.5
        return r


class NotANumber(Strategy):
    name, what = "nan", "one element NaN"

    def alter(self, r, rng, update):
        i, j = _spot(r, update)
        r[i, j] = np.nan
        return r


class Infinite(Strategy):
    name, what = "inf", "one element +Inf or -Inf"

    def alter(self, r, rng, update):
        i, j = _spot(r, update)
        r[i, j] = float(rng.choice((-np.inf, np.inf)))
        return r


class Beyond53(Strategy):
    name, what = "beyond_2_53", "one element +-2^53 (the first integer float64 cannot hold exactly)"

    def alter(self, r, rng, update):
        i, j = _spot(r, update)
        r[i, j] = float(rng.choice((-EXACT, EXACT)))
        return r


class Noise(Strategy):
    """Three elements off by small non-zero integers; with a long honest stretch
    before it, this is "honest for N steps, then cheating"."""

    name, what = "honest_then_cheat", "honest for N steps, then three elements off by 1..3"

    def alter(self, r, rng, update):
        flat = rng.choice(r.size, size=min(3, r.size), replace=False)
        if update:  # one of them in the bias row (see Strategy)
            flat[0] = (r.shape[0] - 1) * r.shape[1] + int(rng.integers(r.shape[1]))
        for f in flat:
            r.flat[f] += float(rng.choice((-3, -2, -1, 1, 2, 3)))
        return r


class WrongShape(Strategy):
    name, what = "wrong_shape", "a result with its last column missing"

    def alter(self, r, rng, update):
        return r[:, :-1].copy()

    def new_weights(self, dev, layer, m, delta):
        # The device keeps a misshapen M; its next product has the wrong shape.
        return (m - delta)[:, :-1].copy()


class _OtherWeights(Strategy):
    """A strategy that computes with weights other than the current M."""

    def weights(self, dev: "Adversary", layer: int) -> np.ndarray:
        raise NotImplementedError

    def product(self, dev, op, layer, honest, operand):
        w = self.weights(dev, layer)
        return operand @ (w.T if op == "backward" else w)

    def download(self, dev, layer, m):
        return self.weights(dev, layer).copy()


class Stale(_OtherWeights):
    """Replays an earlier genuine result: the previous step's product of the same
    layer, the previous step's update, the weights as first uploaded."""

    name, what = "stale_replay", "a stale or replayed earlier result of the same call"

    def product(self, dev, op, layer, honest, operand):
        return dev.last_product["forward" if op == "predict" else op, layer].copy()

    def new_weights(self, dev, layer, m, delta):
        return m - dev.last_delta[layer]

    def weights(self, dev, layer):
        return dev.initial[layer]


class OtherLayer(_OtherWeights):
    """The result another layer of the same shape would give."""

    name, what = "other_layer", "another layer's result (a layer of the same shape)"

    def weights(self, dev, layer):
        return dev.weights[dev.partner]

    def new_weights(self, dev, layer, m, delta):
        return m - dev.last_delta[dev.partner]


class WrongUpdate(_OtherWeights):
    """The update applied with the wrong sign: M + D instead of M - D. Products and
    exports then come from those weights."""

    name, what = "wrong_update", "a wrong update (M + D instead of M - D)"

    def weights(self, dev, layer):
        return dev.weights[layer] + 2.0 * dev.last_delta[layer]

    def new_weights(self, dev, layer, m, delta):
        return m + delta


class SkippedUpdate(_OtherWeights):
    """The update not applied. Products and exports come from the weights as they
    were before the last update."""

    name, what = "skipped_update", "a skipped update (M kept as it was)"

    def weights(self, dev, layer):
        return dev.before_update[layer]

    def new_weights(self, dev, layer, m, delta):
        return m.copy()


#: Every strategy, by name, in the order of the report.
STRATEGIES: Dict[str, Strategy] = {s.name: s for s in (
    OneElement(), RowOffByOne(), OffByQ(), SwapColumns(), SwapRows(), Scaled(),
    Stale(), OtherLayer(), WrongUpdate(), SkippedUpdate(), Noise(), NonIntegral(),
    NotANumber(), Infinite(), Beyond53(), WrongShape(),
)}

#: Strategies that need a second layer with the same weight shape.
NEEDS_PARTNER = frozenset({"other_layer"})


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


class Adversary(veil.NumpyDevice):
    """Honest everywhere except one (phase, layer, step), where ``strategy`` lies.

    Args:
        strategy: a name in STRATEGIES, or a Strategy.
        phase: one of TRAINING_PHASES or PRIVATE_PHASES.
        layer: the layer whose result is altered.
        step: for forward/backward/update, the 1-based train step that lies; for the
            private phases, the 1-based batch; for export/predict, the first such
            call lies whatever the step.
        partner: for "other_layer", the layer whose result it returns instead.
        seed: the device's own randomness (which sign, which elements).

    After the run, ``cheated`` is True when a lie was told, i.e. a result really
    differed from the honest one.
    """

    name = "adversary"

    def __init__(self, strategy, phase: str, layer: int, step: int = 1,
                 partner: Optional[int] = None, seed: int = 0):
        super().__init__()
        self.strategy = STRATEGIES[strategy] if isinstance(strategy, str) else strategy
        if phase not in TRAINING_PHASES + PRIVATE_PHASES:
            raise ValueError(f"phase {phase!r} is not one of {TRAINING_PHASES + PRIVATE_PHASES}")
        self.phase, self.layer, self.at, self.partner = phase, layer, step, partner
        self.rng = np.random.default_rng(seed)
        self.call = "train"
        self.step = 0  # the train step or private batch in progress (layer 0's first product)
        self.cheated = False
        self._limbs: Dict[int, int] = {}  # private products seen per layer: low, high, low...
        self.initial: Dict[int, np.ndarray] = {}
        self.before_update: Dict[int, np.ndarray] = {}
        self.last_delta: Dict[int, np.ndarray] = {}
        self.last_product: Dict[Tuple[str, int], np.ndarray] = {}

    def remember(self, initial: Dict[int, np.ndarray], before_update: Dict[int, np.ndarray],
                 last_delta: Dict[int, np.ndarray]) -> None:
        """Give an inference device the history a training device would have seen: the
        first model, the model before the last update, and that update (all W_q)."""
        self.initial.update(initial)
        self.before_update.update(before_update)
        self.last_delta.update(last_delta)

    @contextlib.contextmanager
    def calling(self, call: str) -> Iterator["Adversary"]:
        """Tell the device which host call runs now: "train", "predict", "export" or
        "private" (veil.Inference(mode="private").predict)."""
        previous, self.call = self.call, call
        try:
            yield self
        finally:
            self.call = previous

    def _armed(self, phase: str, layer: int) -> bool:
        if self.cheated or layer != self.layer or phase != self.phase:
            return False
        if phase in ("forward", "backward", "update"):
            return self.call == "train" and self.step == self.at
        if phase in PRIVATE_PHASES:
            return self.call == "private" and self.step == self.at
        return self.call == phase

    def _tell(self, honest: np.ndarray, lie: np.ndarray) -> np.ndarray:
        self.cheated = not _same(honest, lie)
        return lie

    def upload(self, layer, weights):
        super().upload(layer, weights)
        self.initial.setdefault(layer, self.weights[layer].copy())

    def _kind(self, layer: int) -> str:
        """Which product this forward call is."""
        if self.call == "private":
            seen = self._limbs.get(layer, 0)
            self._limbs[layer] = seen + 1
            return "private_low" if seen % 2 == 0 else "private_high"
        return "predict" if self.call == "predict" else "forward"

    def forward(self, layer, a):
        kind = self._kind(layer)
        if layer == 0 and kind in ("forward", "private_low") and self.call in ("train", "private"):
            self.step += 1
            if self._armed("private_model", self.layer):
                # From this batch on the device computes with other weights.
                honest = self.weights[self.layer]
                self.weights[self.layer] = self._tell(
                    honest, self.strategy.download(self, self.layer, honest))
        honest = a @ self.weights[layer]
        out = honest
        if self._armed(kind, layer):
            out = self._tell(honest, self.strategy.product(self, kind, layer, honest, a))
        if kind != "predict":
            self.last_product[kind, layer] = honest
        return out

    def backward(self, layer, dz):
        honest = super().backward(layer, dz)
        out = honest
        if self._armed("backward", layer):
            out = self._tell(honest, self.strategy.product(self, "backward", layer, honest, dz))
        self.last_product[("backward", layer)] = honest
        return out

    def update(self, layer, a, dz):
        m = self.weights[layer]
        delta = a.T @ dz
        new = m - delta
        if self._armed("update", layer):
            new = self._tell(m - delta, self.strategy.new_weights(self, layer, m, delta))
        self.before_update[layer] = m.copy()
        self.last_delta[layer] = delta
        self.weights[layer] = new

    def download(self, layer):
        honest = super().download(layer)
        if self._armed("export", layer):
            return self._tell(honest, self.strategy.download(self, layer, honest))
        return honest
