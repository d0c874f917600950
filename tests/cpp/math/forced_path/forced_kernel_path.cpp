#include "forced_kernel_path.h"

#include <atomic>

#include "math/detail/kernels.h"

namespace veil {
namespace math {

namespace {

constexpr int kAutomatic = -1;
std::atomic<int> g_forced{kAutomatic};

}  // namespace

bool force_kernel_path(KernelPath path) noexcept {
  if (!kernel_path_supported(path)) return false;
  g_forced.store(static_cast<int>(path), std::memory_order_relaxed);
  return true;
}

void release_kernel_path() noexcept { g_forced.store(kAutomatic, std::memory_order_relaxed); }

KernelPath active_kernel_path() noexcept {
  const int forced = g_forced.load(std::memory_order_relaxed);
  return forced == kAutomatic ? best_kernel_path() : static_cast<KernelPath>(forced);
}

const char* kernel_path_name(KernelPath path) noexcept {
  switch (path) {
    case KernelPath::portable: return "portable";
    case KernelPath::avx2: return "avx2";
    case KernelPath::avx512: return "avx512";
  }
  return "unknown";
}

namespace detail {

// In place of enclave/math/kernel_choice.cpp.
const Kernels& active_kernels() noexcept { return kernels_of(active_kernel_path()); }

}  // namespace detail

}  // namespace math
}  // namespace veil
