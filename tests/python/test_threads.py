"""Threads lent to the enclave (threads=, docs/design.md §5): training, inference and
error reports are bit-identical for any thread count, on the C++ CPU device and on
the numpy reference device."""
import numpy as np
import pytest

import veil

BATCH = 128


def _model():
    return veil.Sequential([veil.Dense(64, 256), veil.ReLU(), veil.Dense(256, 256), veil.ReLU(),
                            veil.Dense(256, 10)])


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((4 * BATCH, 64)), rng.integers(0, 10, 4 * BATCH)


def _train(threads, device="cpu"):
    X, y = _data()
    trainer = veil.Trainer(_model(), device=device, batch_size=BATCH, seed=3, threads=threads)
    assert trainer.stats()["threads"] == threads
    history = trainer.fit(X, y, epochs=2, batch_size=BATCH, verbose=0)
    return (history.history["loss"], trainer.export_weights(), trainer.predict_proba(X[:100]),
            trainer)


@pytest.mark.parametrize("device", ["cpu", "numpy"])
def test_training_is_bit_identical_for_any_thread_count(device):
    dev = (lambda: veil.NumpyDevice()) if device == "numpy" else (lambda: "cpu")
    losses, weights, probs, _ = _train(1, dev())
    for threads in (2, 3):
        other_losses, other_weights, other_probs, trainer = _train(threads, dev())
        assert other_losses == losses
        for a, b in zip(other_weights, weights):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(other_probs, probs)
    if device == "cpu":  # the C++ device and the reference device agree too
        ref_losses, ref_weights, ref_probs, _ = _train(2, veil.NumpyDevice())
        assert ref_losses == losses
        np.testing.assert_array_equal(ref_probs, probs)


@pytest.mark.parametrize("mode", ["verify", "private"])
def test_inference_is_bit_identical_for_any_thread_count(mode):
    *_, trainer = _train(1)
    X, _ = _data(5)
    outputs = []
    for threads in (1, 2, 3):
        infer = veil.Inference(trainer, mode=mode, device="cpu", batch_size=BATCH,
                               threads=threads)
        assert infer.stats()["threads"] == threads
        if mode == "private":
            infer.precompute(batches=1, batch_size=BATCH, verbose=0)
        outputs.append(infer.predict_proba(X[:BATCH]))
    for out in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0])


class _LateLie(veil.NumpyDevice):
    """Honest, except one element of a late row of the second step's layer-1 product."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, layer, a):
        z = super().forward(layer, a)
        self.calls += 1
        if self.calls == 5:  # step 2, layer 1
            z = np.array(z)
            z[100, 7] += 1.0
        return z


def test_error_reports_are_the_same_for_any_thread_count():
    X, y = _data()
    messages = []
    for threads in (1, 2, 3):
        trainer = veil.Trainer(_model(), device=_LateLie(), batch_size=BATCH, seed=3,
                               threads=threads)
        trainer.train_step(X[:BATCH], y[:BATCH])
        with pytest.raises(veil.VerificationError) as err:
            trainer.train_step(X[BATCH:2 * BATCH], y[BATCH:2 * BATCH])
        messages.append(str(err.value))
    assert "layer 1, phase forward, step 2" in messages[0] and "row 100" in messages[0]
    assert messages[1] == messages[0] and messages[2] == messages[0]


def test_threads_knob_is_checked_and_auto_is_the_cores():
    import os
    trainer = veil.Trainer(_model(), device="cpu", batch_size=BATCH, threads="auto")
    assert trainer.threads == max(1, min(len(os.sched_getaffinity(0)), 16))
    assert trainer.stats()["threads"] == trainer.threads
    assert veil.Trainer(_model(), device="cpu", batch_size=BATCH).stats()["threads"] == 1
    for bad in (0, 17, 2.0, "2", True):
        with pytest.raises(veil.ConfigError, match="threads"):
            veil.Trainer(_model(), device="cpu", batch_size=BATCH, threads=bad)


def test_trace_counters_are_reported():
    X, y = _data()
    trainer = veil.Trainer(_model(), device="cpu", batch_size=BATCH, threads=2)
    trainer.train_step(X[:BATCH], y[:BATCH])
    stats = trainer.stats()
    # Layer 0 has no backward product, so its update carries dZ_0 every step.
    assert stats["update_operands_sent"] == 1
    assert stats["limb_splits"] == 0 and stats["max_abs_refreshes"] == 0
    trainer.export_weights()
    assert trainer.stats()["audits"] == 3
