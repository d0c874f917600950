"""Sealed checkpoints: exact resume, crash and resume, and rejected checkpoints."""
import json
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import veil

KEY = veil.INSECURE_TEST_SEALING_KEY


def model():
    return veil.Sequential([veil.Dense(64, 32), veil.ReLU(), veil.Dense(32, 10)])


def new_trainer(device="cpu"):
    return veil.Trainer(model(), device=device, lr=2**-2, seed=4, batch_size=32, halve_lr_at=(3,))


def test_resume_is_bit_identical_to_an_uninterrupted_run(digits, tmp_path):
    X, y = digits.X_train, digits.y_train
    straight = new_trainer()
    straight.fit(X, y, epochs=5, verbose=0)

    first = new_trainer()
    first.fit(X, y, epochs=2, verbose=0)
    first.save_checkpoint(tmp_path / "ckpt", sealing_key=KEY)
    resumed = veil.Trainer.resume(tmp_path / "ckpt", device="cpu", sealing_key=KEY)
    assert resumed.epochs_done == 2
    resumed.fit(X, y, epochs=3, verbose=0)   # crosses the halving at epoch 3
    # The counters carry over; saving and restoring each check every layer's
    # weights against both fingerprints (two checks per layer, two layers).
    straight_stats, resumed_stats = straight.stats(), resumed.stats()
    assert resumed_stats["checks_passed"] == straight_stats["checks_passed"] + 2 * (2 * 2)
    assert resumed_stats["products"] == straight_stats["products"]
    for a, b in zip(straight.export_weights(), resumed.export_weights()):
        np.testing.assert_array_equal(a, b)
    assert resumed.stats()["step"] == straight.stats()["step"]
    assert [e["loss"] for e in resumed.history["epochs"]] == \
        [e["loss"] for e in straight.history["epochs"]]


CHILD = textwrap.dedent("""
    import sys, veil
    from veil.datasets import load_dataset
    d = load_dataset("digits", seed=0)
    t = veil.Trainer(veil.Sequential([veil.Dense(64, 32), veil.ReLU(), veil.Dense(32, 10)]),
                     device="cpu", lr=2**-2, seed=4, batch_size=32, halve_lr_at=(3,))
    t.fit(d.X_train, d.y_train, epochs=int(sys.argv[2]), verbose=0,
          checkpoint_dir=sys.argv[1], sealing_key=veil.INSECURE_TEST_SEALING_KEY)
""")


def test_sigkill_at_a_random_point_then_resume_matches(digits, tmp_path):
    total = 30
    ckpt = tmp_path / "ckpt"
    # The child would train far longer than needed; it is killed at a random
    # moment after a random number (1..20) of its per-epoch checkpoints.
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ckpt), "1000"])
    rng = random.Random()
    target = rng.randint(1, 20)
    deadline = time.time() + 300
    while True:
        assert child.poll() is None, "training ended before it was killed"
        assert time.time() < deadline
        try:
            if json.loads((ckpt / "trainer.json").read_text())["epochs_done"] >= target:
                break
        except (OSError, ValueError, KeyError):
            pass  # not written yet, or replaced while we read
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.03))  # mid-epoch, mid-save or mid-step
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL

    resumed = veil.Trainer.resume(ckpt, device="cpu", sealing_key=KEY)
    done = resumed.epochs_done
    assert target <= done < total
    resumed.fit(digits.X_train, digits.y_train, epochs=total - done, verbose=0)

    straight = new_trainer()
    straight.fit(digits.X_train, digits.y_train, epochs=total, verbose=0)
    for a, b in zip(straight.export_weights(), resumed.export_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def two_checkpoints(digits, tmp_path):
    t = new_trainer()
    t.fit(digits.X_train, digits.y_train, epochs=1, verbose=0)
    t.save_checkpoint(tmp_path / "early", sealing_key=KEY)
    t.fit(digits.X_train, digits.y_train, epochs=1, verbose=0)
    t.save_checkpoint(tmp_path / "late", sealing_key=KEY)
    return tmp_path / "early", tmp_path / "late"


def test_tampered_state_is_rejected(two_checkpoints):
    early, _ = two_checkpoints
    blob = bytearray((early / "state.sealed").read_bytes())
    blob[len(blob) // 2] ^= 1
    (early / "state.sealed").write_bytes(bytes(blob))
    with pytest.raises(veil.InputError, match="does not authenticate"):
        veil.Trainer.resume(early, device="cpu", sealing_key=KEY)


def test_rolled_back_state_against_newer_weights_is_rejected(two_checkpoints):
    early, late = two_checkpoints
    shutil.copy(early / "state.sealed", late / "state.sealed")
    with pytest.raises(veil.VerificationError, match="layer 0.*restore.*fingerprints"):
        veil.Trainer.resume(late, device="cpu", sealing_key=KEY)


def test_altered_stored_weights_are_rejected(two_checkpoints):
    _, late = two_checkpoints
    with np.load(late / "weights.npz") as stored:
        weights = {k: stored[k].copy() for k in stored}
    weights["layer1"][3, 4] += 1.0
    np.savez(late / "weights.npz", **weights)
    with pytest.raises(veil.VerificationError, match="layer 1"):
        veil.Trainer.resume(late, device="cpu", sealing_key=KEY)


def test_checkpoint_of_another_model_or_key_is_rejected(two_checkpoints):
    _, late = two_checkpoints
    with pytest.raises(veil.InputError, match="does not authenticate"):
        veil.Trainer.resume(late, device="cpu", sealing_key=bytes(32))
    meta = json.loads((late / "trainer.json").read_text())
    meta["seed"] = 99  # the model is rebuilt with another seed
    (late / "trainer.json").write_text(json.dumps(meta))
    with pytest.raises(veil.InputError, match="another configuration"):
        veil.Trainer.resume(late, device="cpu", sealing_key=KEY)


def test_virtual_backend_has_no_platform_sealing_key(tmp_path):
    t = new_trainer()
    with pytest.raises(veil.ConfigError, match="no platform sealing key"):
        t.save_checkpoint(tmp_path / "ckpt")
    with pytest.raises(veil.ConfigError, match="32 bytes"):
        t.save_checkpoint(tmp_path / "ckpt", sealing_key=b"short")


def test_cli_resume_continues_the_run(tmp_path):
    out = tmp_path / "run"
    base = [sys.executable, "-m", "veil", "train", "--dataset", "digits", "--layers", "64-32-10",
            "--insecure-test-key", "--quiet", "--device", "cpu"]
    first = subprocess.run(base + ["--epochs", "2", "--out", str(out)], capture_output=True,
                           text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert (out / "checkpoint" / "state.sealed").exists()
    second = subprocess.run(base + ["--epochs", "4", "--resume", str(out)], capture_output=True,
                            text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    straight = subprocess.run(base + ["--epochs", "4", "--out", str(tmp_path / "straight")],
                              capture_output=True, text=True, timeout=300)
    last = lambda r: r.stdout.strip().splitlines()[-1].split()[0]  # noqa: E731
    assert last(second) == last(straight)  # same test accuracy after the same 4 epochs
    history = json.loads((out / "history.json").read_text())
    assert len(history["epochs"]) == 4


class LiesInNextUpdate(veil.NumpyDevice):
    """Honest until armed; then its next update adds 1 to one weight of layer 0."""

    armed = False

    def update(self, layer, a, dz):
        super().update(layer, a, dz)
        if self.armed and layer == 0:
            self.weights[0][3, 1] += 1
            self.armed = False


def test_a_lie_before_a_save_keeps_the_last_good_checkpoint(digits, tmp_path):
    X, y = digits.X_train[:256], digits.y_train[:256]
    device = LiesInNextUpdate()
    trainer = new_trainer(device)
    trainer.fit(X, y, epochs=1, verbose=0)
    trainer.save_checkpoint(tmp_path / "ckpt", sealing_key=KEY)
    good = {p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()}
    device.armed = True
    trainer.train_step(X[:32], y[:32])   # the lie is not yet used by any product
    with pytest.raises(veil.VerificationError, match="layer 0, phase export"):
        trainer.save_checkpoint(tmp_path / "ckpt", sealing_key=KEY)
    # Nothing of the lie reached the disk: the last good checkpoint is whole.
    assert {p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()} == good
    assert not (tmp_path / "ckpt.staging").exists() or \
        not (tmp_path / "ckpt.staging" / "state.sealed").exists()
    resumed = veil.Trainer.resume(tmp_path / "ckpt", device="cpu", sealing_key=KEY)
    assert resumed.epochs_done == 1


def test_saved_weights_are_the_ones_the_enclave_checked(tmp_path, digits):
    class LiesOnSecondRead(veil.NumpyDevice):
        reads = 0

        def download(self, layer):
            w = super().download(layer)
            self.reads += 1
            # A device could answer a later, unchecked read differently; save
            # must not ask it twice.
            return w if self.reads <= 2 else w + 1

    device = LiesOnSecondRead()
    trainer = new_trainer(device)
    trainer.fit(digits.X_train[:128], digits.y_train[:128], epochs=1, verbose=0)
    trainer.save_checkpoint(tmp_path / "ckpt", sealing_key=KEY)
    assert device.reads == 2
    veil.Trainer.resume(tmp_path / "ckpt", device="cpu", sealing_key=KEY)
