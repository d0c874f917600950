#include "math/status.h"

#include <cstdio>

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

void describe_status(const Status& st, const char* what, char* out,
                     std::size_t capacity) noexcept {
  if (st.row != Status::npos && st.col != Status::npos)
    std::snprintf(out, capacity, "%s: %s at row %zu, column %zu", what, fault_name(st.fault),
                  st.row, st.col);
  else if (st.row != Status::npos)
    std::snprintf(out, capacity, "%s: %s at row %zu", what, fault_name(st.fault), st.row);
  else if (st.col != Status::npos)
    std::snprintf(out, capacity, "%s: %s at column %zu", what, fault_name(st.fault), st.col);
  else
    std::snprintf(out, capacity, "%s: %s", what, fault_name(st.fault));
}

}  // namespace math
}  // namespace veil
