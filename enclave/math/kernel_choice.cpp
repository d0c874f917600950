// The kernel table every pass of the image uses: always the automatic choice.
// The math tests and bench_math link tests/cpp/math/forced_path instead of this
// file, to run each path in turn; nothing in the image can force one.
#include "math/detail/kernels.h"

namespace veil {
namespace math {
namespace detail {

const Kernels& active_kernels() noexcept { return kernels_of(best_kernel_path()); }

}  // namespace detail
}  // namespace math
}  // namespace veil
