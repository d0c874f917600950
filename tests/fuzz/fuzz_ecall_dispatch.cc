// libFuzzer harness: arbitrary function ids and marshalled buffers through the
// virtual runtime's call path (oe_call_enclave_function -> the trusted runtime's
// copy-in -> the generated trusted bridge -> the ecall) into the real enclave image.
//
// An input is a sequence of up to kMaxCalls calls, each
//   u8 function   the ecall's id, taken mod (ecall count + 2) so unknown ids occur
//   u8 flags      bit 0: write the live session id over every aligned placeholder
//   u16 in_size   bytes of marshalled input that follow (little-endian)
//   u32 out_size  bytes of output space (mod kMaxOutput)
//   in_size bytes
// and every call runs in one fresh session whose device ocalls reach an honest
// in-process CPU device. Seeds (make_seeds) are real marshalled calls written by
// the generated host stubs. Sanitizers report memory and UB faults; an enclave
// abort (OE_ENCLAVE_ABORTING) is a finding too: no host input may kill the enclave.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <openenclave/edger8r/host.h>

#include "fuzz_common.h"

namespace {

constexpr size_t kMaxCalls = 16;
constexpr uint32_t kMaxOutput = 1u << 20;

// [user_check] pointers (veil.edl: x of ecall_train_step and ecall_predict) cross
// as values: the host lends its own memory, and a host that lends a wild pointer
// only crashes itself (denial of service, outside the threat model). The harness
// lends a real buffer of the count the call states, or NULL when that is too big,
// which the enclave must refuse.
template <class Args>
void lend_x(std::vector<uint8_t>& in, std::vector<double>& x) {
  Args args;
  if (in.size() < sizeof args) return;
  std::memcpy(&args, in.data(), sizeof args);
  x.assign(args.x_count <= (1u << 20) ? args.x_count : 0, 0.25);
  args.x = x.empty() ? nullptr : x.data();
  std::memcpy(in.data(), &args, sizeof args);
}

uint32_t read_le(const uint8_t* p, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}

void patch_session(std::vector<uint8_t>& buffer, uint64_t session) {
  for (size_t off = 0; off + 8 <= buffer.size(); off += 8) {
    uint64_t v;
    std::memcpy(&v, buffer.data() + off, 8);
    if (v == veil_fuzz::kSessionPlaceholder) std::memcpy(buffer.data() + off, &session, 8);
  }
}

// The session id an ecall_open_session call returned, 0 if none. The virtual
// generator puts the [out] value right after the 16-byte-rounded header.
uint64_t opened_session(const std::vector<uint8_t>& out) {
  const size_t at = VEIL_EDGER_HEADER_SIZE(ecall_open_session_args_t);
  ecall_open_session_args_t args;
  uint64_t id = 0;
  if (out.size() < at + sizeof id) return 0;
  std::memcpy(&args, out.data(), sizeof args);
  if (args.oe_result != OE_OK || args.oe_retval != VEIL_OK) return 0;
  std::memcpy(&id, out.data() + at, sizeof id);
  return id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  veil_fuzz::Session session;
  // Sessions the input opens itself are closed when it ends: the enclave holds 64.
  std::vector<uint64_t> opened;
  const uint32_t ids = veil_fcn_id_trusted_call_count + 2;
  for (size_t call = 0; call < kMaxCalls && size >= 8; ++call) {
    const uint32_t id = data[0] % ids;
    const uint8_t flags = data[1];
    size_t in_size = read_le(data + 2, 2);
    const size_t out_size = read_le(data + 4, 4) % kMaxOutput;
    data += 8;
    size -= 8;
    if (in_size > size) in_size = size;
    std::vector<uint8_t> in(data, data + in_size);
    data += in_size;
    size -= in_size;
    if (flags & 1) patch_session(in, session.id());
    // A lent worker stays in the enclave until its session closes: a harness on
    // one thread cannot lend one (tests/cpp cover ecall_worker).
    if (id == veil_fcn_id_ecall_worker) continue;
    std::vector<double> x;
    if (id == veil_fcn_id_ecall_train_step) lend_x<ecall_train_step_args_t>(in, x);
    if (id == veil_fcn_id_ecall_predict) lend_x<ecall_predict_args_t>(in, x);
    // Exactly sized heap buffers: AddressSanitizer sees any access past them.
    std::vector<uint8_t> out(out_size);
    size_t written = 0;
    oe_result_t r = oe_call_enclave_function(veil_fuzz::enclave(), id,
                                             in_size ? in.data() : nullptr, in_size,
                                             out_size ? out.data() : nullptr, out_size, &written);
    veil_fuzz::expect_alive(r, "oe_call_enclave_function");
    if (written > out_size) __builtin_trap();  // the runtime wrote past what it was given
    if (r == OE_OK && id == veil_fcn_id_ecall_open_session)
      if (uint64_t s = opened_session(out)) opened.push_back(s);
  }
  for (uint64_t s : opened) {
    int rc = 0;
    veil_fuzz::expect_alive(ecall_close_session(veil_fuzz::enclave(), &rc, s),
                            "ecall_close_session");
  }
  return 0;
}
