#pragma once
// A hook for the math tests and bench_math: force the kernel path every pass
// uses, to run each path in turn and compare them. It replaces the image's
// automatic choice (enclave/math/kernel_choice.cpp) at link time, so the
// enclave image has no way to force a path.

#include "math/kernel_path.h"

namespace veil {
namespace math {

/** Forces every later call to use `path`; false, changing nothing, if unsupported. Process-wide. */
bool force_kernel_path(KernelPath path) noexcept;

/** Back to the automatic choice, best_kernel_path(). */
void release_kernel_path() noexcept;

/** The path the next call will use. */
KernelPath active_kernel_path() noexcept;

/** "portable", "avx2" or "avx512". */
const char* kernel_path_name(KernelPath path) noexcept;

}  // namespace math
}  // namespace veil
