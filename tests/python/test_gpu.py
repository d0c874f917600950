"""The CUDA device (CuPy): bit-identical to the CPU device, and still checked.

Every test here is marked gpu: conftest.py skips them, with the reason, where
CuPy sees no CUDA device; on a GPU machine they run for real.
"""
import numpy as np
import pytest

import veil

pytestmark = pytest.mark.gpu


def model():
    return veil.Sequential([veil.Dense(64, 64), veil.ReLU(), veil.Dense(64, 64), veil.ReLU(),
                            veil.Dense(64, 10)])


def test_cuda_device_is_bit_identical_to_cpu(digits):
    results = {}
    for device in ("cpu", "cuda"):
        t = veil.Trainer(model(), device=device, lr=2**-2, seed=0, batch_size=64,
                         halve_lr_at=(2,))
        history = t.fit(digits.X_train, digits.y_train, epochs=3, verbose=0)
        results[device] = (t.export_weights(), history.history["loss"],
                           t.evaluate(digits.X_test, digits.y_test), t.checks_passed)
    cpu, cuda = results["cpu"], results["cuda"]
    for a, b in zip(cpu[0], cuda[0]):
        np.testing.assert_array_equal(a, b)
    assert cpu[1] == cuda[1]
    assert cpu[2] == cuda[2]
    assert cpu[3] == cuda[3]


@pytest.mark.parametrize("blocks", [1, 4])
@pytest.mark.parametrize("batch", [1, 7, 257])
def test_cuda_device_products_are_exact(blocks, batch):
    """Every operation equals numpy's float64 result bit for bit on integer data."""
    from veil._cuda import CudaDevice

    rng = np.random.default_rng(batch * 10 + blocks)
    rows, cols = 129, 33
    # Entries up to 2^20 and 2^12: every partial sum stays far below 2^53.
    m = rng.integers(-2**20, 2**20, (rows, cols)).astype(np.float64)
    a = rng.integers(-2**12, 2**12, (batch, rows)).astype(np.float64)
    dz = rng.integers(-2**12, 2**12, (batch, cols)).astype(np.float64)
    gpu, cpu = CudaDevice(blocks=blocks, min_block_bytes=0), veil.NumpyDevice()
    for device in (gpu, cpu):
        device.upload(3, m)
    np.testing.assert_array_equal(gpu.forward(3, a), cpu.forward(3, a))
    np.testing.assert_array_equal(gpu.backward(3, dz), cpu.backward(3, dz))
    for device in (gpu, cpu):
        device.update(3, a, dz)
        device.scale(3)
    np.testing.assert_array_equal(gpu.download(3), cpu.download(3))
    assert gpu.max_abs(3) == cpu.max_abs(3)
    # A second product reuses the pinned buffers: it must not see the first one's data.
    a2 = rng.integers(-2**12, 2**12, (batch, rows)).astype(np.float64)
    np.testing.assert_array_equal(gpu.forward(3, a2), cpu.forward(3, a2))
    assert gpu.transfer_seconds > 0


def test_auto_picks_cuda_on_a_gpu_machine():
    t = veil.Trainer(model(), device="auto", seed=0)
    assert t.device_name == "cuda"


def test_weights_stay_on_the_gpu():
    import cupy

    from veil._cuda import CudaDevice

    def bytes_per_step(batch):
        device = CudaDevice()
        wide = veil.Sequential([veil.Dense(256, 256), veil.ReLU(), veil.Dense(256, 10)])
        t = veil.Trainer(wide, device=device, seed=0, batch_size=batch)
        rng = np.random.default_rng(batch)
        t.train_step(rng.random((batch, 256)), rng.integers(0, 10, batch))
        assert all(isinstance(w, cupy.ndarray) for w in device.weights.values())
        before = device.transfer_bytes
        t.train_step(rng.random((batch, 256)), rng.integers(0, 10, batch))
        weight_bytes = sum(w.nbytes for w in device.weights.values())
        return device.transfer_bytes - before, weight_bytes

    # Only activations and gradients cross the link: the bytes of a step grow with
    # the batch alone, with no weight-sized term, and stay below the weights' size.
    small, weight_bytes = bytes_per_step(4)
    double, _ = bytes_per_step(8)
    assert double == 2 * small
    assert small < weight_bytes / 4


@pytest.mark.parametrize("operation", ["forward", "backward", "update", "scale", "download"])
def test_cheating_cuda_device_is_caught(operation):
    """Lies about the GPU-held weights are caught like any device's (docs/design.md §4.2)."""
    from veil._cuda import CudaDevice

    class CheatingCuda(CudaDevice):
        steps = 0

        def forward(self, layer, a):
            z = super().forward(layer, a)
            if layer == 0:
                type(self).steps += 1
            if operation == "forward" and self.steps == 3 and layer == 1:
                z = z.copy()
                z[0, 0] += 1.0
            return z

        def backward(self, layer, dz):
            da = super().backward(layer, dz)
            if operation == "backward" and self.steps == 3 and layer == 2:
                da = da.copy()
                da[1, 2] -= 1.0
            return da

        def update(self, layer, a, dz):
            super().update(layer, a, dz)
            if operation == "update" and self.steps == 3 and layer == 0:
                self.weights[layer][0, 0] += 1.0

        def scale(self, layer):
            if not (operation == "scale" and layer == 1):  # skips one layer's halving
                super().scale(layer)

        def download(self, layer):
            m = super().download(layer)
            if operation == "download" and layer == 2:
                m[-1, 3] += 1.0
            return m

    t = veil.Trainer(model(), device=CheatingCuda(), seed=0, batch_size=16)
    rng = np.random.default_rng(1)
    with pytest.raises(veil.VerificationError, match="layer"):
        for step in range(6):
            t.train_step(rng.random((16, 64)), rng.integers(0, 10, 16))
            if step == 1:
                t.halve_lr()
        t.export_weights()


def cnn():
    return veil.Sequential([veil.Conv2d(1, 8, 3, padding=1), veil.ReLU(), veil.MaxPool2d(2),
                            veil.Conv2d(8, 8, 3, padding=1), veil.ReLU(), veil.MaxPool2d(2),
                            veil.Flatten(), veil.Dense(32, 10)], input_shape=(1, 8, 8))


def test_cuda_trains_a_cnn_bit_identically_to_cpu_and_serves_it_privately(digits):
    """docs/design.md §4.4: a convolution reaches the device as a dense product on im2col
    rows, so the CUDA device needs nothing new; this checks it on a GPU."""
    results = {}
    for device in ("cpu", "cuda"):
        t = veil.Trainer(cnn(), device=device, lr=2**-2, seed=0, batch_size=64)
        history = t.fit(digits.X_train, digits.y_train, epochs=2, verbose=0)
        infer = veil.Inference(t, mode="private", device=device, batch_size=64)
        infer.precompute(2, verbose=0)
        results[device] = (t.export_weights(), history.history["loss"],
                           infer.predict_proba(digits.X_test[:128]))
    for a, b in zip(results["cpu"][0], results["cuda"][0]):
        np.testing.assert_array_equal(a, b)
    assert results["cpu"][1] == results["cuda"][1]
    np.testing.assert_array_equal(results["cpu"][2], results["cuda"][2])


def test_the_float32_cnn_baseline_runs_the_same_im2col_on_cupy():
    """veil._conv serves numpy and CuPy alike (xp): the bench's baseline (a) on the GPU
    takes the step it takes with numpy."""
    import cupy

    from veil import bench

    model = bench.conv_model(4, 8)
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.3, (i + 1, o)) for i, o, _a in model.layer_specs()]
    x, y = rng.random((4, 4 * 8 * 8)).astype(np.float32), rng.integers(0, 10, 4)
    on_cpu = bench.Float32CNN(model, weights, lr=0.5)
    on_gpu = bench.Float32CNN(model, weights, lr=0.5, xp=cupy)
    on_cpu.step(x, y)
    on_gpu.step(cupy.asarray(x), cupy.asarray(y))
    for a, b in zip(on_cpu.w, on_gpu.w):
        np.testing.assert_allclose(a, b.get(), rtol=1e-5, atol=1e-6)
