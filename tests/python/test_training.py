"""Verify-mode training: accuracy, exactness, and adversarial devices being caught."""

import numpy as np
import pytest

import veil


def small_model(width=16, act=veil.ReLU):
    return veil.Sequential([veil.Dense(64, width), act(), veil.Dense(width, width), act(),
                            veil.Dense(width, 10)])


def test_digits_trains_to_high_accuracy(digits):
    model = veil.Sequential([veil.Dense(64, 128), veil.ReLU(), veil.Dense(128, 128), veil.ReLU(),
                             veil.Dense(128, 10)])
    trainer = veil.Trainer(model, mode="verify", device="cpu", loss="cross_entropy",
                           lr=2**-2, seed=0, batch_size=64, halve_lr_at=(20,))
    history = trainer.fit(digits.X_train, digits.y_train, epochs=30, batch_size=64, verbose=0)
    assert len(history.history["loss"]) == 30
    result = trainer.evaluate(digits.X_test, digits.y_test)
    assert result["accuracy"] >= 0.97
    assert trainer.checks_passed > 30 * 22 * 5


@pytest.mark.parametrize("act", [veil.Sigmoid, veil.Arctan, veil.Softplus])
def test_seed_setting_mse_trains(digits, act):
    # The seed's setting: hidden activation act, a sigmoid output, MSE on one-hot labels.
    model = veil.Sequential([veil.Dense(64, 64), act(), veil.Dense(64, 10), veil.Sigmoid()])
    trainer = veil.Trainer(model, device="cpu", loss="mse", lr=2**-1, seed=0, batch_size=32)
    trainer.fit(digits.X_train, digits.y_train, epochs=30, verbose=0)
    assert trainer.evaluate(digits.X_test, digits.y_test)["accuracy"] >= 0.90


def test_cpu_and_numpy_devices_are_bit_identical(digits):
    results = []
    for device in ("cpu", veil.NumpyDevice()):
        trainer = veil.Trainer(small_model(), device=device, lr=2**-3, seed=3, batch_size=32)
        trainer.fit(digits.X_train[:320], digits.y_train[:320], epochs=2, verbose=0)
        results.append(trainer.export_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_timing_counts_each_operand_of_a_step_once():
    # Forward operands (bias column included), backward operands of layers 1..L-1,
    # and layer 0's dZ for its update: the updates reuse what the device was sent.
    # At the default formats operands are narrow (float32); results are float64.
    trainer = veil.Trainer(small_model(), device="cpu", lr=2**-3, seed=1, batch_size=16)
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 64)), rng.integers(0, 10, 16)
    trainer.train_step(x, y)
    trainer.reset_timing()
    trainer.train_step(x, y)
    t = trainer.timing()
    assert t["total"] > 0 and t["device"] > 0 and t["enclave"] == pytest.approx(t["total"] - t["device"])
    sent = 16 * ((64 + 1) + (16 + 1) + (16 + 1) + 16 + 10 + 16) * 4
    returned = 16 * (16 + 16 + 10 + (16 + 1) + (16 + 1)) * 8
    assert (t["bytes_to_device"], t["bytes_from_device"]) == (sent, returned)


def test_limb_split_products_train_exactly_like_single_products():
    # A device that overstates max|M| only makes the enclave split products into
    # more limbs (soundness rests on the enclave's own bound). Here the overstated
    # bound splits the backward product above the ReLU layer, whose gradient then
    # comes from the limb path with the forward's ReLU mask instead of the fused
    # pass: the training must not change by a bit.
    class Overstating(veil.NumpyDevice):
        def max_abs(self, layer):
            return 1e300

    runs = []
    for device in (veil.NumpyDevice(), Overstating()):
        model = veil.Sequential([veil.Dense(8, 64), veil.ReLU(), veil.Dense(64, 10)])
        trainer = veil.Trainer(model, device=device, lr=1, frac_grad=18, seed=0, batch_size=16)
        rng = np.random.default_rng(0)
        x, y = 4 * rng.random((16, 8)), rng.integers(0, 10, 16)
        checks, losses = [], []
        for _ in range(6):
            before = trainer.checks_passed
            losses.append(trainer.train_step(x, y)[0])
            checks.append(trainer.checks_passed - before)
        runs.append((checks, losses, trainer.export_weights()))
    (honest_checks, honest_losses, honest_w), (split_checks, split_losses, split_w) = runs
    assert honest_checks == [3] * 6, "the honest run needs no limbs"
    assert max(split_checks) == 4, "the overstated bound splits one product in two"
    assert split_losses == honest_losses
    for a, b in zip(honest_w, split_w):
        np.testing.assert_array_equal(a, b)


def test_export_returns_the_device_weights():
    device = veil.NumpyDevice()
    trainer = veil.Trainer(small_model(), device=device, lr=2**-3, seed=1, batch_size=16)
    rng = np.random.default_rng(0)
    trainer.fit(rng.random((64, 64)), rng.integers(0, 10, 64), epochs=1, verbose=0)
    scale = 2.0 ** -(8 + 12 + 3 + 4)
    for layer, w in enumerate(trainer.export_weights()):
        np.testing.assert_array_equal(w, device.weights[layer] * scale)


def test_initial_weights_depend_only_on_seed():
    a = veil.Trainer(small_model(), device="cpu", seed=5).export_weights()
    b = veil.Trainer(small_model(), device="cpu", seed=5).export_weights()
    c = veil.Trainer(small_model(), device="cpu", seed=6).export_weights()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert np.all(a[0][-1] == 0), "biases start at zero"


class Cheater(veil.NumpyDevice):
    """Honest until (step, layer, operation) comes up, then cheats once."""

    def __init__(self, step, layer, operation):
        super().__init__()
        self.target = (step, layer, operation)
        self.step = 0  # the 1-based train_step in progress (counted on layer 0 forward)
        self.previous = {}
        self.cheated = False

    def _hit(self, layer, operation):
        if (self.step, layer, operation) == self.target and not self.cheated:
            self.cheated = True
            return True
        return False

    def forward(self, layer, a):
        if layer == 0:
            self.step += 1
        z = super().forward(layer, a)
        if self._hit(layer, "forward"):
            z = z.copy()
            z[a.shape[0] // 2, z.shape[1] // 2] += 1.0
        if self._hit(layer, "replay") and ("forward", layer) in self.previous:
            prev = self.previous[("forward", layer)]
            if prev.shape == z.shape:
                z = prev
        self.previous[("forward", layer)] = z.copy()
        return z

    def backward(self, layer, dz):
        da = super().backward(layer, dz)
        if self._hit(layer, "backward"):
            da = da.copy()
            da[0, 0] -= 1.0
        return da

    def update(self, layer, a, dz):
        if self._hit(layer, "skip-update"):
            return
        super().update(layer, a, dz)
        if self._hit(layer, "wrong-update"):
            self.weights[layer][1, 1] += 1.0


def batches(n_steps, batch=16, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n_steps):
        yield rng.random((batch, 64)), rng.integers(0, 10, batch)


# Where each cheat is caught: a bad product at once; a bad update at the next
# product that uses the weights (the next step's forward of the same layer).
CHEATS = [
    ("forward", "forward", 0),
    ("backward", "backward", 0),
    ("wrong-update", "forward", 1),
    ("skip-update", "forward", 1),
    ("replay", "forward", 0),
]


@pytest.mark.parametrize("operation,phase,delay", CHEATS)
def test_cheating_device_is_caught(operation, phase, delay):
    rng = np.random.default_rng(hash(operation) % 2**32)
    step = int(rng.integers(2, 8))
    layer = int(rng.integers(1 if operation == "backward" else 0, 3))
    device = Cheater(step, layer, operation)
    trainer = veil.Trainer(small_model(), device=device, lr=2**-3, seed=0, batch_size=16)
    with pytest.raises(veil.VerificationError) as info:
        for x, y in batches(20):
            trainer.train_step(x, y)
    message = str(info.value)
    assert device.cheated
    assert f"layer {layer}" in message
    assert f"phase {phase}" in message
    assert f"step {step + delay}" in message
    # The session is over: nothing more leaves it.
    with pytest.raises(veil.ProtocolError, match="aborted"):
        trainer.predict(np.zeros((1, 64)))
    with pytest.raises(veil.ProtocolError, match="aborted"):
        trainer.export_weights()


def test_thousand_honest_steps_raise_nothing():
    trainer = veil.Trainer(small_model(), device="cpu", lr=2**-4, seed=0, batch_size=16)
    for x, y in batches(1000):
        trainer.train_step(x, y)
    stats = trainer.stats()
    assert stats["step"] == 1000
    assert not stats["aborted"]
    assert stats["checks_passed"] == 1000 * 5


def test_device_altering_weights_before_export_is_caught():
    class Forger(veil.NumpyDevice):
        def download(self, layer):
            w = super().download(layer).copy()
            w[0, 0] += 2.0
            return w

    trainer = veil.Trainer(small_model(), device=Forger(), seed=0)
    with pytest.raises(veil.VerificationError, match="layer 0.*phase export"):
        trainer.export_weights()


def test_overflowing_configuration_is_refused():
    model = veil.Sequential([veil.Dense(64, 32), veil.ReLU(), veil.Dense(32, 10)])
    with pytest.raises(veil.ConfigError, match=r"layer 0: .*2\^53.*lr_exp"):
        veil.Trainer(model, device="cpu", lr=2**-20, frac_act=16, frac_grad=20,
                     act_clip=1e5, weight_max=1e5, batch_size=256)


def test_bad_inputs_get_clear_errors_and_session_survives():
    trainer = veil.Trainer(small_model(), device="cpu", seed=0, batch_size=16)
    x, y = next(batches(1))
    with pytest.raises(veil.InputError, match=r"shape \(n, 64\)"):
        trainer.train_step(x[:, :10], y)
    bad = x.copy()
    bad[3, 4] = np.nan
    with pytest.raises(veil.InputError, match=r"\[3, 4\] is nan"):
        trainer.train_step(bad, y)
    with pytest.raises(veil.InputError, match=r"labels must be in \[0, 10\)"):
        trainer.train_step(x, np.full(16, 10))
    with pytest.raises(veil.ConfigError, match="batch_size=32"):
        trainer.fit(np.vstack([x, x]), np.concatenate([y, y]), batch_size=32, verbose=0)
    loss, correct = trainer.train_step(x, y)
    assert np.isfinite(loss) and 0 <= correct <= 16


def test_lr_must_be_a_power_of_two():
    with pytest.raises(veil.ConfigError, match="power of two"):
        veil.Trainer(small_model(), device="cpu", lr=0.3)


def test_private_training_of_a_trainable_first_layer_is_refused_with_the_reason():
    with pytest.raises(veil.ConfigError, match="docs/design.md §6"):
        veil.Trainer(small_model(), mode="private", device="cpu")


def test_device_exception_surfaces_with_its_cause():
    class Broken(veil.NumpyDevice):
        def forward(self, layer, a):
            raise RuntimeError("GPU fell off the bus")

    trainer = veil.Trainer(small_model(), device=Broken(), seed=0, batch_size=16)
    x, y = next(batches(1))
    with pytest.raises(veil.DeviceError, match="fell off the bus") as info:
        trainer.train_step(x, y)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_wrong_shape_from_device_is_a_device_error():
    class Misshapen(veil.NumpyDevice):
        def forward(self, layer, a):
            return super().forward(layer, a)[:, :-1]

    trainer = veil.Trainer(small_model(), device=Misshapen(), seed=0, batch_size=16)
    x, y = next(batches(1))
    with pytest.raises(veil.DeviceError, match="shape"):
        trainer.train_step(x, y)
