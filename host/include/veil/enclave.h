#pragma once
/**
 * @file enclave.h
 * @brief Loading the veil enclave image and asking what it is.
 */
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace veil {

/** What a loaded enclave reports about itself. */
struct EnclaveInfo {
  std::string version;                     ///< "major.minor.patch" of the enclave image
  std::string backend;                     ///< "virtual" or "openenclave"
  uint64_t features = 0;                   ///< veil_feature_t bits
  std::vector<std::string> feature_names;  ///< the same bits, by name
  uint32_t max_sessions = 0;               ///< sessions one enclave can hold at once
  bool debug = false;                      ///< loaded as a debug enclave (host-readable on SGX)
};

/**
 * A loaded enclave. Loading is expensive (one per process is typical); sessions
 * (Session, Trainer) share it. Thread-safe: several sessions may run in
 * parallel up to the enclave's thread limit (NumTCS in enclave/veil.conf).
 */
class Enclave {
 public:
  /**
   * Load the enclave image.
   * @param image_path path of the image; empty loads default_image_path()
   * @param debug      load as a debug enclave (Open Enclave: OE_ENCLAVE_FLAG_DEBUG),
   *                   whose memory the host can read on SGX: development only, and
   *                   the image must be built with -DVEIL_ENCLAVE_DEBUG=ON
   * @throws EnclaveError when the image cannot be loaded
   */
  explicit Enclave(const std::string& image_path = "", bool debug = false);
  ~Enclave();
  Enclave(const Enclave&) = delete;
  Enclave& operator=(const Enclave&) = delete;

  /** The image installed beside the host library (or VEIL_ENCLAVE_PATH when set). */
  static std::string default_image_path();
  /** "virtual" or "openenclave": the backend this host library was built for. */
  static std::string backend();

  /** Version, backend and features, as the enclave reports them. */
  EnclaveInfo info() const;
  /** The path this enclave was loaded from. */
  const std::string& image_path() const noexcept { return image_path_; }

  struct Handle;
  /** Internal: the bridge handle (opaque to users). */
  Handle& handle() const { return *handle_; }

 private:
  std::string image_path_;
  bool debug_;
  std::unique_ptr<Handle> handle_;
};

/** The library's version string. */
std::string version();

/** Receives the enclave's log messages (level 0 debug .. 3 error); it may be called from
 *  any thread that calls into an enclave, and must not throw. */
using LogHandler = void (*)(int level, const char* message);

/** Sends the enclave's log messages to `handler` instead of stderr (warnings and errors
 *  only); nullptr restores stderr. Language bindings route them into their own logging. */
void set_log_handler(LogHandler handler) noexcept;

}  // namespace veil
