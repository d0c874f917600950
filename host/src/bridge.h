#pragma once
// Internal glue between the public C++ API and the generated untrusted bridge.
#include <openenclave/host.h>

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "any_bridge.h"
#include "veil/enclave.h"
#include "veil_u.h"

namespace veil {

struct Enclave::Handle {
  oe_enclave_t* enclave = nullptr;
  // Sessions the enclave must close before it terminates: those that lent it
  // threads and are not closed yet (a session leaked past its enclave), and
  // those whose destructor could not close them because it ran inside an
  // ocall (a garbage collector freeing a session while a Python device's
  // callback runs). Their parked threads would keep it from terminating.
  std::mutex unclosed_mutex;
  std::set<uint64_t> unclosed;
};

class Device;
struct Timing;
struct TrainConfig;

namespace detail {

/** Route a session's device ocalls to device and charge their time to timing. */
void bind_device(uint64_t session, Device* device, Timing* timing);
/** Stop routing a session's ocalls (before the device or timing goes away). */
void unbind_device(uint64_t session);
/**
 * While into is not null, keep a copy of each layer's download as it goes to
 * the enclave (into[layer]); null stops it.
 */
void capture_downloads(uint64_t session, std::vector<std::vector<double>>* into);
/** The message of the last device failure of a session ("" if none). */
std::string take_device_error(uint64_t session);

/** The enclave's last error message for a session (0: the sessionless one). */
std::string last_error(oe_enclave_t* enclave, uint64_t session);

/** Throw the veil::Error for a failed call. */
[[noreturn]] void raise_error(oe_enclave_t* enclave, uint64_t session, const char* call,
                              int oe_result, int status);

}  // namespace detail
}  // namespace veil
