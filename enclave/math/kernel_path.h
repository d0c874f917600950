#pragma once
/**
 * @file kernel_path.h
 * Choice of the instruction set used by the vectorized passes (fused.h,
 * freivalds.h): the widest path the CPU reports at run time (AVX-512F, then
 * AVX2, then portable C++). Every path returns bit-identical results. The
 * image always runs the automatic choice; only the math tests and bench_math
 * link a hook that forces a path (tests/cpp/math/forced_path).
 */

namespace veil {
namespace math {

/** A kernel implementation. */
enum class KernelPath { portable = 0, avx2, avx512 };

/** True if this build contains the path and the CPU can run it. */
bool kernel_path_supported(KernelPath path) noexcept;

/** The widest supported path: the one every pass runs. */
KernelPath best_kernel_path() noexcept;

}  // namespace math
}  // namespace veil
