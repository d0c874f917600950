#include "veil/enclave.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include "bridge.h"
#include "veil/codes.h"
#include "veil/error.h"

#ifndef VEIL_ENCLAVE_IMAGE_NAME
#error "VEIL_ENCLAVE_IMAGE_NAME must name the enclave image file"
#endif

namespace veil {

std::string version() { return VEIL_VERSION_STRING; }

std::string Enclave::backend() {
#if defined(VEIL_BACKEND_OPENENCLAVE)
  return "openenclave";
#else
  return "virtual";
#endif
}

std::string Enclave::default_image_path() {
  if (const char* env = std::getenv("VEIL_ENCLAVE_PATH"); env && *env) return env;
  // The image is installed beside this library, wherever that was installed.
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&Enclave::default_image_path), &info) && info.dli_fname) {
    std::string self = info.dli_fname;
    auto slash = self.rfind('/');
    std::string dir = slash == std::string::npos ? "." : self.substr(0, slash);
    return dir + "/" + VEIL_ENCLAVE_IMAGE_NAME;
  }
  return VEIL_ENCLAVE_IMAGE_NAME;
}

Enclave::Enclave(const std::string& image_path, bool debug)
    : image_path_(image_path.empty() ? default_image_path() : image_path),
      debug_(debug),
      handle_(std::make_unique<Handle>()) {
  uint32_t flags = debug ? OE_ENCLAVE_FLAG_DEBUG : 0;
#if defined(VEIL_OE_SIMULATION)
  flags |= OE_ENCLAVE_FLAG_SIMULATE;
#endif
  oe_result_t result = oe_create_veil_enclave(image_path_.c_str(), OE_ENCLAVE_TYPE_AUTO, flags,
                                              nullptr, 0, &handle_->enclave);
  if (result == OE_DEBUG_DOWNGRADE)
    throw EnclaveError("loading '" + image_path_ + "' as a debug enclave failed: it is a release "
                       "image; build with -DVEIL_ENCLAVE_DEBUG=ON for a debug enclave",
                       -1, result);
  if (result != OE_OK) {
    throw EnclaveError("loading the enclave image '" + image_path_ +
                           "' failed: " + oe_result_str(result),
                       -1, result);
  }
}

Enclave::~Enclave() {
  if (!handle_ || !handle_->enclave) return;
  std::set<uint64_t> unclosed;
  {
    std::lock_guard<std::mutex> lock(handle_->unclosed_mutex);
    unclosed.swap(handle_->unclosed);
  }
  for (uint64_t id : unclosed) {  // releases their threads, which leave the enclave
    int status = VEIL_OK;
    (void)ecall_close_session(handle_->enclave, &status, id);
  }
  oe_terminate_enclave(handle_->enclave);
}

EnclaveInfo Enclave::info() const {
  veil_info_t raw{};
  int status = VEIL_OK;
  oe_result_t result = ecall_get_info(handle_->enclave, &status, &raw);
  if (result != OE_OK || status != VEIL_OK)
    detail::raise_error(handle_->enclave, 0, "ecall_get_info", result, status);
  EnclaveInfo info;
  info.version = std::to_string(raw.version_major) + "." + std::to_string(raw.version_minor) +
                 "." + std::to_string(raw.version_patch);
  raw.backend[sizeof raw.backend - 1] = '\0';
  info.backend = raw.backend;
  info.features = raw.features;
  info.max_sessions = raw.max_sessions;
  info.debug = debug_;
  for (const FeatureName* f = kFeatureNames; f->name; ++f)
    if (raw.features & static_cast<uint64_t>(f->value)) info.feature_names.emplace_back(f->name);
  return info;
}

}  // namespace veil
