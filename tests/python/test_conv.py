"""Convolutional networks in verify training (docs/design.md §4.4): the layers, the
enclave's validation of their geometry, agreement with float64 training of the same CNN,
checkpoints, and the digits acceptance run."""
import re
import subprocess
import sys

import numpy as np
import pytest

import veil
from veil import _codes, _conv, _native
from veil._reference import FloatMLP


def small_cnn():
    """Every kind of step at once: stride 2, padding, max and average pooling, a
    non-square input, a flatten and a dense layer after it."""
    return veil.Sequential(
        [veil.Conv2d(2, 4, 3, padding=1), veil.ReLU(), veil.MaxPool2d(2),
         veil.Conv2d(4, 6, 3, stride=2, padding=1), veil.Sigmoid(), veil.AvgPool2d(2),
         veil.Flatten(), veil.Dense(6, 5), veil.ReLU(), veil.Dense(5, 3)],
        input_shape=(2, 8, 7))


def test_verified_cnn_training_tracks_float64_training_of_the_same_cnn(rng):
    model = small_cnn()
    X = rng.uniform(-1, 1, (16, 2, 8, 7))
    y = rng.integers(0, 3, 16)
    trainer = veil.Trainer(model, device="cpu", lr=2**-3, seed=1, batch_size=16,
                           frac_act=12, frac_grad=16)
    initial = trainer.export_weights()
    assert [w.shape for w in initial] == [(19, 4), (37, 6), (7, 5), (6, 3)]
    reference = FloatMLP(initial, [a for _i, _o, a in model.layer_specs()], "cross_entropy",
                         update_divisor=16, shapes=_conv.shapes(model.wire_specs()))
    flat = X.reshape(16, -1)
    np.testing.assert_allclose(trainer.predict_proba(X), reference.predict_proba(flat), atol=1e-3)
    for _ in range(3):
        trainer.train_step(X, y)
        reference.train_step(flat, y, 2**-3)
    for got, want, start in zip(trainer.export_weights(), reference.weights, initial):
        moved = np.abs(want - start).max()
        assert moved > 1e-3  # every layer, the convolutions included, learned something
        assert np.abs(got - want).max() < 0.01 * moved
    assert trainer.checks_passed > 0


def test_images_are_taken_as_nchw_or_flattened(rng):
    model = small_cnn()
    trainer = veil.Trainer(model, device="cpu", seed=0, batch_size=8)
    X = rng.uniform(0, 1, (8, 2, 8, 7))
    np.testing.assert_array_equal(trainer.predict_proba(X), trainer.predict_proba(X.reshape(8, -1)))
    with pytest.raises(veil.InputError, match=r"shape \(n, 2, 8, 7\)"):
        trainer.predict_proba(X.transpose(0, 1, 3, 2))


@pytest.mark.parametrize("layers, shape, message", [
    ([veil.Conv2d(1, 4, 3), veil.Flatten(), veil.Dense(4 * 36, 2)], None, "input_shape"),
    ([veil.Conv2d(2, 4, 3), veil.Flatten(), veil.Dense(144, 2)], (1, 8, 8), "in_channels=2"),
    ([veil.Conv2d(1, 4, 3), veil.Dense(144, 2)], (1, 8, 8), "veil.Flatten"),
    ([veil.Conv2d(1, 4, 3), veil.Flatten(), veil.Dense(100, 2)], (1, 8, 8), "takes 100 inputs but"),
    ([veil.Conv2d(1, 4, 9), veil.Flatten(), veil.Dense(4, 2)], (1, 8, 8), "does not fit"),
    ([veil.Conv2d(1, 4, 3), veil.AvgPool2d(2), veil.ReLU(), veil.Flatten(), veil.Dense(36, 2)],
     (1, 8, 8), "before AvgPool2d"),
    ([veil.Dense(64, 8), veil.MaxPool2d(2)], None, "pooling follows a Conv2d"),
    ([veil.Conv2d(1, 4, 3)], (1, 8, 8), "last layer must be Dense"),
])
def test_sequential_refuses_bad_cnns_naming_the_layer(layers, shape, message):
    with pytest.raises(veil.ConfigError, match=message):
        veil.Sequential(layers, input_shape=shape)


def test_max_pooling_commutes_with_the_activation():
    a = veil.Sequential([veil.Conv2d(1, 4, 3, padding=1), veil.ReLU(), veil.MaxPool2d(2),
                         veil.Flatten(), veil.Dense(64, 2)], input_shape=(1, 8, 8))
    b = veil.Sequential([veil.Conv2d(1, 4, 3, padding=1), veil.MaxPool2d(2), veil.ReLU(),
                         veil.Flatten(), veil.Dense(64, 2)], input_shape=(1, 8, 8))
    assert a.wire_specs() == b.wire_specs()


CONV = _codes.LAYER_KIND["conv2d"]
MAX = _codes.POOL["max"]
RELU = _codes.ACTIVATION["relu"]
GOOD = [(9, 4, RELU, CONV, 1, 8, 8, 3, 1, 1, MAX, 2), (64, 2, 0)]


@pytest.mark.parametrize("layers, message", [
    ([(9, 4, RELU, 7, 1, 8, 8, 3, 1, 1, 0, 0), (256, 2, 0)], "layer 0: unknown kind 7"),
    ([(9, 4, RELU, CONV, 1, 8, 8, 3, 1, 1, 9, 2), (64, 2, 0)], "layer 0: unknown pool 9"),
    ([(8, 4, RELU, CONV, 1, 8, 8, 3, 1, 1, MAX, 2), (64, 2, 0)], "layer 0: inputs=8 but a 3 x 3"),
    ([(9, 4, RELU, CONV, 1, 8, 8, 3, 1, 3, MAX, 2), (64, 2, 0)], "padding below kernel"),
    ([(9, 4, RELU, CONV, 1, 8, 8, 3, 0, 1, MAX, 2), (64, 2, 0)], "kernel and stride must be"),
    ([(9, 4, RELU, CONV, 1, 0, 8, 3, 1, 1, MAX, 2), (64, 2, 0)], "height and width in"),
    ([(9, 4, RELU, CONV, 1, 8, 8, 3, 1, 1, MAX, 9), (64, 2, 0)], "pool_size=9 must be"),
    ([(9, 4, RELU, CONV, 1, 8, 8, 3, 1, 1, 0, 2), (256, 2, 0)], "pool_size=2 without pooling"),
    ([(9, 4, RELU, CONV, 1, 8, 8, 3, 1, 1, MAX, 2), (65, 2, 0)], "layer 1: layer 0 gives 4 x 4 x 4"),
    ([(9, 4, RELU, CONV, 1, 8, 8, 3, 1, 1, MAX, 2), (64, 2, 0, 0, 0, 0, 0, 0, 0, 0, MAX, 2)],
     "layer 1: a dense layer's pool must be 0"),
    ([(64, 9, RELU), (9, 2, 0, CONV, 1, 3, 3, 3, 1, 1, 0, 0), (18, 2, 0)],
     "layer 1: a convolution must"),
    ([(9, 4, RELU, CONV, 1, 8, 8, 3, 1, 1, MAX, 2)], "the last layer must be dense"),
])
def test_the_enclave_validates_every_geometry_field(layers, message):
    config = dict(loss=0, frac_act=8, frac_grad=12, lr_exp=2, max_batch=8, seed=0,
                  act_clip=64.0, grad_clip=8.0, weight_max=2.0)
    with pytest.raises(veil.InputError, match=message):
        _native.NativeTrainer(veil.load_enclave(), _native.cpu_device(), layers, config)
    # The same enclave still takes a good model afterwards.
    _native.NativeTrainer(veil.load_enclave(), _native.cpu_device(), GOOD, config)


def test_a_cnn_checkpoint_resumes_bit_identically(tmp_path, rng):
    X = rng.uniform(0, 1, (16, 2, 8, 7))
    y = rng.integers(0, 3, 16)
    key = veil.INSECURE_TEST_SEALING_KEY
    a = veil.Trainer(small_cnn(), device="cpu", seed=3, batch_size=8)
    a.fit(X, y, epochs=1, batch_size=8, verbose=0, checkpoint_dir=str(tmp_path / "c"),
          sealing_key=key)
    b = veil.Trainer.resume(str(tmp_path / "c"), device="cpu", sealing_key=key)
    assert b.model.wire_specs() == a.model.wire_specs()
    a.fit(X, y, epochs=1, batch_size=8, verbose=0)
    b.fit(X, y, epochs=1, batch_size=8, verbose=0)
    for wa, wb in zip(a.export_weights(), b.export_weights()):
        np.testing.assert_array_equal(wa, wb)


SUMMARY = re.compile(r"test_accuracy=(\d\.\d{4}) float_test_accuracy=(\d\.\d{4})")


@pytest.mark.slow
def test_digits_cnn_acceptance_run(tmp_path, report):
    """Issue 17's acceptance line: digits as 1x8x8 images, the small CNN, verified test
    accuracy >= 0.98 and within 1 point of float64 training from the same weights."""
    run = subprocess.run(
        [sys.executable, "-m", "veil", "train", "--dataset", "digits", "--model", "cnn",
         "--compare-float", "--device", "cpu", "--quiet", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    verified, reference = (float(v) for v in SUMMARY.search(run.stdout).groups())
    report(f"digits CNN: verified test accuracy {verified:.4f}, float64 {reference:.4f}")
    assert verified >= 0.98
    assert abs(verified - reference) <= 0.01


def test_an_idx_image_dataset_trains_a_cnn_with_the_cli(tmp_path):
    """MNIST-format IDX files (small synthetic ones) train the CNN with the same CLI."""
    from test_datasets import write_idx

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 160).astype(np.uint8)
    images = rng.integers(0, 60, (160, 8, 8))
    for image, label in zip(images, labels):  # class 0 bright on top, class 1 below
        image[(0 if label == 0 else 4):(4 if label == 0 else 8)] += 190
    img = write_idx(tmp_path / "img-idx3-ubyte", images.astype(np.uint8))
    lbl = write_idx(tmp_path / "lbl-idx1-ubyte", labels)
    run = subprocess.run(
        [sys.executable, "-m", "veil", "train", "--dataset", f"idx:{img},{lbl}", "--model", "cnn",
         "--epochs", "3", "--batch-size", "16", "--compare-float", "--device", "cpu", "--quiet",
         "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    verified, reference = (float(v) for v in SUMMARY.search(run.stdout).groups())
    assert verified >= 0.9 and reference >= 0.9
    # The model file keeps the CNN: `veil predict` scores the same test split privately.
    predict = subprocess.run(
        [sys.executable, "-m", "veil", "predict", "--model", str(tmp_path / "run" / "model.npz"),
         "--device", "cpu"], capture_output=True, text=True, timeout=600)
    assert predict.returncode == 0, predict.stderr
    private, float64 = (float(v) for v in SUMMARY.search(predict.stdout).groups())
    assert private >= 0.9 and float64 >= 0.9 and "mode=private" in predict.stdout


def write_cifar_batch(path, images, labels):
    records = [bytes([int(label)]) + image.astype(np.uint8).tobytes()
               for image, label in zip(images, labels)]
    path.write_bytes(b"".join(records))


def test_cifar10_binary_batches_load_as_3x32x32_images(tmp_path):
    from veil.datasets import load_dataset

    rng = np.random.default_rng(6)
    root = tmp_path / "cifar-10-batches-bin"
    root.mkdir()
    train = [(rng.integers(0, 256, (4, 3, 32, 32)), rng.integers(0, 10, 4)) for _ in range(5)]
    for i, (images, labels) in enumerate(train, 1):
        write_cifar_batch(root / f"data_batch_{i}.bin", images, labels)
    test_images, test_labels = rng.integers(0, 256, (3, 3, 32, 32)), np.array([9, 0, 4])
    write_cifar_batch(root / "test_batch.bin", test_images, test_labels)
    data = load_dataset(str(tmp_path))  # the directory the archive unpacks into
    assert data.image_shape == (3, 32, 32) and data.n_classes == 10
    # Each record's planes are red, green, blue, row-major: (C, H, W) as the model takes.
    np.testing.assert_array_equal(data.X_test, test_images.reshape(3, -1) / 255.0)
    np.testing.assert_array_equal(data.y_test, test_labels)
    np.testing.assert_array_equal(data.X_train, np.concatenate([i for i, _ in train]).reshape(20, -1) / 255.0)
    np.testing.assert_array_equal(data.y_train, np.concatenate([l for _, l in train]))


def test_cifar10_errors_name_the_file(tmp_path):
    from veil.datasets import load_dataset

    write_cifar_batch(tmp_path / "data_batch_1.bin", np.zeros((1, 3, 32, 32)), [0])
    with pytest.raises(ValueError, match="missing data_batch_2.bin"):
        load_dataset(str(tmp_path))
    for i in range(2, 6):
        write_cifar_batch(tmp_path / f"data_batch_{i}.bin", np.zeros((1, 3, 32, 32)), [1])
    (tmp_path / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="test_batch.bin: 100 bytes is not a whole number"):
        load_dataset(str(tmp_path))


P_B = 2**48 - 59  # the blinding field (docs/design.md §3)


@pytest.fixture(scope="module")
def trained_cnn():
    from veil.datasets import load_dataset

    data = load_dataset("digits", seed=0)
    model = veil.Sequential([veil.Conv2d(1, 8, 3, padding=1), veil.ReLU(), veil.MaxPool2d(2),
                             veil.Conv2d(8, 8, 3, padding=1), veil.ReLU(), veil.AvgPool2d(2),
                             veil.Flatten(), veil.Dense(32, 10)], input_shape=(1, 8, 8))
    trainer = veil.Trainer(model, device="cpu", seed=0, batch_size=64)
    trainer.fit(data.X_train, data.y_train, epochs=10, batch_size=64, verbose=0)
    return trainer, data


def test_private_cnn_inference_matches_verify_mode_and_the_device_sees_only_uniform_values(
        trained_cnn):
    from scipy import stats

    trainer, data = trained_cnn
    X = data.X_test[:4 * 32].reshape(-1, 1, 8, 8)
    seen_private, seen_verify = veil.RecordingDevice(), veil.RecordingDevice()
    private = veil.Inference(trainer, mode="private", device=seen_private, batch_size=32)
    private.precompute(4, verbose=0)
    verify = veil.Inference(trainer, mode="verify", device=seen_verify, batch_size=32)
    p_private = private.predict_proba(X)
    np.testing.assert_array_equal(p_private, verify.predict_proba(X))
    # Verified training's own predictions use other formats (f_w): close, not identical.
    assert np.mean(p_private.argmax(1) == trainer.predict(X)) >= 0.97
    assert np.mean(p_private.argmax(1) == data.y_test[:128]) >= 0.9

    # Every forward input is a 24-bit limb of X~ = im2col(X_q) + R mod p_b, R uniform.
    limbs, plain = seen_private.received("forward"), seen_verify.received("forward")
    assert len(limbs) == 2 * len(plain) == 2 * 4 * 3
    assert limbs[0].shape == (32 * 64, 10)  # layer 0: one row per example and position
    lo = np.concatenate([a.ravel() for a in limbs[0::2]]).astype(np.int64)
    hi = np.concatenate([a.ravel() for a in limbs[1::2]]).astype(np.int64)
    assert lo.min() >= 0 and lo.max() < 2**24 and hi.min() >= 0 and hi.max() < 2**24
    blinded = lo + (hi << 24)
    xq = np.concatenate([a.ravel() for a in plain])
    assert blinded.size >= 10**5 and blinded.max() < P_B
    assert np.count_nonzero(xq == 0) > xq.size // 10  # padding and ReLU zeros, in the clear
    counts = np.bincount((blinded * 64) // P_B, minlength=64)
    assert stats.chisquare(counts).pvalue > 1e-4  # fails by chance with probability 1e-4
    # Independent samples give a correlation of about N(0, 1/n): 5 sigma fails by chance
    # with probability 6e-7, while any leak of X_q into the masked values shows far above it.
    assert abs(np.corrcoef(blinded.astype(np.float64), xq)[0, 1]) < 5 / np.sqrt(blinded.size)


def test_a_tampered_cnn_slot_ends_the_session(trained_cnn):
    trainer, data = trained_cnn
    private = veil.Inference(trainer, mode="private", device="cpu", batch_size=16)
    private.precompute(2, verbose=0)
    blob = bytearray(private.sealed[1])
    blob[-40] ^= 1
    private.sealed[1] = bytes(blob)
    X = data.X_test[:32].reshape(-1, 1, 8, 8)
    private.predict(X[:16])
    with pytest.raises(veil.VerificationError, match=r"phase unseal, batch 2"):
        private.predict(X[16:])


def test_a_cnn_whose_images_exceed_enclave_memory_is_refused():
    # A strided 1x1 convolution has few operand rows; its input images are what is large.
    config = dict(loss=0, frac_act=8, frac_grad=12, lr_exp=2, max_batch=65536, seed=0,
                  act_clip=64.0, grad_clip=8.0, weight_max=2.0)
    layers = [(1024, 2, RELU, CONV, 1024, 4096, 4096, 1, 64, 0, 0, 0), (2 * 64 * 64, 2, 0)]
    with pytest.raises(veil.EnclaveError, match="enclave memory at max_batch=65536"):
        _native.NativeTrainer(veil.load_enclave(), _native.cpu_device(), layers, config)


def test_a_cnn_model_file_serves_privately_and_onnx_export_refuses_it(tmp_path, trained_cnn):
    trainer, data = trained_cnn
    path = veil.save_model(tmp_path / "cnn.npz", trainer)
    saved = veil.load_model(path)
    assert saved.model.wire_specs() == trainer.model.wire_specs()
    assert saved.input_size == 64
    X = data.X_test[:64]
    from_file = veil.Inference(path, mode="private", device="cpu", batch_size=32)
    from_file.precompute(2, verbose=0)
    from_trainer = veil.Inference(trainer, mode="verify", device="cpu", batch_size=32)
    np.testing.assert_array_equal(from_file.predict_proba(X), from_trainer.predict_proba(X))
    with pytest.raises(veil.ConfigError, match="dense models only"):
        veil.export_onnx(path, tmp_path / "m.onnx")
    with pytest.raises(veil.ConfigError, match="dense models only"):
        veil.export_onnx(trainer, tmp_path / "m.onnx")


def test_wide_operands_and_limb_split_convolutions_track_float64(rng):
    """Large inputs (x 300) at frac_act=14: float64 operands (beyond 2^23), and products
    that must be split into limbs, each checked on its own, around the gathers."""
    model = small_cnn()
    X = rng.uniform(-1, 1, (16, 2, 8, 7)) * 300
    y = rng.integers(0, 3, 16)
    trainer = veil.Trainer(model, device="cpu", lr=2**-3, seed=1, batch_size=16, frac_act=14,
                           act_clip=1000.0, frac_grad=13)
    initial = trainer.export_weights()
    reference = FloatMLP(initial, [a for _i, _o, a in model.layer_specs()], "cross_entropy",
                         update_divisor=16, shapes=_conv.shapes(model.wire_specs()))
    before = trainer.stats()["products"]
    trainer.train_step(X, y)
    reference.train_step(X.reshape(16, -1), y, 2**-3)
    # 4 forward, 3 backward and 4 update products, and at least one more limb.
    assert trainer.stats()["products"] - before > 11
    for got, want, start in zip(trainer.export_weights(), reference.weights, initial):
        assert np.abs(got - want).max() < 0.05 * np.abs(want - start).max()


def test_exported_cnn_weights_serve_privately_with_their_model(trained_cnn):
    trainer, data = trained_cnn
    from_list = veil.Inference(trainer.export_weights(), mode="verify", device="cpu",
                               model=trainer.model, batch_size=32)
    from_trainer = veil.Inference(trainer, mode="verify", device="cpu", batch_size=32)
    X = data.X_test[:64]
    np.testing.assert_array_equal(from_list.predict_proba(X), from_trainer.predict_proba(X))


def test_bench_conv_takes_channels_side_and_batch():
    run = subprocess.run([sys.executable, "-m", "veil", "bench", "--conv", "8,16"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "--conv takes C,S,B" in run.stderr
    run = subprocess.run([sys.executable, "-m", "veil", "bench", "--conv", "2,8,2", "--repeats",
                          "1"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert re.search(r"enclave share \d+\.\d%", run.stdout)
