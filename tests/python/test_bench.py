"""`veil bench` on a tiny configuration: every baseline measured, ratios consistent, files written."""

import json

import numpy as np

from veil import bench


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
