#include "fuzz_common.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace veil_fuzz {
namespace {

oe_enclave_t* g_enclave = nullptr;

void load() {
  const std::string path = veil::Enclave::default_image_path();
  oe_result_t r = oe_create_veil_enclave(path.c_str(), OE_ENCLAVE_TYPE_AUTO, 0,
                                         nullptr, 0, &g_enclave);
  if (r != OE_OK) {
    std::fprintf(stderr, "fuzz: cannot load the enclave image '%s': %s\n", path.c_str(),
                 oe_result_str(r));
    std::exit(2);
  }
}

}  // namespace

oe_enclave_t* enclave() {
  if (g_enclave == nullptr) load();
  return g_enclave;
}

void expect_alive(oe_result_t result, const char* call) {
  if (result != OE_ENCLAVE_ABORTING) return;
  std::fprintf(stderr, "fuzz: the enclave aborted in %s\n", call);
  std::abort();
}

Session::Session() {
  int rc = VEIL_ERR_INTERNAL;
  oe_result_t r = ecall_open_session(enclave(), &rc, &id_);
  expect_alive(r, "ecall_open_session");
  if (r != OE_OK || rc != VEIL_OK) {
    // Every input closes what it opened, so this is the harness's own fault.
    std::fprintf(stderr, "fuzz: cannot open a session: %s, status %d\n", oe_result_str(r), rc);
    std::abort();
  }
  device_ = std::make_unique<veil::CpuDevice>(1);
  veil::detail::bind_device(id_, device_.get(), &timing_);
}

Session::~Session() {
  if (id_ == 0) return;
  int rc = 0;
  expect_alive(ecall_close_session(enclave(), &rc, id_), "ecall_close_session");
  veil::detail::unbind_device(id_);
}

}  // namespace veil_fuzz
