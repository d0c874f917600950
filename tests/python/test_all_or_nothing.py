"""A training step is all or nothing (docs/design.md 4.2).

A device that fails once, at any call of a step, must never leave a partly
applied step behind: either the step leaves no trace (the same batch can be
retried, and training ends bit-identical to an honest run of the same calls),
or the session is aborted with an error naming layer, phase and step, and every
later call is refused.
"""
from __future__ import annotations

import numpy as np
import pytest

import veil

DEVICE_OPS = ("forward", "backward", "update", "max_abs", "download", "scale")


class FailsOnce(veil.NumpyDevice):
    """An honest device that raises once, at the `nth` call of `op` on `layer`
    (counted from when it is armed), and records every call it gets."""

    def __init__(self):
        super().__init__()
        self.armed = None
        self.calls = []

    def arm(self, op, layer, nth):
        self.armed, self.seen = (op, layer, nth), 0

    def _enter(self, op, layer):
        self.calls.append((op, layer))
        if self.armed and self.armed[:2] == (op, layer):
            if self.seen == self.armed[2]:
                self.armed = None
                raise RuntimeError(f"injected failure in {op} of layer {layer}")
            self.seen += 1


for _op in DEVICE_OPS:
    def _wrapped(self, layer, *args, _op=_op):
        self._enter(_op, layer)
        return getattr(veil.NumpyDevice, _op)(self, layer, *args)
    setattr(FailsOnce, _op, _wrapped)


def make_trainer(device):
    # lr=1 with frac_grad=18 makes the enclave ask the device for max|M| after
    # updates, so the step's weight reads are exercised as well as its products.
    model = veil.Sequential([veil.Dense(8, 32), veil.ReLU(), veil.Dense(32, 16), veil.ReLU(),
                             veil.Dense(16, 10)])
    return veil.Trainer(model, device=device, lr=1, frac_grad=18, seed=0, batch_size=16)


def batches():
    rng = np.random.default_rng(7)
    return [(4 * rng.random((16, 8)), rng.integers(0, 10, 16)) for _ in range(4)]


def honest_run():
    trainer = make_trainer(veil.NumpyDevice())
    losses = [trainer.train_step(x, y)[0] for x, y in batches()]
    return losses, trainer.export_weights(), trainer.stats()


def calls_of_a_step():
    """Every (op, layer, occurrence) the device sees in the third step of a run."""
    device = FailsOnce()
    trainer = make_trainer(device)
    data = batches()
    for x, y in data[:2]:
        trainer.train_step(x, y)
    device.calls.clear()
    trainer.train_step(*data[2])
    seen, cases = {}, []
    for op, layer in device.calls:
        cases.append((op, layer, seen.get((op, layer), 0)))
        seen[(op, layer)] = seen.get((op, layer), 0) + 1
    return cases


CASES = calls_of_a_step()


def test_the_step_reaches_every_phase_of_every_layer():
    kinds = {(op, layer) for op, layer, _ in CASES}
    for layer in range(3):
        assert ("forward", layer) in kinds and ("update", layer) in kinds
    assert ("backward", 1) in kinds and ("backward", 2) in kinds
    assert any(op == "max_abs" for op, _ in kinds), "the step should read max|M| too"
    # Every product of a step comes before its first update.
    ops = [op for op, _, _ in CASES]
    first_update = ops.index("update")
    assert "backward" not in ops[first_update:] and "forward" not in ops[first_update:]


@pytest.mark.parametrize("op,layer,nth", CASES, ids=[f"{o}-l{l}-{n}" for o, l, n in CASES])
def test_a_device_failure_never_leaves_a_partial_step(op, layer, nth):
    honest_losses, honest_weights, honest_stats = honest_run()
    device = FailsOnce()
    trainer = make_trainer(device)
    data = batches()
    losses = []
    for i, (x, y) in enumerate(data):
        if i == 2:
            device.arm(op, layer, nth)
        try:
            losses.append(trainer.train_step(x, y)[0])
            continue
        except veil.DeviceError as e:
            message = str(e)
        assert f"layer {layer}" in message and "step 3" in message, message
        if trainer.stats()["aborted"]:
            # Once an update was sent the step cannot be undone: the session ends.
            assert op in ("update", "max_abs"), f"{op} failed before any update, yet aborted"
            assert "aborted" in message
            with pytest.raises(veil.ProtocolError):
                trainer.train_step(x, y)
            with pytest.raises(veil.ProtocolError):
                trainer.export_weights()
            return
        # No trace: the retried batch continues the honest trajectory.
        assert op not in ("update",), "a failed update must abort the session"
        assert trainer.stats()["step"] == 2
        losses.append(trainer.train_step(x, y)[0])
    assert losses == honest_losses
    for a, b in zip(trainer.export_weights(), honest_weights):
        np.testing.assert_array_equal(a, b)
    stats = trainer.stats()
    assert stats["step"] == honest_stats["step"]
    assert stats["checks_passed"] == honest_stats["checks_passed"]


def test_a_failure_after_an_update_used_to_keep_that_update():
    # The case the old step order got wrong: the top layer's update went out
    # before the layer below's backward product. Now the backward product fails
    # first and nothing is updated.
    device = FailsOnce()
    trainer = make_trainer(device)
    data = batches()
    trainer.train_step(*data[0])
    device.arm("backward", 1, 0)
    with pytest.raises(veil.DeviceError, match="layer 1, phase backward, step 2"):
        trainer.train_step(*data[1])
    assert not trainer.stats()["aborted"]
    for x, y in data[1:]:
        trainer.train_step(x, y)
    _, honest_weights, _ = honest_run()
    for a, b in zip(trainer.export_weights(), honest_weights):
        np.testing.assert_array_equal(a, b)


def test_a_failed_weight_read_at_export_keeps_the_session():
    device = FailsOnce()
    trainer = make_trainer(device)
    x, y = batches()[0]
    trainer.train_step(x, y)
    device.arm("download", 1, 0)
    with pytest.raises(veil.DeviceError, match="layer 1"):
        trainer.export_weights()
    assert not trainer.stats()["aborted"]
    assert len(trainer.export_weights()) == 3
