"""Bad input through the Python API: every case gets a veil error that names what was
wrong, nothing crashes, and the session stays usable wherever the protocol allows."""
import threading

import numpy as np
import pytest

import veil
from adversarial import Adversary

FEATURES, CLASSES, BATCH = 16, 4, 8


def model():
    return veil.Sequential([veil.Dense(FEATURES, 16), veil.ReLU(), veil.Dense(16, CLASSES)])


def data(seed=0, rows=BATCH):
    rng = np.random.default_rng(seed)
    return rng.random((rows, FEATURES)), rng.integers(0, CLASSES, rows)


@pytest.fixture
def trainer():
    t = veil.Trainer(model(), device="cpu", lr=2**-3, seed=0, batch_size=BATCH)
    yield t
    # Whatever came before, the session still trains: bad input never ends it.
    x, y = data(1)
    loss, correct = t.train_step(x, y)
    assert np.isfinite(loss) and 0 <= correct <= BATCH
    assert not t.stats()["aborted"]


X_CASES = [
    ("features", lambda x: x[:, :10], r"x must have shape \(n, 16\), got \(8, 10\)"),
    ("one-dimensional", lambda x: x[0], r"x must have shape \(n, 16\), got \(16,\)"),
    ("three-dimensional", lambda x: x[None], r"got \(1, 8, 16\)"),
    ("strings", lambda x: np.full(x.shape, "1.0"), r"x must be numeric, got dtype <U3"),
    ("complex", lambda x: x + 1j, r"x must be numeric, got dtype complex128"),
    ("booleans", lambda x: x > 0.5, r"x must be numeric, got dtype bool"),
    ("objects", lambda x: np.array(x, dtype=object), r"x must be numeric, got dtype object"),
    ("None", lambda x: None, r"x must be numeric"),
    ("NaN", lambda x: np.where(np.arange(16) == 5, np.nan, x), r"x\[0, 5\] is nan"),
    ("+Inf", lambda x: np.where(np.arange(16) == 9, np.inf, x), r"x\[0, 9\] is inf"),
    ("-Inf", lambda x: np.where(np.arange(16) == 2, -np.inf, x), r"x\[0, 2\] is -inf"),
    ("empty", lambda x: x[:0], r"the batch is empty"),
]


@pytest.mark.parametrize("name,bad,message", X_CASES, ids=[c[0] for c in X_CASES])
def test_bad_x_in_a_step(trainer, name, bad, message):
    x, y = data()
    if name == "empty":
        y = y[:0]
    with pytest.raises(veil.InputError, match=message):
        trainer.train_step(bad(x), y)


@pytest.mark.parametrize("name,bad,message", [c for c in X_CASES if c[0] != "empty"],
                         ids=[c[0] for c in X_CASES if c[0] != "empty"])
def test_bad_x_in_a_prediction(trainer, name, bad, message):
    x, _ = data()
    with pytest.raises(veil.InputError, match=message.replace("x", "X", 1)):
        trainer.predict(bad(x))


def test_the_enclave_names_non_finite_x_the_python_layer_let_through(trainer):
    # The enclave checks x itself (the quantizing pass counts non-finite values;
    # only then is x scanned for the first one), whatever the caller validated.
    x, y = data()
    x[2, 5], x[6, 1] = np.inf, np.nan
    with pytest.raises(veil.InputError, match=r"train_step: x\[2, 5\] is infinite"):
        trainer._native.step(np.ascontiguousarray(x), np.ascontiguousarray(y, dtype=np.int32))
    x[2, 5] = 0.5
    with pytest.raises(veil.InputError, match=r"predict: x\[6, 1\] is NaN"):
        trainer._native.predict(np.ascontiguousarray(x))


Y_CASES = [
    ("short", lambda y: y[:7], r"y must have shape \(8,\), got \(7,\)"),
    ("two-dimensional", lambda y: y[:, None], r"y must have shape \(8,\), got \(8, 1\)"),
    ("fractional", lambda y: y + 0.5, r"y must hold integer class ids"),
    ("NaN", lambda y: np.full(8, np.nan), r"y must hold integer class ids"),
    ("strings", lambda y: y.astype(str), r"integer class ids, got dtype <U"),
    ("negative", lambda y: np.where(np.arange(8) == 3, -1, y), r"y holds -1; labels must be in \[0, 4\)"),
    ("too large", lambda y: np.where(np.arange(8) == 3, 4, y), r"y holds 4; labels must be in \[0, 4\)"),
    ("huge", lambda y: np.full(8, 2**40), r"y holds 1099511627776"),
]


@pytest.mark.parametrize("name,bad,message", Y_CASES, ids=[c[0] for c in Y_CASES])
def test_bad_labels(trainer, name, bad, message):
    x, y = data()
    with pytest.raises(veil.InputError, match=message):
        trainer.train_step(x, bad(y))


def test_batches_the_configuration_cannot_take(trainer):
    x, y = data(rows=BATCH + 1)
    with pytest.raises(veil.InputError, match=r"batch of 9 rows exceeds max_batch=8"):
        trainer.train_step(x, y)
    with pytest.raises(veil.ConfigError, match=r"batch_size=9 must be in \[1, 8\]"):
        trainer.fit(x, y, batch_size=9, verbose=0)
    with pytest.raises(veil.InputError, match="X is empty"):
        trainer.fit(x[:0], y[:0], verbose=0)
    with pytest.raises(veil.InputError, match=r"y must have shape \(9,\), got \(3,\)"):
        trainer.evaluate(x, y[:3])
    assert trainer.predict_proba(x[:0]).shape == (0, CLASSES), "empty probabilities are empty"
    assert trainer.predict(x[:0]).shape == (0,), "an empty prediction is empty"


def test_values_beyond_the_fixed_point_range_saturate_and_are_counted(trainer):
    # act_clip is 64: these inputs clip, are counted, and the step goes on.
    # The initial weights keep every hidden |z| below 64, so only inputs clip.
    x, y = data()
    trainer.predict(x)
    assert trainer.stats()["saturated"] == 0, "in-range values never saturate"
    x[2, 3], x[5, 0], x[7, 15] = 1e9, -65.0, np.finfo(np.float64).max
    trainer.predict(x)
    assert trainer.stats()["saturated"] == 3
    trainer.train_step(x, y)
    assert trainer.stats()["saturated"] == 6


def test_an_activation_clip_below_one_gets_no_false_alarm():
    # With act_clip < 1 the bias entry 2^f_a is the largest operand value: the exactness
    # planning must count it, or an honest device's exact products fail their checks.
    # (fuzz_train_config found this; make_seeds keeps the configuration as a seed.)
    rng = np.random.default_rng(0)
    t = veil.Trainer(veil.Sequential([veil.Dense(1, 2)]), device="cpu", frac_act=18,
                     frac_grad=20, lr=2**-3, batch_size=2, act_clip=2.0**-18, grad_clip=2.0,
                     weight_max=8.0, seed=1)
    for _ in range(10):
        t.train_step(rng.random((2, 1)), rng.integers(0, 2, 2))
    t.predict(rng.random((2, 1)))
    t.export_weights()
    assert not t.stats()["aborted"]
    # Where the bias entry makes the products too wide, set-up refuses the configuration.
    with pytest.raises(veil.ConfigError, match=r"layer 0: the forward product .* 2\^53"):
        veil.Trainer(veil.Sequential([veil.Dense(64, 10)]), device="cpu", frac_act=18,
                     frac_grad=20, lr=2**-3, batch_size=2, act_clip=5e-312, grad_clip=2.0,
                     weight_max=8.0)


def test_configurations_that_would_exhaust_memory_are_refused():
    wide = veil.Sequential([veil.Dense(60000, 60000), veil.Dense(60000, 2)])
    with pytest.raises(veil.EnclaveError, match=r"MiB of enclave memory .* lower max_batch or the widths"):
        veil.Trainer(wide, device="cpu", batch_size=1)
    deep = veil.Sequential([veil.Dense(4096, 4096), veil.ReLU(), veil.Dense(4096, 2)])
    with pytest.raises(veil.EnclaveError, match=r"at max_batch=65536"):
        veil.Trainer(deep, device="cpu", batch_size=65536)
    # Python refuses first; the enclave's own refusal is tested at the bridge (tests/cpp/hardening).
    with pytest.raises(veil.ConfigError, match=r"batch_size must be an int in \[1, 65536\], got 100000"):
        veil.Trainer(model(), device="cpu", batch_size=100000)
    with pytest.raises(veil.InputError, match=r"widths must be in \[1, 65536\]"):
        veil.Trainer(veil.Sequential([veil.Dense(70000, 2)]), device="cpu", batch_size=1)
    # The enclave still takes a sensible model afterwards.
    veil.Trainer(model(), device="cpu", batch_size=BATCH).train_step(*data())


def test_a_call_while_another_runs_on_the_same_session_is_refused():
    entered, release = threading.Event(), threading.Event()

    class Slow(veil.NumpyDevice):
        def forward(self, layer, a):
            if not entered.is_set():
                entered.set()
                release.wait(30)
            return super().forward(layer, a)

    t = veil.Trainer(model(), device=Slow(), seed=0, batch_size=BATCH)
    x, y = data()
    results = []
    worker = threading.Thread(target=lambda: results.append(t.train_step(x, y)))
    worker.start()
    try:
        assert entered.wait(30)
        with pytest.raises(veil.ProtocolError, match="already running a call"):
            t.predict(x)
    finally:
        release.set()
        worker.join(30)
    assert len(results) == 1, "the step that was running finished normally"
    t.train_step(x, y)
    assert t.stats()["step"] == 2


def test_a_device_calling_back_into_the_enclave_is_refused():
    class Reentrant(veil.NumpyDevice):
        trainer = None

        def forward(self, layer, a):
            if self.trainer is not None:
                self.trainer.predict(np.zeros((1, FEATURES)))
            return super().forward(layer, a)

    device = Reentrant()
    t = veil.Trainer(model(), device=device, seed=0, batch_size=BATCH)
    device.trainer = t
    with pytest.raises(veil.DeviceError, match="OE_REENTRANT_ECALL"):
        t.train_step(*data())
    device.trainer = None
    t.train_step(*data())
    assert not t.stats()["aborted"]


def test_nothing_leaves_an_aborted_training_session():
    device = Adversary("one_element", "forward", 1, step=2)
    t = veil.Trainer(model(), device=device, seed=0, batch_size=BATCH)
    t.train_step(*data(0))
    with pytest.raises(veil.VerificationError, match=r"layer 1, phase forward, step 2:"):
        t.train_step(*data(1))
    for call in (lambda: t.train_step(*data(2)), lambda: t.predict(data(2)[0]),
                 t.export_weights, t.halve_lr):
        with pytest.raises(veil.ProtocolError, match="aborted"):
            call()
    stats = t.stats()
    assert stats["aborted"] and stats["checks_passed"] > 0
    # One session's abort leaves the enclave and its other sessions alone.
    veil.Trainer(model(), device="cpu", seed=0, batch_size=BATCH).train_step(*data())


def inference(mode="private", device="cpu"):
    rng = np.random.default_rng(5)
    weights = [rng.uniform(-0.3, 0.3, (FEATURES + 1, 16)), rng.uniform(-0.3, 0.3, (17, CLASSES))]
    return veil.Inference(weights, mode=mode, device=device, activations=["relu", "identity"],
                          batch_size=BATCH)


def test_private_inference_bad_input_and_order():
    session = inference()
    x, _ = data()
    with pytest.raises(veil.ProtocolError, match=r"needs 1 precomputed slots .* 0 are left"):
        session.predict(x)
    session.precompute(3, verbose=0)
    spent = dict(session.sealed)
    with pytest.raises(veil.InputError, match=r"X\[0, 5\] is nan"):
        session.predict(np.where(np.arange(FEATURES) == 5, np.nan, x))
    with pytest.raises(veil.InputError, match=r"X must have shape \(n, 16\)"):
        session.predict(x[:, :3])
    assert session.slots_left == 3, "refused input spends no slot"
    session.predict(x)
    # A host that hands the enclave a spent slot again is refused, not trusted.
    session.sealed[0] = spent[0]
    with pytest.raises(veil.ProtocolError, match="slot 0 was already used"):
        session.predict(x)
    assert 0 not in session.sealed and session.slots_left == 2
    big = x.copy()
    big[1, 1] = 1e12  # act_clip is 64; |z| of the hidden layer stays below it
    before = session.status()["saturated"]
    session.predict(big)
    assert session.status()["saturated"] - before == 1
    assert not session.status()["aborted"]
    with pytest.raises(veil.ConfigError, match="precompute is for mode='private'"):
        inference("verify").precompute(1, verbose=0)


def test_bad_model_weights_for_inference_are_named():
    good = [np.zeros((FEATURES + 1, 16)), np.zeros((17, CLASSES))]
    with pytest.raises(veil.InputError, match=r"layer 0, weights\[3, 2\] is NaN"):
        bad = [good[0].copy(), good[1]]
        bad[0][3, 2] = np.nan
        veil.Inference(bad, device="cpu", activations=["relu", "identity"])
    with pytest.raises(veil.InputError, match=r"layer 1 takes 15 inputs but layer 0 gives 16"):
        veil.Inference([good[0], np.zeros((16, CLASSES))], device="cpu",
                       activations=["relu", "identity"])
    with pytest.raises(veil.ConfigError, match=r"layer 0: .*2\^53.*frac_weights"):
        veil.Inference([good[0] + 1e12, good[1]], device="cpu", activations=["relu", "identity"])
    with pytest.raises(veil.ConfigError, match="2 activations for 1 layers"):
        veil.Inference([good[0]], device="cpu", activations=["relu", "identity"])


def test_nothing_leaves_an_aborted_inference_session():
    device = Adversary("one_element", "private_low", 1, step=1)
    session = inference(device=device)
    session.precompute(2, verbose=0)
    with device.calling("private"):
        with pytest.raises(veil.VerificationError, match=r"layer 1, phase forward, batch 1"):
            session.predict(data()[0])
    assert session.status()["aborted"]
    with pytest.raises(veil.ProtocolError, match="aborted"):
        session.precompute(1, verbose=0)
    with pytest.raises(veil.ProtocolError):
        session.predict(data()[0])


def test_oversized_batch_sizes_are_refused_by_name():
    model = veil.Sequential([veil.Dense(4, 3)])
    with pytest.raises(veil.ConfigError, match=r"batch_size must be an int in \[1, 65536\]"):
        veil.Trainer(model, device="cpu", batch_size=2**40)
    trainer = veil.Trainer(model, device="cpu", batch_size=8)
    infer = veil.Inference(trainer, mode="private", device="cpu", batch_size=8)
    with pytest.raises(veil.ConfigError, match=r"batch_size must be an int in \[1, 65536\]"):
        infer.precompute(1, batch_size=2**40)
    infer.precompute(1, verbose=0)   # the session is still usable
    assert infer.slots_left == 1
