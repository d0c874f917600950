#include "math/kernel_path.h"

#include <atomic>

#include "math/detail/kernels.h"

namespace veil {
namespace math {

namespace {

// Cached in an atomic rather than a function-local static: the latter needs
// __cxa_guard_* from the C++ runtime, which the enclave image does not link.
// Two threads racing here compute the same value, so the race is benign.
std::atomic<int> g_best{-1};

}  // namespace

bool kernel_path_supported(KernelPath path) noexcept {
  if (path == KernelPath::portable) return true;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();  // safe to repeat; needed if called before constructors ran
  if (path == KernelPath::avx2)
    return detail::avx2_kernels() != nullptr && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");  // the exact tile fuses
  if (path == KernelPath::avx512)
    return detail::avx512_kernels() != nullptr && __builtin_cpu_supports("avx512f");
#endif
  return false;
}

KernelPath best_kernel_path() noexcept {
  int best = g_best.load(std::memory_order_relaxed);
  if (best < 0) {
    const KernelPath p = kernel_path_supported(KernelPath::avx512) ? KernelPath::avx512
                         : kernel_path_supported(KernelPath::avx2) ? KernelPath::avx2
                                                                   : KernelPath::portable;
    best = static_cast<int>(p);
    g_best.store(best, std::memory_order_relaxed);
  }
  return static_cast<KernelPath>(best);
}

namespace detail {

const Kernels& kernels_of(KernelPath path) noexcept {
  switch (path) {
    case KernelPath::avx512: return *avx512_kernels();
    case KernelPath::avx2: return *avx2_kernels();
    default: return portable_kernels();
  }
}

}  // namespace detail

}  // namespace math
}  // namespace veil
