"""Private and verify-mode inference (docs/design.md §4.1): exactness against verify mode and
float inference, what the device sees, sealed-slot handling, and cheating devices."""
import re
import subprocess
import sys
import zlib

import numpy as np
import pytest

import veil
from veil._inference import float_forward

P_B = 2**48 - 59
F_A, F_W = 8, 10
# Lipschitz constants of the activations (docs/arithmetic.md section 9).
LIPSCHITZ = {"identity": 1.0, "relu": 1.0, "sigmoid": 0.25, "arctan": 1.0, "softplus": 1.0}
_ACT = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "arctan": np.arctan,
    "softplus": lambda z: np.logaddexp(0.0, z),
}


def error_bound(weights, activations, loss, X, f_w=F_W, f_a=F_A):
    """Per-sample bound on max_j |quantized output - float output|: the elementwise
    propagation of docs/arithmetic.md section 9 (valid when nothing saturates)."""
    eps = np.full(X.shape, 2.0 ** -(f_a + 1))  # the input's rounding
    a = X
    for layer, (w, act) in enumerate(zip(weights, activations)):
        z = np.hstack([a, np.ones((a.shape[0], 1))]) @ w
        eta = eps @ np.abs(w[:-1]) + 2.0 ** -(f_w + 1) * (
            (np.abs(a) + eps).sum(axis=1, keepdims=True) + 1.0)
        if layer + 1 < len(weights):
            eps = LIPSCHITZ[act] * eta + 2.0 ** -(f_a + 1)
            if act == "relu":  # z + eta <= 0: both pipelines output exactly 0
                eps = np.where(z + eta <= 0, 0.0, eps)
            a = _ACT[act](z)
    eta = eta.max(axis=1)
    out = eta / 2 if loss == "cross_entropy" else LIPSCHITZ[activations[-1]] * eta
    return out + 1e-9  # float64 round-off of the two computations


@pytest.fixture(scope="module")
def trained(digits):
    model = veil.Sequential([veil.Dense(64, 32), veil.ReLU(), veil.Dense(32, 32), veil.ReLU(),
                             veil.Dense(32, 10)])
    trainer = veil.Trainer(model, device="cpu", lr=2**-2, seed=0, batch_size=64)
    trainer.fit(digits.X_train, digits.y_train, epochs=8, verbose=0)
    return trainer


@pytest.fixture(scope="module")
def weights(trained):
    return trained.export_weights()


ACTS = ["relu", "relu", "identity"]


def private(weights, device="cpu", slots=0, **kw):
    infer = veil.Inference(weights, mode="private", device=device, activations=ACTS, **kw)
    if slots:
        infer.precompute(batches=slots, verbose=0)
    return infer


def test_private_is_bit_identical_to_verify_and_accurate(trained, weights, digits):
    X, y = digits.X_test, digits.y_test
    infer = veil.Inference(trained, mode="private", device="cpu")
    stored = infer.precompute(batches=-(-len(X) // 64), verbose=0)
    assert stored == infer.sealed_bytes > 0
    p_private = infer.predict_proba(X)
    p_verify = veil.Inference(trained, mode="verify", device="cpu").predict_proba(X)
    p_numpy = veil.Inference(weights, mode="private", device=veil.NumpyDevice(), activations=ACTS)
    p_numpy.precompute(batches=-(-len(X) // 64), verbose=0)
    np.testing.assert_array_equal(p_private, p_verify)
    np.testing.assert_array_equal(p_private, p_numpy.predict_proba(X))
    assert infer.slots_left == 0
    accuracy = np.mean(p_private.argmax(axis=1) == y)
    assert accuracy >= 0.9
    assert abs(accuracy - trained.evaluate(X, y)["accuracy"]) <= 0.01
    status = infer.status()
    # Two checked limb products per layer and batch.
    assert status["checks_passed"] == 2 * 3 * status["batches"] and not status["aborted"]


@pytest.mark.parametrize("case,f_a,f_w", [("digits-ce-relu", 14, 14),
                                          ("random-mse-sigmoid", 8, 10),
                                          ("random-ce-arctan", 11, 11)])
def test_agrees_with_float_inference_within_the_documented_bound(case, f_a, f_w, weights, digits):
    X = digits.X_test
    if case == "digits-ce-relu":
        w, acts, loss = weights, ACTS, "cross_entropy"
    else:
        rng = np.random.default_rng(7)
        hidden = "sigmoid" if "sigmoid" in case else "arctan"
        loss = "mse" if "mse" in case else "cross_entropy"
        w = [rng.normal(0, 1 / np.sqrt(n), (n + 1, m)) for n, m in ((64, 48), (48, 10))]
        acts = [hidden, "sigmoid" if loss == "mse" else "identity"]
    infer = veil.Inference(w, mode="private", device="cpu", activations=acts, loss=loss,
                           frac_act=f_a, frac_weights=f_w)
    infer.precompute(batches=-(-len(X) // 64), verbose=0)
    got = infer.predict_proba(X)
    want = float_forward(w, acts, loss, X)
    bound = error_bound(w, acts, loss, X, f_w=f_w, f_a=f_a)
    assert infer.status()["saturated"] == 0, "the bound assumes nothing was clipped"
    assert bound.max() < 0.05, "a loose bound would make this test vacuous"
    err = np.abs(got - want).max(axis=1)
    assert np.all(err <= bound), f"worst excess {np.max(err - bound):.3g}"
    assert err.max() > 0, "quantized and float inference cannot coincide exactly"


def test_default_precision_tracks_float_inference(weights, digits):
    # At f_a = 8, f_w = 10 the worst-case bound of a 3-layer ReLU net is loose (about 1
    # here); it still holds, and the actual error is far smaller.
    X = digits.X_test
    infer = private(weights, slots=-(-len(X) // 64))
    got = infer.predict_proba(X)
    want = float_forward(weights, ACTS, "cross_entropy", X)
    err = np.abs(got - want).max(axis=1)
    assert np.all(err <= error_bound(weights, ACTS, "cross_entropy", X))
    assert err.max() < 0.05
    assert np.mean(got.argmax(axis=1) == want.argmax(axis=1)) >= 0.99


def test_device_sees_only_uniform_values_uncorrelated_with_the_data(weights, digits):
    from scipy import stats

    X = np.vstack([digits.X_train, digits.X_test])[:13 * 64]
    seen_private, seen_verify = veil.RecordingDevice(), veil.RecordingDevice()
    infer = private(weights, device=seen_private, slots=13)
    p_private = infer.predict_proba(X)
    p_verify = veil.Inference(weights, mode="verify", device=seen_verify,
                              activations=ACTS).predict_proba(X)
    np.testing.assert_array_equal(p_private, p_verify)

    # The device may see the weights: they are W_q = round(W 2^f_w), bias row included.
    for layer, w in enumerate(weights):
        (uploaded,) = seen_private.received("upload", layer)
        np.testing.assert_array_equal(uploaded, np.round(w * 2.0**F_W))
    # Everything else it received is X~ = X_q + R mod p_b as two 24-bit limbs, lo then hi;
    # verify mode's device saw the plaintext X_q of the same batches, layers and rows.
    limbs = seen_private.received("forward")
    plain = seen_verify.received("forward")
    assert len(limbs) == 2 * len(plain) == 2 * 13 * 3
    lo, hi = np.concatenate([a.ravel() for a in limbs[0::2]]), \
        np.concatenate([a.ravel() for a in limbs[1::2]])
    xq = np.concatenate([a.ravel() for a in plain])
    for limb in (lo, hi):
        assert np.all(limb == np.floor(limb)) and limb.min() >= 0 and limb.max() < 2**24
    blinded = lo.astype(np.int64) + (hi.astype(np.int64) << 24)
    assert blinded.size >= 10**5 and blinded.max() < P_B
    assert np.any(xq != 0) and np.all(xq == np.round(xq))

    bins = 64
    counts = np.bincount((blinded * bins) // P_B, minlength=bins)
    # Masks are fresh per run: this fails by chance with probability 1e-4.
    assert stats.chisquare(counts).pvalue > 1e-4
    # Independent samples give a correlation of about N(0, 1/n): 5 sigma fails by chance
    # with probability 6e-7, while any leak of X_q into the masked values shows far above it.
    assert abs(np.corrcoef(blinded.astype(np.float64), xq)[0, 1]) < 5 / np.sqrt(blinded.size)
    # The inputs themselves never appear.
    first = limbs[0][:, :-1]
    assert not np.array_equal(first, plain[0][:, :-1])


def test_wide_layer_loads_in_row_blocks(digits):
    # 2101 x 1000 values exceed one load call's block (2^21): the rows arrive in blocks
    # and must be reassembled in order before W_q is uploaded.
    rng = np.random.default_rng(3)
    w = [rng.normal(0, 0.02, (2101, 1000)), rng.normal(0, 0.03, (1001, 10))]
    X = rng.random((8, 2100))
    seen = veil.RecordingDevice()
    infer = veil.Inference(w, mode="private", device=seen, activations=["relu", "identity"],
                           batch_size=8)
    for layer, weights in enumerate(w):
        np.testing.assert_array_equal(seen.received("upload", layer)[0],
                                      np.round(weights * 2.0**F_W))
    infer.precompute(batches=1, verbose=0)
    verify = veil.Inference(w, mode="verify", device="cpu", activations=["relu", "identity"])
    np.testing.assert_array_equal(infer.predict_proba(X), verify.predict_proba(X))


# -- sealed slots ------------------------------------------------------------------------------

def blob_layers(infer, blob):
    """Split one slot's sealed blobs into per-layer pieces (the format is public)."""
    pieces, off = [], 0
    for _i, m in infer.layer_sizes:
        size = 24 + 6 * int.from_bytes(blob[off + 16:off + 20], "little") * m + 16
        pieces.append(blob[off:off + size])
        off += size
    assert off == len(blob)
    return pieces


@pytest.mark.parametrize("where", ["ciphertext", "tag", "header-slot", "layer-1", "foreign",
                                   "truncated"])
def test_tampered_slot_is_rejected_and_ends_the_session(weights, digits, where):
    infer = private(weights, slots=3)
    blob = bytearray(infer.sealed[0])
    layer = 0
    if where == "ciphertext":
        blob[100] ^= 1
    elif where == "tag":
        blob[len(blob_layers(infer, bytes(blob))[0]) - 1] ^= 0x80
    elif where == "header-slot":  # claim slot 1 for slot 0's ciphertext
        blob[8] = 1
    elif where == "layer-1":
        layer = 1
        blob[len(blob_layers(infer, bytes(blob))[0]) + 40] ^= 4
    elif where == "foreign":  # a genuine blob of another session with the same model
        blob = bytearray(private(weights, slots=1).sealed[0])
    else:
        blob = blob[:-5]
        layer = 2
    infer.sealed[0] = bytes(blob)
    with pytest.raises(veil.VerificationError) as info:
        infer.predict(digits.X_test[:64])
    message = str(info.value)
    assert f"layer {layer}, phase unseal, batch 1" in message
    if where not in ("truncated",):
        assert "failed authentication" in message
    assert infer.slots_left == 0, "an aborted session's slots are worthless"
    with pytest.raises(veil.ProtocolError, match="aborted"):
        infer.predict(digits.X_test[:64])


def test_reordered_slot_is_refused_and_the_session_stays_usable(weights, digits):
    X = digits.X_test[:64]
    infer = private(weights, slots=3)
    infer.sealed[0], infer.sealed[1] = infer.sealed[1], infer.sealed[0]
    with pytest.raises(veil.ProtocolError, match="expected slot 0, got slot 1"):
        infer.predict(X)
    assert infer.slots_left == 3
    infer.sealed[0], infer.sealed[1] = infer.sealed[1], infer.sealed[0]
    verify = veil.Inference(weights, mode="verify", device="cpu", activations=ACTS)
    want = verify.predict_proba(X)
    np.testing.assert_array_equal(infer.predict_proba(X), want)
    assert infer.slots_left == 2


def test_reused_slot_is_refused(weights, digits):
    X = digits.X_test[:64]
    infer = private(weights, slots=2)
    used = infer.sealed[0]
    infer.predict(X)
    infer.sealed[0] = used
    with pytest.raises(veil.ProtocolError, match="slot 0 was already used"):
        infer.predict(X)
    assert list(infer.sealed) == [1], "the host forgets the refused, spent slot"
    infer.predict(X)  # slot 1 still works
    assert infer.status()["next_slot"] == 2


def test_missing_slot_or_layer_is_refused(weights, digits):
    X = digits.X_test[:64]
    infer = private(weights, slots=3)
    whole = infer.sealed[0]
    del infer.sealed[0]
    with pytest.raises(veil.ProtocolError, match="expected slot 0, got slot 1"):
        infer.predict(X)
    infer.sealed[0] = b"".join(blob_layers(infer, whole)[:1])
    with pytest.raises(veil.ProtocolError, match="hold 1 of 3 layers; the sealed U of layer 1 is "
                                                 "missing"):
        infer.predict(X)
    layers = blob_layers(infer, whole)
    infer.sealed[0] = layers[1] + layers[0] + layers[2]
    with pytest.raises(veil.ProtocolError, match="expected the sealed U of layer 0, got layer 1"):
        infer.predict(X)
    infer.sealed[0] = whole
    assert infer.predict_proba(X).shape == (64, 10)


def test_running_out_of_slots_says_how_many(weights, digits):
    infer = private(weights, slots=2)
    with pytest.raises(veil.ProtocolError,
                       match=r"needs 3 precomputed slots \(150 rows in batches of 64\) but 2 are "
                             r"left; call precompute\(batches=1\)"):
        infer.predict(digits.X_test[:150])
    assert infer.slots_left == 2, "nothing was consumed"
    assert infer.predict_proba(digits.X_test[:100]).shape == (100, 10)
    with pytest.raises(veil.ProtocolError, match="but 0 are left"):
        infer.predict(digits.X_test[:1])
    fresh = private(weights)
    with pytest.raises(veil.ProtocolError, match=r"needs 1 precomputed slots \("):
        fresh.predict(digits.X_test[:1])


def test_bad_input_is_refused_without_spending_a_slot(weights, digits):
    infer = private(weights, slots=1)
    bad = digits.X_test[:8].copy()
    bad[2, 5] = np.nan
    with pytest.raises(veil.InputError, match=r"\[2, 5\] is nan"):
        infer.predict(bad)
    with pytest.raises(veil.InputError, match=r"shape \(n, 64\)"):
        infer.predict(bad[:, :10])
    assert infer.slots_left == 1
    assert infer.predict_proba(digits.X_test[:8]).shape == (8, 10)


def test_precompute_and_batch_size_rules(weights, digits):
    verify = veil.Inference(weights, mode="verify", device="cpu", activations=ACTS)
    with pytest.raises(veil.ConfigError, match="precompute is for mode='private'"):
        verify.precompute(batches=1)
    infer = private(weights, slots=1, batch_size=16)
    assert infer.sealed_bytes == sum(24 + 6 * 16 * m + 16 for _i, m in infer.layer_sizes)
    with pytest.raises(veil.ConfigError, match="sealed for batches of 16"):
        infer.precompute(batches=1, batch_size=32)
    assert infer.predict_proba(digits.X_test[:16]).shape == (16, 10)
    infer.precompute(batches=1, batch_size=32)  # no unused slot left: a new size is fine
    assert infer.predict_proba(digits.X_test[:32]).shape == (32, 10)


def test_layer_outside_the_budget_is_refused_naming_layer_and_knob(weights):
    big = [w.copy() for w in weights]
    big[1][:, 3] = 2.0**20
    with pytest.raises(veil.ConfigError, match=r"layer 1: .*frac_weights \(now 10\)"):
        private(big)
    with pytest.raises(veil.ConfigError, match=r"layer 1: .*2\^53.*frac_weights"):
        veil.Inference(big, mode="verify", device="cpu", activations=ACTS, frac_weights=24)
    nan = [w.copy() for w in weights]
    nan[2][4, 1] = np.nan
    with pytest.raises(veil.InputError, match=r"layer 2, weights\[4, 1\] is NaN"):
        private(nan)
    with pytest.raises(veil.InputError, match="layer 1 takes 31 inputs"):
        private([weights[0], weights[1][1:], weights[2]])
    with pytest.raises(veil.ConfigError, match="needs activations"):
        veil.Inference(weights, device="cpu")
    with pytest.raises(veil.ConfigError, match="mode='secret'"):
        veil.Inference(weights, mode="secret", activations=ACTS)


# -- cheating devices -------------------------------------------------------------------------

class Cheater(veil.NumpyDevice):
    """Honest until its call-th forward product, which it alters once."""

    def __init__(self, call, how):
        super().__init__()
        self.call, self.how, self.calls, self.previous = call, how, 0, {}

    def forward(self, layer, a):
        self.calls += 1
        y = super().forward(layer, a)
        if self.calls == self.call:
            y = y.copy()
            if self.how == "add-one":
                y[a.shape[0] // 2, y.shape[1] // 2] += 1.0
            elif self.how == "fraction":
                y[0, 0] += 0.5
            elif self.how == "huge":
                y[-1, -1] = 2.0**60
            else:  # replay this layer's previous product
                y = self.previous[layer]
        self.previous[layer] = y.copy()
        return y


@pytest.mark.parametrize("mode", ["private", "verify"])
@pytest.mark.parametrize("how", ["add-one", "fraction", "huge", "replay"])
def test_device_tampering_with_products_is_caught(weights, digits, mode, how):
    rng = np.random.default_rng(zlib.crc32(f"{mode}/{how}".encode()))
    per_batch = 6 if mode == "private" else 3  # products per batch: 2 limbs in private mode
    call = int(rng.integers(per_batch + 1, 4 * per_batch + 1))
    batch, layer = (call - 1) // per_batch + 1, (call - 1) % per_batch // (per_batch // 3)
    device = Cheater(call, how)
    infer = veil.Inference(weights, mode=mode, device=device, activations=ACTS)
    if mode == "private":
        infer.precompute(batches=6, verbose=0)
    with pytest.raises(veil.VerificationError) as info:
        for i in range(6):
            infer.predict(digits.X_test[64 * i:64 * (i + 1)])
    message = str(info.value)
    assert f"layer {layer}, phase forward, batch {batch}" in message, message
    if mode == "private":
        assert f"slot {batch - 1}" in message
    assert infer.status()["aborted"] and infer.slots_left == 0
    with pytest.raises(veil.ProtocolError, match="aborted"):
        infer.predict(digits.X_test[:4])


def test_device_failure_spends_the_slot_and_the_session_goes_on(weights, digits):
    class Flaky(veil.NumpyDevice):
        calls = 0

        def forward(self, layer, a):
            Flaky.calls += 1
            if Flaky.calls == 8:  # batch 2, layer 0, high limb
                raise RuntimeError("GPU fell off the bus")
            return super().forward(layer, a)

    infer = private(weights, device=Flaky(), slots=3)
    X = digits.X_test[:64]
    infer.predict(X)
    with pytest.raises(veil.DeviceError, match="fell off the bus") as info:
        infer.predict(X)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert list(infer.sealed) == [2], "slot 1's mask reached the device: it is spent"
    verify = veil.Inference(weights, mode="verify", device="cpu", activations=ACTS)
    want = verify.predict_proba(X)
    np.testing.assert_array_equal(infer.predict_proba(X), want)


# -- sources, files and the command line --------------------------------------------------------

def test_recording_device_keeps_every_array_of_training():
    device = veil.RecordingDevice()
    model = veil.Sequential([veil.Dense(8, 4), veil.ReLU(), veil.Dense(4, 3)])
    trainer = veil.Trainer(model, device=device, seed=0, batch_size=4)
    rng = np.random.default_rng(0)
    trainer.train_step(rng.random((4, 8)), rng.integers(0, 3, 4))
    ops = [r.operation for r in device.records]
    assert ops == ["upload", "upload", "forward", "forward", "backward", "update", "update"]
    a0 = device.received("forward", 0)[0]
    np.testing.assert_array_equal(device.received("update", 0)[0], a0)
    assert len(device.received("update")) == 4  # a and dz of each layer
    device.clear()
    assert device.received() == []


def test_model_file_round_trip(tmp_path, weights, digits):
    path = tmp_path / "model.npz"
    veil.save_model(path, weights, activations=ACTS, loss="cross_entropy")
    saved = veil.load_model(path)
    assert saved.activations == ACTS and saved.loss == "cross_entropy"
    for a, b in zip(saved.weights, weights):
        np.testing.assert_array_equal(a, b)
    from_file = veil.Inference(str(path), mode="verify", device="cpu")
    from_list = veil.Inference(weights, mode="verify", device="cpu", activations=ACTS)
    np.testing.assert_array_equal(from_file.predict_proba(digits.X_test),
                                  from_list.predict_proba(digits.X_test))
    with pytest.raises(veil.ConfigError, match="cannot read model file"):
        veil.Inference(str(tmp_path / "missing.npz"))


def test_cli_predict_private_after_train(tmp_path, digits):
    run = tmp_path / "run"

    def veil_cli(*args):
        return subprocess.run([sys.executable, "-m", "veil", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)

    trained = veil_cli("train", "--dataset", "digits", "--layers", "64-32-10", "--epochs", "4",
                       "--halve-at", "", "--device", "cpu", "--out", str(run), "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert (run / "model.npz").exists()
    summary = re.compile(r"^test_accuracy=(\d\.\d{4}) float_test_accuracy=(\d\.\d{4}) "
                         r"checks_passed=(\d+) mode=(private|verify)$")
    results = {}
    batches = -(-len(digits.y_test) // 64)
    for mode in ("private", "verify"):
        out = veil_cli("predict", "--model", str(run / "model.npz"), "--mode", mode,
                       "--device", "cpu")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.strip().splitlines()
        match = summary.match(lines[-1])
        assert match, out.stdout
        accuracy, float_accuracy, checks = float(match[1]), float(match[2]), int(match[3])
        assert accuracy >= 0.85 and abs(accuracy - float_accuracy) <= 0.02
        assert checks == (2 if mode == "private" else 1) * 2 * batches
        if mode == "private":
            assert f"sealed {batches} slots:" in out.stdout and "bytes kept on the host" in out.stdout
        results[mode] = accuracy
    assert results["private"] == results["verify"]
    missing = veil_cli("predict", "--model", str(tmp_path / "nope.npz"))
    assert missing.returncode == 2 and "cannot read model file" in missing.stderr


@pytest.mark.gpu
def test_cuda_private_inference_matches_cpu(weights, digits):
    X = digits.X_test[:128]
    cuda, cpu = private(weights, device="cuda", slots=2), private(weights, device="cpu", slots=2)
    np.testing.assert_array_equal(cuda.predict_proba(X), cpu.predict_proba(X))
