#pragma once
/**
 * @file error.h
 * @brief The veil::Error hierarchy: every failure of the C++ API is one of these.
 *
 * Bridge failures (an oe_result_t other than OE_OK) and enclave failures (a
 * veil_status_t other than VEIL_OK) both become exceptions whose message names
 * the call and the code, plus the enclave's own explanation when it gave one.
 */
#include <cstdint>
#include <stdexcept>
#include <string>

namespace veil {

/** Base of every error the veil C++ API throws. */
class Error : public std::runtime_error {
 public:
  /**
   * @param message human-readable text naming the call and what was wrong
   * @param status  the enclave's veil_status_t, or -1 for bridge failures
   * @param oe_result the bridge's oe_result_t (0 = OE_OK)
   */
  Error(const std::string& message, int status, int oe_result)
      : std::runtime_error(message), status_(status), oe_result_(oe_result) {}
  /** The veil_status_t the enclave returned, or -1 when the bridge failed. */
  int status() const noexcept { return status_; }
  /** The oe_result_t of the bridge call (0 when the bridge itself succeeded). */
  int oe_result() const noexcept { return oe_result_; }

 private:
  int status_;
  int oe_result_;
};

/** The enclave could not be loaded or called, or it failed internally. */
class EnclaveError : public Error {
 public:
  using Error::Error;
};

/** Bad input: wrong shape, count, dtype, NaN/Inf, out-of-range value. The session stays usable. */
class InputError : public Error {
 public:
  using Error::Error;
};

/** A configuration was refused (for example one whose products could exceed 2^53). */
class ConfigError : public Error {
 public:
  using Error::Error;
};

/** A call arrived out of protocol order, or after the session aborted. */
class ProtocolError : public Error {
 public:
  using Error::Error;
};

/** A device result failed its integrity check. The session is aborted. */
class VerificationError : public Error {
 public:
  using Error::Error;
};

/** The host's device reported a failure (not an integrity failure). */
class DeviceError : public Error {
 public:
  using Error::Error;
};

}  // namespace veil
