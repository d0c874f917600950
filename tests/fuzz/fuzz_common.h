#pragma once
// What both harnesses share: one real enclave image per process, loaded through
// the generated bridge (veil_u.h) and the virtual runtime, and sessions whose
// device ocalls go to an honest in-process CPU device (veil::CpuDevice).
#include <cstdint>
#include <memory>

#include "bridge.h"  // host/src: routes a session's device ocalls to a veil::Device
#include "veil/veil.h"
#include "veil_u.h"

namespace veil_fuzz {

/** Placeholder for "the session this input runs in": the harness writes the live
 *  session id over every 8-byte-aligned copy of it in a marshalled buffer. */
constexpr uint64_t kSessionPlaceholder = 0x5E55105E55105E55ull;

/**
 * The enclave every input runs against: loaded on first use and never unloaded,
 * because libFuzzer keeps writing to the coverage counters of every image it has
 * seen, and an unloaded image's counters are freed memory.
 */
oe_enclave_t* enclave();

/** Stop the process when the enclave aborted: host input must never kill it. */
void expect_alive(oe_result_t result, const char* call);

/** A session with an honest CPU device bound to it for one input. */
class Session {
 public:
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  /** The enclave's id for it. */
  uint64_t id() const { return id_; }

 private:
  uint64_t id_ = 0;
  std::unique_ptr<veil::CpuDevice> device_;
  veil::Timing timing_;
};

}  // namespace veil_fuzz
