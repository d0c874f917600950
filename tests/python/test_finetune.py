"""Private fine-tuning (docs/design.md §4.5): frozen layers masked on the device, the head
trained in the enclave; accuracy against float64 fine-tuning, what the device sees, lying
devices, configurations refused, weights from elsewhere, and slots bound to the session
and enclave instance that sealed them."""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import veil
from adversarial import NEEDS_PARTNER, PRIVATE_PHASES, STRATEGIES, Adversary
from test_adversarial import ACTIVATIONS, BATCH, FRAC_WEIGHTS, batches, deployed, model

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python")
FROZEN = 3  # of test_adversarial's four layers; the last one trains in the enclave


def test_example_matches_float64_and_the_device_sees_only_masks(tmp_path):
    out = tmp_path / "tuned.npz"
    run = subprocess.run([sys.executable, os.path.join(EXAMPLES, "private_finetune.py"),
                          "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    found = re.search(r"private fine-tuning accuracy (\S+), float64 fine-tuning accuracy (\S+),",
                      run.stdout)
    private, reference = float(found.group(1)), float(found.group(2))
    assert reference >= 0.9 and abs(private - reference) <= 0.01, run.stdout
    audit = re.search(r"saw (\d+) masked values, uniformity p=(\S+), \|correlation\| with the "
                      r"data (\S+), checks passed (\d+)", run.stdout)
    seen, p_value, corr, checks = (int(audit.group(1)), float(audit.group(2)),
                                   float(audit.group(3)), int(audit.group(4)))
    # Masks are fresh per run: the uniformity test fails by chance with probability 1e-4.
    assert seen >= 10**6 and p_value > 1e-4 and corr < 0.01, run.stdout
    assert checks > 1000
    # The fine-tuned model is a model file like any other.
    saved = veil.load_model(out)
    assert [w.shape for w in saved.weights] == [(65, 64), (65, 64), (65, 10)]


def test_first_layer_trainable_is_refused_saying_why_and_what_to_do():
    w = [np.zeros((17, 16))]
    with pytest.raises(veil.ConfigError) as info:
        veil.Trainer(model(), mode="private", weights=w)
    message = str(info.value)
    for part in ("layer 0", "trainable", "sees the data", "trainable=False",
                 "model.freeze(upto=1)"):
        assert part in message, message
    frozen_later = veil.Sequential([veil.Dense(16, 16, trainable=False), veil.Sigmoid(),
                                    veil.Dense(16, 16), veil.Sigmoid(),
                                    veil.Dense(16, 4, trainable=False)])
    with pytest.raises(veil.ConfigError, match="frozen layers must come first"):
        veil.Trainer(frozen_later, mode="private", weights=w)
    with pytest.raises(veil.ConfigError, match="nothing would train"):
        veil.Trainer(model().freeze(upto=4), mode="private", weights=w)
    with pytest.raises(veil.ConfigError, match="needs weights"):
        veil.Trainer(model().freeze(upto=1), mode="private")
    with pytest.raises(veil.ConfigError, match="mode='private'"):
        veil.Trainer(model(), mode="verify", weights=w)
    with pytest.raises(veil.ConfigError, match="trainable"):
        veil.Dense(4, 2, trainable="no")
    with pytest.raises(veil.ConfigError, match="freeze"):
        model().freeze(upto=5)
    assert model().freeze(upto=2).trainable == [False, False, True, True]
    assert "Dense(16, 16, trainable=False), veil.Sigmoid()" in repr(model().freeze(upto=1))


def tuner(device, weights=None, **kw):
    weights = deployed()[0] if weights is None else weights
    return veil.Trainer(model().freeze(upto=FROZEN), mode="private", device=device,
                        weights=weights[:FROZEN], lr=0.25, seed=3, batch_size=BATCH,
                        frac_weights=FRAC_WEIGHTS, **kw)


def run_cell(index, strategy, phase):
    """One lie in one phase of fine-tuning; returns why it was not caught, or None."""
    weights, first, before, delta = deployed()
    layer = index % FROZEN
    partner = (layer + 1) % FROZEN if strategy in NEEDS_PARTNER else None
    device = Adversary(strategy, phase, layer, step=3, partner=partner, seed=index)
    device.remember(first, before, delta)
    session = tuner(device, weights)
    data = batches(index)
    honest, kind, message = 0, None, ""
    try:
        with device.calling("private"):
            for _ in range(3):
                session.train_step(*next(data))
                honest += not device.cheated
    except veil.Error as e:
        kind, message = type(e), str(e)
    if not device.cheated:
        return f"the device never lied ({message})"
    if honest != 2:
        return f"false alarm after {honest} honest steps: {message}"
    if strategy == "wrong_shape":
        return None if kind is veil.DeviceError and "shape" in message else message
    where = f"layer {layer}, phase forward, train step 3 (slot 2): the device's product"
    if kind is not veil.VerificationError or where not in message:
        return f"{kind}: {message}"
    if not session.inference.status()["aborted"]:
        return "the session was not aborted"
    try:
        session.train_step(*next(data))
        return "a step after the abort succeeded"
    except veil.ProtocolError:
        return None


def test_every_lie_about_a_frozen_product_is_caught_naming_layer_phase_and_step():
    failures = []
    for index, strategy in enumerate(STRATEGIES):
        for phase in PRIVATE_PHASES:
            reason = run_cell(index, strategy, phase)
            if reason is not None:
                failures.append(f"{strategy} x {phase}: {reason}")
    assert not failures, "\n".join(failures)


def test_honest_fine_tuning_matches_the_head_trained_in_float64():
    """No false alarm, and the enclave's head is float64 SGD on the frozen features."""
    from veil._reference import FloatMLP

    weights = deployed()[0]
    device = Adversary("one_element", "private_low", 0, step=10**9)
    session = tuner(device, weights)
    head = FloatMLP([session.initial_weights[FROZEN]], ["identity"], "cross_entropy")
    data = batches(5)
    with device.calling("private"):
        for _ in range(40):
            x, y = next(data)
            loss, _correct = session.train_step(x, y)
            # The head's input: the frozen layers in fixed point (f_a = 8) as the enclave
            # computes them; float64 from there on.
            a = x
            for w, act in zip(weights[:FROZEN], ACTIVATIONS):
                a = 1.0 / (1.0 + np.exp(-(np.hstack([a, np.ones((len(a), 1))]) @ w)))
            want, _ = head.train_step(a, y, 0.25)
            assert loss == pytest.approx(want, abs=0.02)
    tuned = session.export_weights()
    np.testing.assert_allclose(tuned[FROZEN], head.weights[0], atol=0.02)
    for w, given in zip(tuned[:FROZEN], weights[:FROZEN]):
        np.testing.assert_array_equal(w, given)
    assert not session.inference.status()["aborted"]


def test_bad_input_leaves_the_session_usable():
    session = tuner("cpu")
    x, y = next(batches(1))
    with pytest.raises(veil.InputError):
        session.train_step(x, np.full(len(y), 99))
    with pytest.raises(veil.InputError):
        session.train_step(np.full_like(x, np.nan), y)
    session.train_step(x, y)
    with pytest.raises(veil.ConfigError, match="checkpoints"):
        session.save_checkpoint("unused")


def test_a_dropped_trainer_closes_its_enclave_session_at_once():
    """The enclave holds 64 sessions; a dropped trainer must not wait for the cyclic
    garbage collector to give its session back."""
    import gc

    gc.disable()
    try:
        for _ in range(80):
            tuner("cpu").train_step(*next(batches(0)))
    finally:
        gc.enable()


def test_weights_from_npz_lists_pairs_and_state_dicts(tmp_path):
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(17, 16)), rng.normal(size=(17, 4))]
    pairs = [(w[:-1], w[-1]) for w in weights]
    state = {"0.weight": weights[0][:-1].T, "0.bias": weights[0][-1],
             "2.weight": weights[1][:-1].T, "2.bias": weights[1][-1]}
    np.savez(tmp_path / "layers.npz", layer_0=weights[0], layer_1=weights[1])
    np.savez(tmp_path / "state.npz", **state)
    veil.save_model(tmp_path / "model.npz", weights, activations=["sigmoid", "identity"])
    for source in (weights, pairs, state, tmp_path / "layers.npz", tmp_path / "state.npz",
                   tmp_path / "model.npz"):
        got = veil.load_weights(source)
        assert len(got) == 2
        for a, b in zip(got, weights):
            np.testing.assert_array_equal(a, b)
    # Inference takes them too.
    infer = veil.Inference(state, mode="verify", device="cpu",
                           activations=["sigmoid", "identity"])
    assert infer.predict_proba(rng.random((3, 16))).shape == (3, 4)
    with pytest.raises(veil.ConfigError, match="Linear"):
        veil.load_weights({"conv.weight": np.zeros((4, 3, 3, 3))})
    with pytest.raises(veil.ConfigError, match="cannot place"):
        veil.load_weights({"0.weight": np.zeros((4, 3)), "bn.running_mean": np.zeros(4)})


def test_pytorch_state_dict():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (it is not a "
                                "dependency of veil; the state_dict format is tested with "
                                "numpy arrays above)")
    net = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.Sigmoid(),
                              torch.nn.Linear(16, 4))
    x = np.random.default_rng(0).random((5, 16))
    want = torch.softmax(net(torch.tensor(x, dtype=torch.float32)), dim=1).detach().numpy()
    infer = veil.Inference(net.state_dict(), mode="private", device="cpu",
                           activations=["sigmoid", "identity"], frac_weights=14)
    infer.precompute(1, verbose=0)
    np.testing.assert_allclose(infer.predict_proba(x), want, atol=0.01)


# -- slots stay bound to the session and the enclave instance that sealed them ---------------

def test_a_replayed_slot_is_refused_within_an_instance():
    weights = deployed()[0]
    infer = veil.Inference(weights, mode="private", device="cpu", activations=ACTIVATIONS,
                           batch_size=BATCH)
    infer.precompute(2, verbose=0)
    first = infer.sealed[0]
    x = next(batches(2))[0]
    infer.predict(x)
    with pytest.raises(veil.ProtocolError, match="slot 0 was already used; each slot masks one "
                       "batch only"):
        infer._native.predict(x, first)
    infer.predict(x)  # the session goes on with the next slot


def test_a_slot_from_another_enclave_instance_is_refused_saying_why():
    weights = deployed()[0]
    x = next(batches(4))[0]
    sealer = veil.Inference(weights, mode="private", device="cpu", activations=ACTIVATIONS,
                            batch_size=BATCH, enclave=veil.load_enclave())
    sealer.precompute(1, verbose=0)
    other = veil.Inference(weights, mode="private", device="cpu", activations=ACTIVATIONS,
                           batch_size=BATCH, enclave=veil.load_enclave())
    other.precompute(1, verbose=0)
    with pytest.raises(veil.VerificationError) as info:
        other._native.predict(x, sealer.sealed[0])
    message = str(info.value)
    assert "failed authentication" in message and "another session or enclave instance" in message
    assert other.status()["aborted"]
    np.testing.assert_allclose(sealer.predict_proba(x).sum(axis=1), 1.0)


def test_a_slot_kept_across_a_restart_is_refused(tmp_path):
    """The host stores a slot, the process restarts, and the host feeds it again: a new
    enclave instance must not open it (it would reuse a mask R)."""
    blob, weights_file = tmp_path / "slot.bin", tmp_path / "weights.npz"
    veil.save_model(weights_file, deployed()[0], activations=ACTIVATIONS)
    script = textwrap.dedent(f"""
        import sys, numpy as np, veil
        infer = veil.Inference({str(weights_file)!r}, mode="private", device="cpu",
                               batch_size={BATCH})
        infer.precompute(1, verbose=0)
        if sys.argv[1] == "seal":
            open({str(blob)!r}, "wb").write(infer.sealed[0])
        else:
            x = np.random.default_rng(0).random(({BATCH}, 16))
            try:
                infer._native.predict(x, open({str(blob)!r}, "rb").read())
            except veil.VerificationError as e:
                print("refused:", e)
    """)
    for phase in ("seal", "feed"):
        run = subprocess.run([sys.executable, "-c", script, phase], capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr
    assert "refused:" in run.stdout and "another session or enclave instance" in run.stdout


@pytest.mark.gpu
def test_cuda_fine_tuning_matches_cpu():
    """The frozen products are exact integers on either device, so the head trains on the
    same features: the same losses and the same trained head, bit for bit."""
    runs = {}
    for device in ("cuda", "cpu"):
        session, data = tuner(device), batches(11)
        losses = [session.train_step(*next(data))[0] for _ in range(5)]
        runs[device] = losses, session.export_weights()[FROZEN]
    assert runs["cuda"][0] == runs["cpu"][0]
    np.testing.assert_array_equal(runs["cuda"][1], runs["cpu"][1])


def test_a_frozen_convolution_feeds_a_dense_head(digits):
    """A CNN's convolution runs frozen on the device, masked like any layer; the head is
    dense, and a head right after a convolution is refused by name."""
    def cnn():
        return veil.Sequential([veil.Conv2d(1, 4, 3, 1, 1), veil.ReLU(), veil.MaxPool2d(2),
                                veil.Flatten(), veil.Dense(64, 32), veil.ReLU(),
                                veil.Dense(32, 10)], input_shape=(1, 8, 8))
    pre = veil.Trainer(cnn(), device="cpu", lr=2**-2, seed=0, batch_size=64)
    pre.fit(digits.X_train[:700], digits.y_train[:700], epochs=8, verbose=0)
    weights = pre.export_weights()
    device = veil.RecordingDevice()
    tuned = veil.Trainer(cnn().freeze(upto=2), mode="private", device=device,
                         weights=weights[:2], lr=0.1, seed=2, batch_size=32)
    tuned.fit(digits.X_train[700:], digits.y_train[700:], epochs=8, verbose=0)
    before = pre.evaluate(digits.X_test, digits.y_test)["accuracy"]
    after = tuned.evaluate(digits.X_test, digits.y_test)["accuracy"]
    print(f"CNN: pretrained {before:.4f}, head fine-tuned privately {after:.4f}")
    assert after >= 0.8 and after >= before - 0.02
    assert len(device.received("upload")) == 2  # the frozen layers only
    for limb in device.received("forward"):
        assert limb.min() >= 0 and limb.max() < 2**24 and np.all(limb == np.floor(limb))
    with pytest.raises(veil.ConfigError, match="layer 0 is a convolution: the trained head"):
        veil.Trainer(cnn().freeze(upto=1), mode="private", device="cpu", weights=weights[:1])
