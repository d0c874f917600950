#pragma once
/**
 * @file status.h
 * Result codes of the trusted math core.
 *
 * Nothing in enclave/math throws: every function that can fail returns a
 * Status that names what went wrong and where (row and column of the matrix
 * being checked), so the enclave can abort the session with a precise error.
 */

#include <cstddef>
#include <cstdint>

namespace veil {
namespace math {

/** What went wrong. The first four are integrity failures of device data. */
enum class Fault : std::uint8_t {
  none = 0,          ///< success
  not_finite,        ///< NaN or ±Inf in a device result
  not_integral,      ///< a value with a fractional part where an integer was due
  out_of_range,      ///< |x| >= 2^53: outside the exactly representable integers
  mismatch,          ///< a Freivalds or fingerprint comparison failed
  invalid_argument,  ///< caller error: null pointer, bad shape, bad format
  crypto_failure     ///< libcrypto reported an error
};

/** Outcome of a check or computation; `row`/`col` locate the fault. */
struct Status {
  /** Marks a coordinate that does not apply (e.g. the column of a row mismatch). */
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  Fault fault = Fault::none;
  std::size_t row = npos;
  std::size_t col = npos;

  /** True when no fault was found. */
  constexpr bool ok() const noexcept { return fault == Fault::none; }

  /** A successful status. */
  static constexpr Status success() noexcept { return Status{}; }
  /** A fault located at (row, col); either may be npos. */
  static constexpr Status at(Fault f, std::size_t r = npos, std::size_t c = npos) noexcept {
    return Status{f, r, c};
  }
};

/** Stable lower-case name of a fault ("not_finite", ...), for error messages. */
const char* fault_name(Fault fault) noexcept;

/** "what: mismatch at row 3" / "...at row 0, column 7": a status for an error message. */
void describe_status(const Status& status, const char* what, char* out,
                     std::size_t capacity) noexcept;

}  // namespace math
}  // namespace veil
