"""`veil bench` on a tiny configuration: every baseline measured, ratios consistent, files written."""

import json
import sys

import numpy as np
import pytest

import veil
from veil import bench


@pytest.mark.skipif(bench.bench_image_path() is None,
                    reason="built without VEIL_BUILD_BENCHMARKS: no bench image for baseline (b)")
def test_bench_measures_every_baseline_and_writes_its_files(tmp_path):
    lines = []
    result = bench.run(widths=[64], batches=[8], repeats=3, out=str(tmp_path), echo=lines.append)
    (row,) = result["rows"]
    assert (row["width"], row["batch"], result["repeats"]) == (64, 8, 3)
    for key in ("insecure_s", "enclave_only_s", "verify_s", "private_infer_s", "verify_infer_s",
                "enclave_only_infer_s"):
        assert row[key] > 0, key
    # The split is that of one real step: its parts add up to at most the step.
    assert 0 < row["verify_enclave_s"] and 0 < row["verify_device_s"]
    assert row["verify_enclave_s"] + row["verify_device_s"] <= row["verify_s"]
    ratios = row["ratios"]
    assert np.isclose(ratios["enclave_share"], row["verify_enclave_s"] / row["verify_s"])
    assert np.isclose(ratios["verify/insecure"], row["verify_s"] / row["insecure_s"])
    assert np.isclose(ratios["enclave_only/verify"], row["enclave_only_s"] / row["verify_s"])
    gemm = result["gemm"]
    assert gemm["enclave_gflops"] > 0 and gemm["numpy_threads"] == 1
    assert np.isclose(gemm["ratio"], gemm["enclave_gflops"] / gemm["numpy_gflops"])
    printed = "\n".join(lines)
    assert "medians of 3 steps" in printed and f"{100 * ratios['enclave_share']:.1f}%" in printed
    assert json.loads((tmp_path / "bench.json").read_text())["rows"][0]["width"] == 64
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_the_bench_image_baseline_b_is_refused_by_name(monkeypatch):
    # An installation built without VEIL_BUILD_BENCHMARKS has no veil._bench.
    monkeypatch.setitem(sys.modules, "veil._bench", None)
    monkeypatch.delattr(veil, "_bench", raising=False)
    assert bench.bench_image_path() is None
    with pytest.raises(veil.EnclaveError, match="VEIL_BUILD_BENCHMARKS=ON"):
        bench.enclave_only_trainer([(8, 4, 0)], bench._GEMM_CONFIG)


def test_the_production_extension_has_no_baseline():
    from veil import _native

    assert not [name for name in dir(_native) if "EnclaveOnly" in name or "round_trip" in name]


def test_bench_conv_row_measures_a_cnn_step(tmp_path):
    lines = []
    result = bench.run_conv(4, 8, 4, repeats=3, out=str(tmp_path), echo=lines.append)
    row = result["conv"]
    assert (row["channels"], row["side"], row["batch"]) == (4, 8, 4)
    assert row["insecure_s"] > 0 and 0 < row["verify_enclave_s"] and 0 < row["verify_device_s"]
    assert row["verify_enclave_s"] + row["verify_device_s"] <= row["verify_s"]
    assert np.isclose(row["ratios"]["enclave_share"], row["verify_enclave_s"] / row["verify_s"])
    if bench.bench_image_path() is not None:  # (b): the convolution's GEMMs in the enclave
        assert row["enclave_only_s"] > 0
        assert np.isclose(row["ratios"]["enclave_only/verify"],
                          row["enclave_only_s"] / row["verify_s"])
    assert f"{100 * row['ratios']['enclave_share']:.1f}%" in "\n".join(lines)
    assert json.loads((tmp_path / "conv_bench.json").read_text())["conv"]["channels"] == 4


def test_the_float32_conv_baseline_takes_the_float64_reference_step():
    """Baseline (a) of the conv row trains the same network as veil (so the ratio compares
    like with like): one step agrees with the float64 reference's."""
    from veil import _conv
    from veil._reference import FloatMLP

    model = bench.conv_model(3, 8)
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.3, (i + 1, o)) for i, o, _a in model.layer_specs()]
    x, y = rng.random((4, 3 * 8 * 8)), rng.integers(0, 10, 4)
    fast = bench.Float32CNN(model, weights, lr=0.5)
    fast.step(x.astype(np.float32), y)
    reference = FloatMLP(weights, ["relu", "identity"], "cross_entropy", update_divisor=1,
                         shapes=_conv.shapes(model.wire_specs()))
    reference.train_step(x, y, 0.5)
    for got, want in zip(fast.w, reference.weights):
        np.testing.assert_allclose(got, want, atol=1e-4)
