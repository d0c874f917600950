// The trusted half of veil's virtual enclave runtime, linked into every virtual
// enclave image (veil_vtrusted). It owns the enclave arena, copies every ecall's
// buffers into it before the generated handler sees them, copies ocall buffers out
// to host memory and back, and implements the enclave-side Open Enclave API.
//
// Only veil_venclave_entry is exported (see venclave.map); the host reaches the
// rest through the exports table it returns.
#include <openenclave/attestation/attester.h>
#include <openenclave/edger8r/enclave.h>

#include <sys/random.h>

#include <atomic>
#include <cerrno>
#include <csetjmp>
#include <cstdlib>
#include <cstring>

#include "arena.h"
#include "venclave_abi.h"

namespace veil {
namespace {

struct TrustedState {
  veil_vhost_imports_t host{};
  std::atomic<bool> initialized{false};
  std::atomic<bool> aborted{false};
  uintptr_t arena_begin = 0;
  uintptr_t arena_end = 0;
  Arena arena;
};

TrustedState g_state;

// Where oe_abort() returns to: the frame of the ecall running on this thread.
thread_local std::jmp_buf* t_abort_target = nullptr;

bool range_end(const void* ptr, size_t size, uintptr_t* end) {
  if (ptr == nullptr) return false;
  return !__builtin_add_overflow(reinterpret_cast<uintptr_t>(ptr), size, end);
}

bool within_arena(const void* ptr, size_t size) {
  uintptr_t end = 0;
  if (!range_end(ptr, size, &end)) return false;
  uintptr_t begin = reinterpret_cast<uintptr_t>(ptr);
  return begin >= g_state.arena_begin && end <= g_state.arena_end;
}

bool outside_arena(const void* ptr, size_t size) {
  uintptr_t end = 0;
  if (!range_end(ptr, size, &end)) return false;
  uintptr_t begin = reinterpret_cast<uintptr_t>(ptr);
  return end <= g_state.arena_begin || begin >= g_state.arena_end;
}

void mark_aborted() {
  if (!g_state.aborted.exchange(true) && g_state.host.notify_abort != nullptr)
    g_state.host.notify_abort(g_state.host.context);
}

// Runs a generated handler so that oe_abort() or an escaping C++ exception ends
// the ecall with OE_ENCLAVE_ABORTING instead of unwinding into the host.
oe_result_t run_handler(oe_ecall_func_t handler, const uint8_t* in, size_t in_size,
                        uint8_t* out, size_t out_size, size_t* written) {
  std::jmp_buf target;
  std::jmp_buf* previous = t_abort_target;
  volatile oe_result_t result = OE_ENCLAVE_ABORTING;
  if (setjmp(target) == 0) {
    t_abort_target = &target;
    try {
      result = handler(in, in_size, out, out_size, written);
    } catch (...) {
      mark_aborted();
      result = OE_ENCLAVE_ABORTING;
    }
  }
  t_abort_target = previous;
  return result;
}

oe_result_t initialize(const veil_vhost_imports_t* imports) {
  if (imports == nullptr || imports->abi_version != VEIL_VENCLAVE_ABI_VERSION ||
      imports->struct_size < sizeof(veil_vhost_imports_t) || imports->call_host == nullptr ||
      imports->host_malloc == nullptr || imports->host_free == nullptr ||
      imports->notify_abort == nullptr)
    return OE_INVALID_PARAMETER;
  uintptr_t end = 0;
  if (imports->arena_base == nullptr || imports->arena_size == 0 ||
      !range_end(imports->arena_base, imports->arena_size, &end))
    return OE_INVALID_PARAMETER;
  if (g_state.initialized.load()) return OE_ALREADY_INITIALIZED;
  g_state.host = *imports;
  g_state.arena_begin = reinterpret_cast<uintptr_t>(imports->arena_base);
  g_state.arena_end = end;
  g_state.arena.reset(imports->arena_base, imports->arena_size);
  g_state.aborted.store(false);
  g_state.initialized.store(true);
  return OE_OK;
}

void finalize() {
  g_state.initialized.store(false);
  g_state.arena.reset(nullptr, 0);
  g_state.arena_begin = 0;
  g_state.arena_end = 0;
}

const char* ecall_name(uint32_t index) {
  if (index >= veil_edger_ecall_table.count) return nullptr;
  return veil_edger_ecall_table.entries[index].name;
}

oe_result_t call_enclave(uint32_t index, const void* host_input, size_t input_size,
                         void* host_output, size_t output_size, size_t* written) {
  if (!g_state.initialized.load()) return OE_UNEXPECTED;
  if (g_state.aborted.load()) return OE_ENCLAVE_ABORTING;
  if (index >= veil_edger_ecall_table.count ||
      veil_edger_ecall_table.entries[index].handler == nullptr)
    return OE_NOT_FOUND;
  // Every pointer the host hands over must be host memory: the enclave never lets
  // the host aim a copy at the arena.
  if (!outside_arena(written, sizeof(*written))) return OE_INVALID_PARAMETER;
  if (input_size > 0 && !outside_arena(host_input, input_size)) return OE_INVALID_PARAMETER;
  if (output_size > 0 && !outside_arena(host_output, output_size))
    return OE_INVALID_PARAMETER;
  *written = 0;

  auto* in = static_cast<uint8_t*>(g_state.arena.allocate(input_size, false));
  auto* out = static_cast<uint8_t*>(g_state.arena.allocate(output_size, true));
  if (in == nullptr || out == nullptr) {
    g_state.arena.release(in);
    g_state.arena.release(out);
    return OE_OUT_OF_MEMORY;
  }
  if (input_size > 0) std::memcpy(in, host_input, input_size);

  size_t produced = 0;
  oe_result_t result = run_handler(veil_edger_ecall_table.entries[index].handler, in,
                                   input_size, out, output_size, &produced);
  if (result == OE_OK) {
    if (produced > output_size) {
      result = OE_UNEXPECTED;
    } else {
      if (produced > 0) std::memcpy(host_output, out, produced);
      *written = produced;
    }
  }
  g_state.arena.release(in);
  g_state.arena.release(out);
  return result;
}

veil_venclave_exports_t g_exports{};

}  // namespace
}  // namespace veil

using veil::g_state;

extern "C" __attribute__((visibility("default"))) const veil_venclave_exports_t*
veil_venclave_entry(uint32_t host_abi_version) {
  if (host_abi_version != VEIL_VENCLAVE_ABI_VERSION) return nullptr;
  veil_venclave_exports_t& e = veil::g_exports;
  e.abi_version = VEIL_VENCLAVE_ABI_VERSION;
  e.struct_size = sizeof(veil_venclave_exports_t);
  e.config = &veil_venclave_config;
  e.ecall_count = veil_edger_ecall_table.count;
  e.ecall_name = veil::ecall_name;
  e.initialize = veil::initialize;
  e.call_enclave = veil::call_enclave;
  e.finalize = veil::finalize;
  return &e;
}

// What both ocall transports check first: a live enclave and the buffers
// their sizes promise; on success *output_bytes_written starts at 0.
static oe_result_t host_call_preconditions(const void* input_buffer, size_t input_buffer_size,
                                    const void* output_buffer, size_t output_buffer_size,
                                    size_t* output_bytes_written) {
  if (!g_state.initialized.load()) return OE_UNEXPECTED;
  if (g_state.aborted.load()) return OE_ENCLAVE_ABORTING;
  if (output_bytes_written == nullptr || (input_buffer_size > 0 && input_buffer == nullptr) ||
      (output_buffer_size > 0 && output_buffer == nullptr))
    return OE_INVALID_PARAMETER;
  *output_bytes_written = 0;
  return OE_OK;
}

// The generated ocall stubs' transport. Their blocks were made in host memory
// by veil_edger_ocall_alloc, so they go to the host as they are (Open Enclave's
// ocall path); the host reports the bytes it wrote through a small host-side
// word that the enclave reads once. Enclave code calling oe_call_host_function
// with its own buffers gets the copying path below instead.
extern "C" oe_result_t veil_edger_call_host(uint32_t function_id, const void* input_buffer,
                                            size_t input_buffer_size, void* output_buffer,
                                            size_t output_buffer_size,
                                            size_t* output_bytes_written) {
  oe_result_t rc = host_call_preconditions(input_buffer, input_buffer_size, output_buffer,
                                          output_buffer_size, output_bytes_written);
  if (rc != OE_OK) return rc;
  if ((input_buffer_size > 0 && !veil::outside_arena(input_buffer, input_buffer_size)) ||
      (output_buffer_size > 0 && !veil::outside_arena(output_buffer, output_buffer_size)))
    return OE_INVALID_PARAMETER;
  auto* written = static_cast<size_t*>(g_state.host.host_malloc(g_state.host.context, sizeof(size_t)));
  if (written == nullptr) return OE_OUT_OF_MEMORY;
  *written = 0;
  oe_result_t result = g_state.host.call_host(g_state.host.context, function_id, input_buffer,
                                              input_buffer_size, output_buffer,
                                              output_buffer_size, written);
  if (g_state.aborted.load()) result = OE_ENCLAVE_ABORTING;
  size_t produced = 0;
  std::memcpy(&produced, written, sizeof produced);
  g_state.host.host_free(g_state.host.context, written);
  if (result == OE_OK) {
    if (produced > output_buffer_size) return OE_UNEXPECTED;
    *output_bytes_written = produced;
  }
  return result;
}

extern "C" oe_result_t oe_call_host_function(uint32_t function_id, const void* input_buffer,
                                             size_t input_buffer_size, void* output_buffer,
                                             size_t output_buffer_size,
                                             size_t* output_bytes_written) {
  oe_result_t rc = host_call_preconditions(input_buffer, input_buffer_size, output_buffer,
                                          output_buffer_size, output_bytes_written);
  if (rc != OE_OK) return rc;

  // One host block: [header: bytes written][input, 16-byte rounded][output].
  size_t input_rounded = 0;
  size_t total = 0;
  if (__builtin_add_overflow(input_buffer_size, size_t{15}, &input_rounded))
    return OE_INTEGER_OVERFLOW;
  input_rounded &= ~size_t{15};
  if (__builtin_add_overflow(size_t{VEIL_VHOST_OCALL_HEADER_SIZE}, input_rounded, &total) ||
      __builtin_add_overflow(total, output_buffer_size, &total))
    return OE_INTEGER_OVERFLOW;

  auto* block = static_cast<uint8_t*>(g_state.host.host_malloc(g_state.host.context, total));
  if (block == nullptr) return OE_OUT_OF_MEMORY;
  if (!veil::outside_arena(block, total)) {
    g_state.host.host_free(g_state.host.context, block);
    return OE_UNEXPECTED;
  }
  uint8_t* host_in = block + VEIL_VHOST_OCALL_HEADER_SIZE;
  uint8_t* host_out = host_in + input_rounded;
  std::memset(block, 0, VEIL_VHOST_OCALL_HEADER_SIZE);
  if (input_buffer_size > 0) std::memcpy(host_in, input_buffer, input_buffer_size);
  // host_out is not zeroed: it is host memory, whatever it holds reaches the
  // enclave only as the host's answer, which the enclave checks like any other.

  oe_result_t result =
      g_state.host.call_host(g_state.host.context, function_id, host_in, input_buffer_size,
                             host_out, output_buffer_size, reinterpret_cast<size_t*>(block));
  if (g_state.aborted.load()) result = OE_ENCLAVE_ABORTING;
  if (result == OE_OK) {
    size_t produced = 0;
    std::memcpy(&produced, block, sizeof(produced));  // read the host's figure once
    if (produced > output_buffer_size) {
      result = OE_UNEXPECTED;
    } else {
      if (produced > 0) std::memcpy(output_buffer, host_out, produced);
      *output_bytes_written = produced;
    }
  }
  g_state.host.host_free(g_state.host.context, block);
  return result;
}

extern "C" void* veil_edger_ocall_alloc(size_t size) { return oe_host_malloc(size); }

extern "C" void veil_edger_ocall_free(void* ptr) { oe_host_free(ptr); }


extern "C" bool oe_is_within_enclave(const void* ptr, size_t size) {
  return veil::within_arena(ptr, size);
}

extern "C" bool oe_is_outside_enclave(const void* ptr, size_t size) {
  return veil::outside_arena(ptr, size);
}

extern "C" oe_result_t oe_random(void* data, size_t size) {
  if (size == 0) return OE_OK;
  if (data == nullptr) return OE_INVALID_PARAMETER;
  auto* p = static_cast<uint8_t*>(data);
  while (size > 0) {
    // getrandom() returns at most 32 MiB - 1 bytes per call.
    size_t chunk = size < (size_t{1} << 25) - 1 ? size : (size_t{1} << 25) - 1;
    ssize_t n = getrandom(p, chunk, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return OE_FAILURE;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return OE_OK;
}

extern "C" void oe_abort(void) {
  veil::mark_aborted();
  if (veil::t_abort_target != nullptr) std::longjmp(*veil::t_abort_target, 1);
  // No ecall frame on this thread to end: nothing can continue.
  std::abort();
}

extern "C" void* oe_host_malloc(size_t size) {
  if (!g_state.initialized.load()) return nullptr;
  return g_state.host.host_malloc(g_state.host.context, size);
}

extern "C" void* oe_host_calloc(size_t nmemb, size_t size) {
  size_t total = 0;
  if (__builtin_mul_overflow(nmemb, size, &total)) return nullptr;
  void* p = oe_host_malloc(total);
  if (p != nullptr) std::memset(p, 0, total);
  return p;
}

extern "C" void oe_host_free(void* ptr) {
  if (ptr != nullptr && g_state.initialized.load())
    g_state.host.host_free(g_state.host.context, ptr);
}

// No hardware key hierarchy exists in the virtual backend, so there is no seal key,
// no report and no evidence. Out-parameters are cleared so a caller that ignores the
// result never reads stale pointers.

extern "C" oe_result_t oe_get_seal_key_by_policy_v2(oe_seal_policy_t seal_policy,
                                                    uint8_t** key_buffer,
                                                    size_t* key_buffer_size,
                                                    uint8_t** key_info, size_t* key_info_size) {
  OE_UNUSED(seal_policy);
  if (key_buffer) *key_buffer = nullptr;
  if (key_buffer_size) *key_buffer_size = 0;
  if (key_info) *key_info = nullptr;
  if (key_info_size) *key_info_size = 0;
  return OE_UNSUPPORTED;
}

extern "C" oe_result_t oe_get_seal_key_v2(const uint8_t* key_info, size_t key_info_size,
                                          uint8_t** key_buffer, size_t* key_buffer_size) {
  OE_UNUSED(key_info);
  OE_UNUSED(key_info_size);
  if (key_buffer) *key_buffer = nullptr;
  if (key_buffer_size) *key_buffer_size = 0;
  return OE_UNSUPPORTED;
}

// The functions above never hand out a buffer, so no buffer can reach the release
// functions below; accepting any pointer and doing nothing matches that.
extern "C" void oe_free_seal_key(uint8_t* key_buffer, uint8_t* key_info) {
  OE_UNUSED(key_buffer);
  OE_UNUSED(key_info);
}

extern "C" oe_result_t oe_get_report_v2(uint32_t flags, const uint8_t* report_data,
                                        size_t report_data_size, const void* opt_params,
                                        size_t opt_params_size, uint8_t** report_buffer,
                                        size_t* report_buffer_size) {
  OE_UNUSED(flags);
  OE_UNUSED(report_data);
  OE_UNUSED(report_data_size);
  OE_UNUSED(opt_params);
  OE_UNUSED(opt_params_size);
  if (report_buffer) *report_buffer = nullptr;
  if (report_buffer_size) *report_buffer_size = 0;
  return OE_UNSUPPORTED;
}

extern "C" void oe_free_report(uint8_t* report_buffer) { OE_UNUSED(report_buffer); }

extern "C" oe_result_t oe_attester_initialize(void) { return OE_UNSUPPORTED; }

extern "C" oe_result_t oe_attester_shutdown(void) { return OE_UNSUPPORTED; }

extern "C" oe_result_t oe_get_evidence(const oe_uuid_t* format_id, uint32_t flags,
                                       const void* custom_claims_buffer,
                                       size_t custom_claims_buffer_size,
                                       const void* optional_parameters,
                                       size_t optional_parameters_size,
                                       uint8_t** evidence_buffer, size_t* evidence_buffer_size,
                                       uint8_t** endorsements_buffer,
                                       size_t* endorsements_buffer_size) {
  OE_UNUSED(format_id);
  OE_UNUSED(flags);
  OE_UNUSED(custom_claims_buffer);
  OE_UNUSED(custom_claims_buffer_size);
  OE_UNUSED(optional_parameters);
  OE_UNUSED(optional_parameters_size);
  if (evidence_buffer) *evidence_buffer = nullptr;
  if (evidence_buffer_size) *evidence_buffer_size = 0;
  if (endorsements_buffer) *endorsements_buffer = nullptr;
  if (endorsements_buffer_size) *endorsements_buffer_size = 0;
  return OE_UNSUPPORTED;
}

extern "C" oe_result_t oe_free_evidence(uint8_t* evidence_buffer) {
  OE_UNUSED(evidence_buffer);
  return OE_OK;
}

extern "C" oe_result_t oe_free_endorsements(uint8_t* endorsements_buffer) {
  OE_UNUSED(endorsements_buffer);
  return OE_OK;
}
