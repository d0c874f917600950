// bench_math: throughput of the enclave's hot passes as ratios to a plain
// memcpy of the same bytes, measured in the same run (docs/design.md §7).
//
//   bench_math [--rows B] [--cols M] [--reps N] [--threads T]
//
// With --threads T (> 1) it then times the enclave's O(B (n + m)) passes on the
// automatic path with 1 thread and with T (T - 1 workers parked in a
// math::WorkerPool, as host threads lent to a session are) and prints the
// speed-up of each: the parallel part of an enclave step, without its ocalls.
//
// Rows of the report: the fused forward pass (range check + Z s mod q +
// activation + quantize) per kernel path and activation, the fused backward
// pass, matvec_mod / matvec2_mod / matvec_t_mod on device-like and on
// enclave-like (small) operands, quantize, and mask generation (uniform F_q
// elements from AES-CTR). The "narrow" rows keep the enclave's operands in
// float32 (freivalds.h): the matvecs read half the bytes, the fused passes and
// quantize write half. Each row's memcpy copies the bytes that row reads, and
// elements per second compare a narrow row with its float64 twin. The "mask"
// rows keep ReLU's derivative as one byte per element (relu_mask,
// relu_mask_prev) instead of z_real's eight, written and read back.
// Targets: fused pass >= 25% of memcpy bandwidth; masks >= 1 GB/s on one core.
// Last, the offline phase's exact GEMM (U = R W_q mod p_b, 64 x 2049 x 2048) in
// blocks of 32 of R's rows through parallel_for, with 0 and 1 lent threads.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <string>
#include <utility>
#include <vector>

#include <thread>

#include "math/blinding.h"
#include "math/field.h"
#include "math/parallel.h"
#include "math/freivalds.h"
#include "math/fused.h"
#include "math/parallel.h"
#include "forced_kernel_path.h"
#include "math/prg.h"

using namespace veil::math;

namespace {

using Clock = std::chrono::steady_clock;

// Best-of-reps wall time in seconds of fn().
template <class F>
double best_time(int reps, F&& fn) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    fn();
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    best = dt < best ? dt : best;
  }
  return best;
}

// Best-of-reps times of memcpy and of fn(), interleaved so that both see the
// same machine load (the ratio is what the report is about).
template <class M, class F>
std::pair<double, double> paired_times(int reps, M&& copy, F&& fn) {
  double best_copy = 1e300, best_fn = 1e300;
  for (int r = 0; r < reps; ++r) {
    best_copy = std::min(best_copy, best_time(1, copy));
    best_fn = std::min(best_fn, best_time(1, fn));
  }
  return {best_copy, best_fn};
}

// Keeps results observable so the compiler cannot drop the work.
volatile std::uint64_t g_sink = 0;

struct Row {
  std::string name;
  std::string path;
  double bytes;
  double elements;
  double seconds;
  double memcpy_seconds;
};

void print_row(const Row& r) {
  const double gbs = r.bytes / r.seconds / 1e9;
  const double mgbs = r.bytes / r.memcpy_seconds / 1e9;
  std::printf("%-38s %-9s %9.2f GB/s   memcpy %6.2f GB/s   ratio %5.2f   %6.2f Gelem/s\n",
              r.name.c_str(), r.path.c_str(), gbs, mgbs, r.memcpy_seconds / r.seconds,
              r.elements / r.seconds / 1e9);
}

// The correction GEMM's rate in field multiply-adds per second, with `lent`
// threads serving a pool beside the calling one, as the enclave's sessions get.
void correction_rows(int reps) {
  const std::size_t rows = 64, inner = 2049, cols = 2048, per_block = 32;
  std::mt19937_64 rng(3);
  std::vector<double> w(inner * cols);
  for (auto& x : w) x = static_cast<double>(static_cast<std::int64_t>(rng() % 2001) - 1000);
  std::vector<double> panels(correction_panel_doubles(inner, cols));
  if (!pack_correction_weights(w.data(), inner, cols, cols, panels.data()).ok()) return;
  std::vector<std::uint64_t> r(rows * inner), u(rows * cols);
  for (auto& x : r) x = rng() % FieldPb::modulus;
  std::vector<std::vector<double>> work(rows / per_block,
                                        std::vector<double>(correction_work_doubles(per_block, inner)));
  auto block = [&](std::size_t b) {
    blind_correction(r.data() + b * per_block * inner, per_block, inner, inner, panels.data(), cols,
                     u.data() + b * per_block * cols, cols, work[b].data());
  };
  for (unsigned lent : {0u, 1u}) {
    WorkerPool pool;
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < lent; ++t) threads.emplace_back([&pool] { pool.serve(); });
    while (pool.parked() < lent) std::this_thread::yield();
    double best;
    {
      UsePool use(&pool);
      best = best_time(reps, [&] { parallel_for(work.size(), block); });
    }
    pool.stop();
    for (auto& t : threads) t.join();
    std::printf("correction GEMM %zux%zux%zu, %u lent thread(s): %.1f ms, %.2f G field-MAC/s\n",
                rows, inner, cols, lent, best * 1e3, rows * inner * cols / best / 1e9);
  }
}

}  // namespace

// Each pass with 1 thread and with `threads`, best of reps, and the speed-up.
void by_threads(unsigned threads, int reps,
                const std::vector<std::pair<std::string, std::function<void()>>>& passes) {
  WorkerPool pool;
  std::vector<std::thread> workers;
  for (unsigned i = 1; i < threads; ++i) workers.emplace_back([&pool] { pool.serve(); });
  while (pool.parked() + 1 < threads) std::this_thread::yield();
  std::printf("\n%-38s %12s %12s %9s\n", "pass (automatic path)", "1 thread ms",
              (std::to_string(threads) + " threads ms").c_str(), "speed-up");
  double total_one = 0, total_many = 0;
  for (const auto& [name, fn] : passes) {
    const double one = best_time(reps, fn);
    double many = 0;
    {
      UsePool use(&pool);
      many = best_time(reps, fn);
    }
    total_one += one;
    total_many += many;
    std::printf("%-38s %12.3f %12.3f %8.2fx\n", name.c_str(), 1e3 * one, 1e3 * many, one / many);
  }
  std::printf("%-38s %12.3f %12.3f %8.2fx\n", "all of the above", 1e3 * total_one,
              1e3 * total_many, total_one / total_many);
  pool.stop();
  for (std::thread& t : workers) t.join();
}

int main(int argc, char** argv) {
  std::size_t rows = 1024, cols = 8192;  // 64 MiB of float64: beyond the caches
  int reps = 7;
  unsigned threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rows")) rows = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--cols")) cols = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
  }
  const std::size_t n = rows * cols;
  const double bytes = static_cast<double>(n) * sizeof(double);
  std::printf("bench_math: %zu x %zu float64 (%.1f MiB per matrix), best of %d runs\n", rows, cols,
              bytes / (1 << 20), reps);
  std::printf("automatic kernel path: %s\n\n", kernel_path_name(active_kernel_path()));

  std::mt19937_64 rng(1);
  std::vector<double> z(n), z_real(n), a_next(rows * (cols + 1)), copy(n), zprev(n);
  // Device-like values: integers at scale 2^16, |z| up to 2^24.
  std::uniform_int_distribution<std::int64_t> d(-(std::int64_t{1} << 24), std::int64_t{1} << 24);
  for (auto& v : z) v = static_cast<double>(d(rng));
  for (std::size_t k = 0; k < n; ++k) zprev[k] = z[k] * (1.0 / 65536);
  std::vector<double> small(n);
  for (std::size_t k = 0; k < n; ++k) small[k] = std::floor(z[k] * (1.0 / 512));  // |x| <= 2^15
  // The same values as narrow operands, and narrow outputs of the quantizing passes.
  const std::vector<float> small_narrow(small.begin(), small.end());
  std::vector<float> a_next_narrow(rows * (cols + 1)), out_narrow(n);
  // ReLU's derivative at zprev as mask bytes, for the backward pass; the forward writes relu_mask.
  std::vector<std::uint8_t> relu_mask(n), mask_prev(n);
  for (std::size_t k = 0; k < n; ++k) mask_prev[k] = zprev[k] > 0;
  std::vector<std::uint64_t> s(cols + 1), expected(rows), sums(rows);
  std::uniform_int_distribution<std::uint64_t> fd(0, FieldQ::modulus - 1);
  for (auto& v : s) v = fd(rng);

  // Baseline: memcpy of the same bytes (touch the destination first).
  std::memcpy(copy.data(), z.data(), static_cast<std::size_t>(bytes));
  auto do_memcpy = [&] {
    std::memcpy(copy.data(), z.data(), static_cast<std::size_t>(bytes));
    g_sink = g_sink + static_cast<std::uint64_t>(copy[n / 2]);
  };
  // Runs fn against memcpy of the same bytes and records the row.
  std::vector<Row> report;
  auto measure = [&](const std::string& name, const char* path, auto&& fn) {
    const auto t = paired_times(reps, do_memcpy, fn);
    report.push_back({name, path, bytes, static_cast<double>(n), t.second, t.first});
    return t.first / t.second;
  };
  // The same for a pass that reads a narrow operand: memcpy of its float32 bytes.
  std::vector<float> copy_narrow(n);
  auto do_memcpy_narrow = [&] {
    std::memcpy(copy_narrow.data(), small_narrow.data(), n * sizeof(float));
    g_sink = g_sink + static_cast<std::uint64_t>(copy_narrow[n / 2]);
  };
  auto measure_narrow = [&](const std::string& name, const char* path, auto&& fn) {
    const auto t = paired_times(reps, do_memcpy_narrow, fn);
    report.push_back({name, path, static_cast<double>(n * sizeof(float)), static_cast<double>(n),
                      t.second, t.first});
  };

  // Reference row sums so the fused pass does the full comparison.
  force_kernel_path(KernelPath::portable);
  matvec_mod(z.data(), rows, cols, cols, s.data(), expected.data());

  double best_fused_ratio = 0;
  const KernelPath paths[] = {KernelPath::portable, KernelPath::avx2, KernelPath::avx512};
  for (KernelPath p : paths) {
    if (!kernel_path_supported(p)) {
      std::printf("(%s not available on this CPU)\n", kernel_path_name(p));
      continue;
    }
    force_kernel_path(p);
    const std::pair<Activation, const char*> activations[] = {
        {Activation::relu, "relu"}, {Activation::identity, "identity"}, {Activation::sigmoid, "sigmoid"}};
    for (const auto& [act, act_name] : activations) {
      ForwardArgs f;
      f.z = z.data();
      f.rows = rows;
      f.cols = cols;
      f.ld_z = cols;
      f.scale = 16;
      f.s = s.data();
      f.expected = expected.data();
      f.act = act;
      f.z_real = z_real.data();
      f.ld_z_real = cols;
      f.a_next = a_next.data();
      f.ld_a_next = cols + 1;
      f.a_format = FixedFormat{8, 8.0};
      bool ok = true;
      const double ratio = measure(std::string("fused forward ") + act_name,
                                   kernel_path_name(p), [&] { ok = ok && fused_forward(f).status.ok(); });
      if (!ok) {
        std::printf("fused_forward failed\n");
        return 1;
      }
      if (act != Activation::sigmoid && p != KernelPath::portable) {
        best_fused_ratio = std::max(best_fused_ratio, ratio);
      }
      if (act == Activation::relu) {
        f.a_next = nullptr;
        f.a_next_narrow = a_next_narrow.data();
        measure("fused forward relu, narrow a_next", kernel_path_name(p),
                [&] { ok = ok && fused_forward(f).status.ok(); });
        if (!ok) {
          std::printf("fused_forward (narrow) failed\n");
          return 1;
        }
        f.a_next_narrow = nullptr;
        f.a_next = a_next.data();
        f.z_real = nullptr;
        f.relu_mask = relu_mask.data();
        f.ld_relu_mask = cols;
        measure("fused forward relu, mask", kernel_path_name(p),
                [&] { ok = ok && fused_forward(f).status.ok(); });
        if (!ok) {
          std::printf("fused_forward (mask) failed\n");
          return 1;
        }
      }
    }
    {
      BackwardArgs b;
      b.da = z.data();
      b.rows = rows;
      b.cols = cols;
      b.ld_da = cols;
      b.scale = 20;
      b.t = s.data();
      b.row_sums = sums.data();
      b.act = Activation::relu;
      b.z_prev = zprev.data();
      b.ld_z_prev = cols;
      b.out_cols = cols - 1;
      b.dz_prev = z_real.data();
      b.ld_dz_prev = cols;
      b.g_format = FixedFormat{12, 4.0};
      measure("fused backward relu", kernel_path_name(p),
              [&] { g_sink = g_sink + fused_backward(b).saturated; });
      b.dz_prev = nullptr;
      b.dz_prev_narrow = out_narrow.data();
      measure("fused backward relu, narrow dz_prev", kernel_path_name(p),
              [&] { g_sink = g_sink + fused_backward(b).saturated; });
      b.dz_prev_narrow = nullptr;
      b.dz_prev = z_real.data();
      b.z_prev = nullptr;
      b.relu_mask_prev = mask_prev.data();
      b.ld_relu_mask_prev = cols;
      if (!fused_backward(b).status.ok()) {  // an invalid pass would time nothing
        std::printf("fused_backward (mask) failed\n");
        return 1;
      }
      measure("fused backward relu, mask", kernel_path_name(p),
              [&] { g_sink = g_sink + fused_backward(b).saturated; });
    }
    {
      measure("matvec_mod (check only)", kernel_path_name(p), [&] {
        matvec_mod(z.data(), rows, cols, cols, s.data(), sums.data());
        g_sink = g_sink + sums[0];
      });
    }
    {
      std::vector<std::uint64_t> y(rows), out(cols);
      for (auto& v : y) v = fd(rng);
      measure("matvec_t_mod", kernel_path_name(p), [&] {
        matvec_t_mod(z.data(), rows, cols, cols, y.data(), out.data());
        g_sink = g_sink + out[0];
      });
      // The enclave's own operands (quantized A and dZ, |x| <= 2^15) take the
      // float64 path of the vector kernels (docs/arithmetic.md section 2).
      measure("matvec_mod, enclave operand", kernel_path_name(p), [&] {
        matvec_mod(small.data(), rows, cols, cols, s.data(), sums.data());
        g_sink = g_sink + sums[0];
      });
      std::vector<std::uint64_t> sums2(rows);
      measure("matvec2_mod, enclave operand", kernel_path_name(p), [&] {
        matvec2_mod(small.data(), rows, cols, cols, s.data(), s.data() + 1, sums.data(),
                    sums2.data());
        g_sink = g_sink + sums[0] + sums2[0];
      });
      measure("matvec_t_mod, enclave operand", kernel_path_name(p), [&] {
        matvec_t_mod(small.data(), rows, cols, cols, y.data(), out.data());
        g_sink = g_sink + out[0];
      });
      // The same operands kept narrow (float32): half the bytes read. Same
      // results first, so no row times a fault path.
      {
        std::vector<std::uint64_t> wide_sums(rows), narrow_sums(rows);
        const bool same =
            matvec_mod(small.data(), rows, cols, cols, s.data(), wide_sums.data()).ok() &&
            matvec_mod(small_narrow.data(), rows, cols, cols, s.data(), narrow_sums.data()).ok() &&
            wide_sums == narrow_sums;
        if (!same) {
          std::printf("matvec_mod of a narrow operand differs from float64\n");
          return 1;
        }
      }
      measure_narrow("matvec_mod, narrow operand", kernel_path_name(p), [&] {
        matvec_mod(small_narrow.data(), rows, cols, cols, s.data(), sums.data());
        g_sink = g_sink + sums[0];
      });
      measure_narrow("matvec2_mod, narrow operand", kernel_path_name(p), [&] {
        matvec2_mod(small_narrow.data(), rows, cols, cols, s.data(), s.data() + 1, sums.data(),
                    sums2.data());
        g_sink = g_sink + sums[0] + sums2[0];
      });
      measure_narrow("matvec_t_mod, narrow operand", kernel_path_name(p), [&] {
        matvec_t_mod(small_narrow.data(), rows, cols, cols, y.data(), out.data());
        g_sink = g_sink + out[0];
      });
      measure("quantize (float64 input)", kernel_path_name(p), [&] {
        g_sink = g_sink + quantize(zprev.data(), rows, cols, cols, FixedFormat{8, 64.0},
                                   copy.data(), cols).saturated;
      });
      measure("quantize (float64 input), narrow out", kernel_path_name(p), [&] {
        g_sink = g_sink + quantize(zprev.data(), rows, cols, cols, FixedFormat{8, 64.0},
                                   out_narrow.data(), cols).saturated;
      });
    }
  }
  release_kernel_path();

  // Mask generation: uniform F_q elements, 8 bytes each, into a buffer of the same size.
  PrgKey key{};
  for (int i = 0; i < 16; ++i) key.bytes[i] = static_cast<std::uint8_t>(i * 17 + 3);
  Prg prg;
  if (!prg.init(key).ok()) {
    std::printf("Prg init failed\n");
    return 1;
  }
  std::vector<std::uint64_t> masks(n);
  measure("mask generation uniform_mod_q", "aes-ctr", [&] {
    prg.uniform_mod_q(prg_stream(1, 2), masks.data(), masks.size());
    g_sink = g_sink + masks[n / 3];
  });
  const double t_mask = report.back().seconds;
  measure("mask generation uniform_mod_pb", "aes-ctr", [&] {
    prg.uniform_mod_pb(prg_stream(1, 3), masks.data(), masks.size());
    g_sink = g_sink + masks[n / 3];
  });

  std::printf("%-38s %-9s %14s\n", "pass", "path", "throughput (input bytes)");
  for (const Row& r : report) print_row(r);

  correction_rows(reps);

  const double mask_gbs = bytes / t_mask / 1e9;
  std::printf("\ntarget: fused forward (relu/identity, vector path) >= 0.25 x memcpy: %.2f -> %s\n",
              best_fused_ratio, best_fused_ratio >= 0.25 ? "met" : "NOT met");
  std::printf("target: mask generation >= 1 GB/s on one core: %.2f GB/s -> %s\n", mask_gbs,
              mask_gbs >= 1.0 ? "met" : "NOT met");
  if (threads < 2) return 0;
  // A step's passes at this shape: the forward and backward fused passes into
  // narrow operands, the matvecs of the fingerprints and quantize.
  std::vector<std::uint64_t> dots0(rows), dots1(rows), col(cols + 1);
  std::vector<double> scratch(6 * cols);
  ForwardArgs f;
  f.z = z.data(); f.rows = rows; f.cols = cols; f.ld_z = cols; f.scale = 16; f.s = s.data();
  f.expected = expected.data(); f.act = Activation::relu; f.relu_mask = relu_mask.data();
  f.ld_relu_mask = cols; f.a_next_narrow = a_next_narrow.data(); f.ld_a_next = cols + 1;
  f.a_format = FixedFormat{8, 8.0};
  f.next_v[0] = f.next_v[1] = s.data();
  f.next_dots[0] = dots0.data(); f.next_dots[1] = dots1.data(); f.next_scratch = scratch.data();
  BackwardArgs b;
  b.da = z.data(); b.rows = rows; b.cols = cols; b.ld_da = cols; b.scale = 16; b.t = s.data();
  b.act = Activation::relu; b.relu_mask_prev = mask_prev.data(); b.ld_relu_mask_prev = cols;
  b.out_cols = cols; b.dz_prev_narrow = out_narrow.data(); b.ld_dz_prev = cols;
  b.g_format = FixedFormat{12, 8.0};
  const float* x = small_narrow.data();
  by_threads(threads, reps, {
      {"fused forward relu (narrow out)", [&] { g_sink = g_sink + fused_forward(f).saturated; }},
      {"fused backward relu (narrow out)", [&] { g_sink = g_sink + fused_backward(b).saturated; }},
      {"matvec2_mod narrow", [&] { matvec2_mod(x, rows, cols, cols, s.data(), s.data(), dots0.data(), dots1.data()); }},
      {"matvec_t_mod narrow", [&] { matvec_t_mod(x, rows, cols, cols, dots0.data(), col.data()); }},
      {"quantize (narrow out)", [&] {
         g_sink = g_sink + quantize(zprev.data(), rows, cols, cols, FixedFormat{8, 64.0},
                                    out_narrow.data(), cols).saturated; }},
  });
  return 0;
}
