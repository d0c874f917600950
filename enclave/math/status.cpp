#include "math/status.h"

namespace veil {
namespace math {

const char* fault_name(Fault fault) noexcept {
  switch (fault) {
    case Fault::none: return "none";
    case Fault::not_finite: return "not_finite";
    case Fault::not_integral: return "not_integral";
    case Fault::out_of_range: return "out_of_range";
    case Fault::mismatch: return "mismatch";
    case Fault::invalid_argument: return "invalid_argument";
    case Fault::crypto_failure: return "crypto_failure";
  }
  return "unknown";
}

}  // namespace math
}  // namespace veil
