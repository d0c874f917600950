"""Data-parallel training on Ray (docs/design.md §4.6): N workers, each with its own
enclave and device, end with the weights of one worker, bit for bit; a lying device
on any worker, a host that alters the enclaves' exchange and a worker that dies are
each caught and named."""
import os
import re

import numpy as np
import pytest

import veil

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'veil[distributed]'")
from veil.distributed import ShardDevice, WorkerError  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = bytes(range(32))


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    # A local Ray instance; the workers import this module's devices from here.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": HERE}})
    yield
    ray.shutdown()


def model():
    return veil.Sequential([veil.Dense(64, 32), veil.ReLU(), veil.Dense(32, 10)])


def trainer(**kwargs):
    return veil.Trainer(model(), device=kwargs.pop("device", "cpu"), batch_size=64, seed=5,
                        **kwargs)


def same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.export_weights(), b.export_weights()))


# -- devices that lie, one thing each, from a given step on ---------------------------

class _Liar(ShardDevice):
    bad_step = 3  # the step (counted from 1) at which the device lies

    def __init__(self):
        super().__init__()
        self.steps = 0

    def forward(self, layer, a):
        if layer == 0:
            self.steps += 1
        return super().forward(layer, a)

    def lying(self):
        return self.link.worker == 1 and self.steps == self.bad_step


class WrongProduct(_Liar):
    def forward(self, layer, a):
        z = super().forward(layer, a)
        if self.lying() and layer == 1:
            z = z.copy()
            z[0, 0] += 1.0
        return z


class WrongShare(_Liar):
    def share(self, layer, a, dz):
        s = super().share(layer, a, dz)
        if self.lying() and layer == 0:
            s = s.copy()
            s[2, 3] += 1.0
        return s


class SkippedUpdate(_Liar):
    def update(self, layer, a, dz):
        if not self.lying():
            return super().update(layer, a, dz)
        self.link.allreduce(("update", layer), self.share(layer, a, dz))  # takes part, applies nothing


class AlteredExchange(_Liar):
    def exchange(self, message):
        received = super().exchange(message)
        if not self.lying():
            return received
        altered = bytearray(received)
        altered[40] ^= 1  # a bit of worker 0's message, which worker 1 opens
        return bytes(altered)


class SwappedExchange(_Liar):
    def exchange(self, message):
        received = super().exchange(message)
        if not self.lying():
            return received
        half = len(received) // 2
        return received[half:] + received[:half]  # worker 1's message in worker 0's place


class ReplayedExchange(_Liar):
    def exchange(self, message):
        received = super().exchange(message)
        if self.link.worker == 1 and self.steps == self.bad_step - 1:
            self.kept = received
        if self.lying():
            return self.kept  # the previous step's messages
        return received


class FailsOnce(_Liar):
    def forward(self, layer, a):
        if self.lying() and layer == 0:
            self.steps += 1  # the retry succeeds
            raise RuntimeError("the GPU fell off the bus")
        return super().forward(layer, a)


class DiesAtStep(_Liar):
    bad_step = 30  # in the second epoch (23 steps an epoch)

    def forward(self, layer, a):
        z = super().forward(layer, a)
        if self.lying():
            os._exit(1)
        return z


# -- the same weights as one worker --------------------------------------------------

@pytest.mark.slow
def test_workers_end_with_one_workers_weights_bit_for_bit(digits):
    # 129 rows in batches of 64: the last batch has one row, so a worker has none.
    X, y = digits.X_train[:129], digits.y_train[:129]
    lone = trainer(halve_lr_at=(2,))  # every worker halves its learning rate too
    lone.fit(X, y, epochs=3, verbose=0)
    for workers in (2, 3):
        run = trainer(workers=workers, run_key=KEY, halve_lr_at=(2,))
        run.fit(X, y, epochs=3, verbose=0)
        assert same_weights(lone, run), f"{workers} workers"
        assert run.stats()["step"] == lone.stats()["step"] == 9
        assert run.stats()["lr_exp"] == lone.stats()["lr_exp"] == 3
        assert run.checks_passed >= lone.stats()["step"] * 3
        np.testing.assert_array_equal(run.predict(digits.X_test), lone.predict(digits.X_test))
        # Only float sums of the reported loss may differ, in the last bits.
        assert run.history["epochs"][-1]["loss"] == pytest.approx(
            lone.history["epochs"][-1]["loss"], rel=1e-12)


def test_a_run_of_several_workers_moves_only_deltas_and_shares(digits):
    run = trainer(workers=2, run_key=KEY)
    run.reset_timing()
    run.train_step(digits.X_train[:64], digits.y_train[:64])
    traffic = run._native.traffic()
    # Per step and worker: one sealed message of sum(n + 1 + m) field values (+ header),
    # and per layer a share of (n + 1) x m float64 sent and the sum received.
    deltas = 8 * ((65 + 32) + (33 + 10)) + 8 * 3 + 28
    shares = 8 * (65 * 32 + 33 * 10)
    for t in traffic:
        assert t["bytes_sent"] == deltas + shares
        assert t["bytes_received"] == 2 * deltas + shares


# -- lies on one worker ----------------------------------------------------------------

@pytest.mark.parametrize("device, pattern", [
    (WrongProduct, r"worker 1: .*integrity check failed: layer 1, phase forward, step 3"),
    (SkippedUpdate, r"worker 1: .*integrity check failed: layer 0, phase forward, step 4"),
    # Every device applies the wrong sum, so whichever worker checks first names itself.
    (WrongShare, r"worker [01]: .*integrity check failed: layer 0, phase forward, step 4"),
    (AlteredExchange, r"worker 1: .*integrity check failed: step 3, phase exchange: the "
                      r"message from worker 0 does not authenticate"),
    (SwappedExchange, r"worker 1: .*integrity check failed: step 3, phase exchange: the "
                      r"message from worker 0 does not authenticate"),
    (ReplayedExchange, r"worker 1: .*integrity check failed: step 3, phase exchange: the "
                       r"message from worker 0 does not authenticate"),
])
def test_a_lie_on_one_worker_ends_the_run_naming_worker_phase_and_step(digits, device, pattern):
    run = trainer(workers=2, run_key=KEY, device=[ShardDevice, device])
    with pytest.raises(veil.VerificationError, match=pattern):
        run.fit(digits.X_train[:640], digits.y_train[:640], epochs=1, verbose=0)
    with pytest.raises(veil.ProtocolError, match="the run has ended"):
        run.train_step(digits.X_train[:64], digits.y_train[:64])


def test_bad_run_settings_are_refused_by_name():
    with pytest.raises(veil.ConfigError, match="a run key is 32 bytes"):
        trainer(workers=2, run_key=b"short")
    with pytest.raises(veil.ConfigError, match="run_key= belongs to a run"):
        veil.Trainer(model(), device="cpu", run_key=KEY)
    with pytest.raises(veil.ConfigError, match="workers must be an int"):
        trainer(workers=0)
    with pytest.raises(veil.ConfigError, match="lists 3 devices for 2 workers"):
        trainer(workers=2, device=["cpu"] * 3)


def test_a_device_failure_on_one_worker_leaves_no_trace_on_any(digits):
    X, y = digits.X_train, digits.y_train
    run = trainer(workers=2, run_key=KEY, device=[ShardDevice, FailsOnce])
    lone = trainer()
    failures = 0
    for step in range(5):
        batch = slice(64 * step, 64 * (step + 1))
        lone.train_step(X[batch], y[batch])
        try:
            run.train_step(X[batch], y[batch])
        except veil.DeviceError as e:
            failures += 1
            assert re.search(r"worker 1: .*layer 0, phase forward, step 4: .*the GPU fell off the bus", str(e)), str(e)
            run.train_step(X[batch], y[batch])  # every worker is as before: retry the batch
    assert failures == 1
    assert same_weights(run, lone)


# -- a worker dies: named error, then resume bit-identically ---------------------------

@pytest.mark.slow
def test_a_worker_that_dies_ends_the_step_and_the_run_resumes_bit_identically(digits, tmp_path):
    X, y = digits.X_train, digits.y_train
    ckpt = str(tmp_path / "run")
    run = trainer(workers=2, run_key=KEY, device=["cpu", DiesAtStep])
    with pytest.raises(WorkerError, match=r"worker 1 died during step"):
        run.fit(X, y, epochs=3, verbose=0, checkpoint_dir=ckpt,
                sealing_key=veil.INSECURE_TEST_SEALING_KEY)
    assert run.epochs_done == 1
    with pytest.raises(veil.ProtocolError, match="the run has ended"):
        run.evaluate(X[:10], y[:10])

    resumed = veil.Trainer.resume(ckpt, device="cpu", sealing_key=veil.INSECURE_TEST_SEALING_KEY,
                                  workers=2, run_key=KEY)
    assert resumed.epochs_done == 1
    resumed.fit(X, y, epochs=2, verbose=0)
    uninterrupted = trainer()
    uninterrupted.fit(X, y, epochs=3, verbose=0)
    assert same_weights(resumed, uninterrupted)

    with pytest.raises(veil.InputError, match="sealed by another run"):
        veil.Trainer.resume(ckpt, device="cpu", sealing_key=veil.INSECURE_TEST_SEALING_KEY,
                            workers=2, run_key=bytes(32))


@pytest.mark.gpu
def test_workers_on_gpus_end_with_the_cpu_weights(digits):
    X, y = digits.X_train[:256], digits.y_train[:256]
    cpu = trainer()
    cpu.fit(X, y, epochs=2, verbose=0)
    run = trainer(workers=2, run_key=KEY, device="cuda")
    run.fit(X, y, epochs=2, verbose=0)
    assert same_weights(cpu, run)


def test_cli_workers_prints_the_last_line_of_one_worker(tmp_path, capsys):
    from veil import cli

    args = ["train", "--dataset", "digits", "--epochs", "2", "--batch-size", "64", "--quiet",
            "--device", "cpu"]
    assert cli.main(args + ["--out", str(tmp_path / "one")]) == 0
    one = capsys.readouterr().out.strip().splitlines()[-1]
    assert cli.main(args + ["--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    two = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.match(r"test_accuracy=0\.\d{4} float_test_accuracy=", one)
    assert two == one
