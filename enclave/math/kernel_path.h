#pragma once
/**
 * @file kernel_path.h
 * Choice of the instruction set used by the vectorized passes (fused.h,
 * freivalds.h). The default picks the widest path the CPU reports at run time
 * (AVX-512F, then AVX2, then portable C++). Every path returns bit-identical
 * results; forcing one exists for the tests that prove it and for benchmarks.
 */

namespace veil {
namespace math {

/** A kernel implementation. */
enum class KernelPath { automatic = 0, portable, avx2, avx512 };

/** True if this build contains the path and the CPU can run it (automatic: always). */
bool kernel_path_supported(KernelPath path) noexcept;

/**
 * Forces every later call to use `path` (automatic restores run-time choice).
 * Returns false, changing nothing, if the path is not supported. Process-wide.
 */
bool force_kernel_path(KernelPath path) noexcept;

/** The path the next call will use (never automatic). */
KernelPath active_kernel_path() noexcept;

/** "automatic", "portable", "avx2" or "avx512". */
const char* kernel_path_name(KernelPath path) noexcept;

}  // namespace math
}  // namespace veil
