// The untrusted half of veil's virtual enclave runtime (veil_vhost): loads an
// enclave image as a private shared object, maps its arena, and enforces the
// Open Enclave call rules a real enclave enforces in hardware and in its host
// runtime: thread (TCS) limits, no re-entrant ecalls, abort state, and handles
// that stop working once terminated.
#include <openenclave/edger8r/host.h>
#include <veil_virtual/host.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <unordered_set>
#include <vector>

#include "venclave_abi.h"

struct _oe_enclave {
  void* handle = nullptr;
  // The private copy of the image that `handle` was loaded from. It stays open
  // while the object is loaded so that no later load can reuse its
  // /proc/self/fd name (the dynamic loader identifies objects by name).
  int image_fd = -1;
  std::string load_name;
  const veil_venclave_exports_t* exports = nullptr;
  veil_venclave_config_t config{};
  void* arena = nullptr;
  size_t arena_size = 0;
  std::vector<oe_ocall_func_t> ocalls;
  std::vector<uint32_t> ecall_map;  // host function id -> enclave ecall index
  uint32_t active = 0;              // ecalls in flight (TCS in use); under registry mutex
  bool terminating = false;         // under registry mutex
  std::atomic<bool> aborting{false};
};

namespace veil {
namespace {

constexpr uint32_t kNoEcall = UINT32_MAX;
// Largest arena accepted (NumHeapPages * 4 KiB); mapped with MAP_NORESERVE, so
// only the pages the enclave touches cost memory.
constexpr uint64_t kMaxArenaBytes = uint64_t{1} << 40;

struct Registry {
  std::mutex mutex;
  std::condition_variable idle;
  std::unordered_set<oe_enclave_t*> live;
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: enclaves may outlive statics
  return *r;
}

// The ocalls this thread is inside of, innermost first.
struct OcallFrame {
  const oe_enclave_t* enclave;
  OcallFrame* previous;
};
thread_local OcallFrame* t_ocall_top = nullptr;

bool in_ocall_of(const oe_enclave_t* enclave) {
  for (OcallFrame* f = t_ocall_top; f != nullptr; f = f->previous)
    if (f->enclave == enclave) return true;
  return false;
}

oe_result_t host_call_host(void* context, uint32_t function_id, const void* input,
                           size_t input_size, void* output, size_t output_size,
                           size_t* output_bytes_written) {
  auto* enclave = static_cast<oe_enclave_t*>(context);
  if (function_id >= enclave->ocalls.size() || enclave->ocalls[function_id] == nullptr)
    return OE_NOT_FOUND;
  OcallFrame frame{enclave, t_ocall_top};
  t_ocall_top = &frame;
  oe_result_t result = OE_UNEXPECTED;
  try {
    result = enclave->ocalls[function_id](static_cast<const uint8_t*>(input), input_size,
                                          static_cast<uint8_t*>(output), output_size,
                                          output_bytes_written);
  } catch (...) {
    // A host exception must not unwind through enclave frames.
    result = OE_UNEXPECTED;
  }
  t_ocall_top = frame.previous;
  return result;
}

// Ocall blocks carry whole matrices (megabytes) on every call. glibc returns
// such blocks to the kernel on free, so each call would fault its pages in
// again; a few freed large blocks are kept for reuse instead. Each block has
// a 16-byte header with its capacity so host_free knows what it holds.
namespace block_cache {

constexpr size_t kHeader = 16;
constexpr size_t kMinCached = size_t{256} << 10;
constexpr size_t kMaxBlocks = 8;
constexpr size_t kMaxBytes = size_t{512} << 20;

std::mutex mutex;
std::vector<void*> blocks;  // raw allocations, header included
size_t bytes = 0;

size_t capacity_of(void* raw) {
  size_t capacity = 0;
  std::memcpy(&capacity, raw, sizeof capacity);
  return capacity;
}

void* take(size_t size) {
  std::lock_guard<std::mutex> lock(mutex);
  for (size_t i = 0; i < blocks.size(); ++i) {
    const size_t capacity = capacity_of(blocks[i]);
    if (capacity >= size && capacity / 2 <= size) {  // no tiny request pins a huge block
      void* raw = blocks[i];
      blocks.erase(blocks.begin() + static_cast<std::ptrdiff_t>(i));
      bytes -= capacity;
      return raw;
    }
  }
  return nullptr;
}

bool keep(void* raw) {
  const size_t capacity = capacity_of(raw);
  if (capacity < kMinCached) return false;
  std::lock_guard<std::mutex> lock(mutex);
  if (blocks.size() >= kMaxBlocks || bytes + capacity > kMaxBytes) return false;
  blocks.push_back(raw);
  bytes += capacity;
  return true;
}

}  // namespace block_cache

void* host_malloc(void*, size_t size) {
  if (size == 0) size = 1;
  if (size > SIZE_MAX - block_cache::kHeader) return nullptr;
  void* raw = size >= block_cache::kMinCached ? block_cache::take(size) : nullptr;
  if (raw == nullptr) {
    raw = std::malloc(block_cache::kHeader + size);
    if (raw == nullptr) return nullptr;
    std::memcpy(raw, &size, sizeof size);
  }
  return static_cast<uint8_t*>(raw) + block_cache::kHeader;
}

void host_free(void*, void* ptr) {
  if (ptr == nullptr) return;
  void* raw = static_cast<uint8_t*>(ptr) - block_cache::kHeader;
  if (!block_cache::keep(raw)) std::free(raw);
}

void host_notify_abort(void* context) {
  static_cast<oe_enclave_t*>(context)->aborting.store(true);
}

bool copy_fd(int from, int to) {
  std::vector<char> buffer(1 << 20);
  for (;;) {
    ssize_t n = read(from, buffer.data(), buffer.size());
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(to, buffer.data() + done, static_cast<size_t>(n - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      done += w;
    }
  }
}

// An unlinked temporary file, for systems where memfd cannot be mapped executable.
int make_temp_copy_fd() {
  const char* dir = std::getenv("TMPDIR");
  std::string pattern = std::string(dir && *dir ? dir : "/tmp") + "/veil-enclave-XXXXXX";
  std::vector<char> path(pattern.begin(), pattern.end());
  path.push_back('\0');
  int fd = mkostemp(path.data(), O_CLOEXEC);
  if (fd >= 0) unlink(path.data());
  return fd;
}

// Loads a private copy of the image, so that each enclave gets its own instance of
// the image's globals (dlopen of the same path would share one instance).
oe_result_t load_private_copy(const char* path, oe_enclave_t* enclave) {
  int source = open(path, O_RDONLY | O_CLOEXEC);
  if (source < 0) return (errno == ENOENT || errno == ENOTDIR) ? OE_NOT_FOUND : OE_FAILURE;
  struct stat st {};
  if (fstat(source, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(source);
    return OE_INVALID_PARAMETER;
  }

  std::string error;
  for (int attempt = 0; attempt < 2 && enclave->handle == nullptr; ++attempt) {
    int copy = attempt == 0 ? memfd_create("veil-enclave", MFD_CLOEXEC) : make_temp_copy_fd();
    if (copy < 0) continue;
    if (lseek(source, 0, SEEK_SET) != 0 || !copy_fd(source, copy)) {
      close(copy);
      continue;
    }
    std::string name = "/proc/self/fd/" + std::to_string(copy);
    dlerror();
    void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      error = why ? why : "unknown dlopen error";
      close(copy);
      continue;
    }
    enclave->handle = handle;
    enclave->image_fd = copy;
    enclave->load_name = name;
  }
  close(source);
  if (enclave->handle == nullptr) {
    // The host is untrusted and may log; without this line a missing library or a
    // non-ELF file would be indistinguishable from a bad image.
    std::fprintf(stderr, "veil virtual enclave: cannot load '%s': %s\n", path,
                 error.empty() ? "cannot copy the image" : error.c_str());
    return OE_UNSUPPORTED_ENCLAVE_IMAGE;
  }
  return OE_OK;
}

void unload(oe_enclave_t* enclave) {
  if (enclave->exports != nullptr && enclave->exports->finalize != nullptr)
    enclave->exports->finalize();
  if (enclave->handle != nullptr) {
    dlclose(enclave->handle);
    // If the loader kept the object (it may refuse to unload some objects), keep
    // its file descriptor too: closing it would free the name for a later enclave
    // and the loader would hand that enclave this stale instance.
    void* still = dlopen(enclave->load_name.c_str(), RTLD_NOW | RTLD_NOLOAD);
    if (still != nullptr) {
      dlclose(still);
      enclave->image_fd = -1;
    }
  }
  if (enclave->image_fd >= 0) close(enclave->image_fd);
  if (enclave->arena != nullptr) munmap(enclave->arena, enclave->arena_size);
  delete enclave;
}

bool config_is_sane(const veil_venclave_config_t& c) {
  return c.num_tcs >= 1 && c.num_heap_pages >= 1 && c.debug <= 1 &&
         c.num_heap_pages <= kMaxArenaBytes / OE_PAGE_SIZE;
}

}  // namespace
}  // namespace veil

using veil::registry;

extern "C" oe_result_t oe_create_enclave(const char* path, oe_enclave_type_t type, uint32_t flags,
                                         const oe_enclave_setting_t* settings,
                                         uint32_t setting_count, const oe_ocall_func_t* ocall_table,
                                         uint32_t ocall_count,
                                         const oe_ecall_info_t* ecall_name_table,
                                         uint32_t ecall_count, oe_enclave_t** enclave_out) {
  if (enclave_out != nullptr) *enclave_out = nullptr;
  if (path == nullptr || enclave_out == nullptr) return OE_INVALID_PARAMETER;
  if (type != OE_ENCLAVE_TYPE_AUTO && type != OE_ENCLAVE_TYPE_SGX) return OE_INVALID_PARAMETER;
  if ((flags & OE_ENCLAVE_FLAG_RESERVED) != 0) return OE_INVALID_PARAMETER;
  if ((ocall_count > 0 && ocall_table == nullptr) ||
      (ecall_count > 0 && ecall_name_table == nullptr))
    return OE_INVALID_PARAMETER;
  if ((settings == nullptr) != (setting_count == 0)) return OE_INVALID_PARAMETER;
  // Simulation mode belongs to the SDK; no virtual-backend setting exists.
  if ((flags & OE_ENCLAVE_FLAG_SIMULATE) != 0 || setting_count > 0) return OE_UNSUPPORTED;

  auto* enclave = new (std::nothrow) _oe_enclave();
  if (enclave == nullptr) return OE_OUT_OF_MEMORY;

  oe_result_t result = veil::load_private_copy(path, enclave);
  if (result != OE_OK) {
    veil::unload(enclave);
    return result;
  }

  dlerror();
  auto entry = reinterpret_cast<veil_venclave_entry_t>(
      dlsym(enclave->handle, VEIL_VENCLAVE_ENTRY_SYMBOL));
  const veil_venclave_exports_t* exports =
      entry != nullptr ? entry(VEIL_VENCLAVE_ABI_VERSION) : nullptr;
  if (exports == nullptr || exports->abi_version != VEIL_VENCLAVE_ABI_VERSION ||
      exports->struct_size < sizeof(veil_venclave_exports_t) || exports->config == nullptr ||
      exports->initialize == nullptr || exports->call_enclave == nullptr ||
      exports->finalize == nullptr || exports->ecall_name == nullptr ||
      !veil::config_is_sane(*exports->config)) {
    veil::unload(enclave);
    return OE_UNSUPPORTED_ENCLAVE_IMAGE;
  }
  enclave->config = *exports->config;
  if ((flags & OE_ENCLAVE_FLAG_DEBUG) != 0 && enclave->config.debug == 0) {
    veil::unload(enclave);
    return OE_DEBUG_DOWNGRADE;
  }

  enclave->arena_size = static_cast<size_t>(enclave->config.num_heap_pages * OE_PAGE_SIZE);
  void* arena = mmap(nullptr, enclave->arena_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (arena == MAP_FAILED) {
    veil::unload(enclave);
    return OE_OUT_OF_MEMORY;
  }
  enclave->arena = arena;

  enclave->ocalls.assign(ocall_table, ocall_table + ocall_count);
  enclave->ecall_map.assign(ecall_count, veil::kNoEcall);
  for (uint32_t i = 0; i < ecall_count; ++i) {
    const char* wanted = ecall_name_table[i].name;
    for (uint32_t j = 0; wanted != nullptr && j < exports->ecall_count; ++j) {
      const char* name = exports->ecall_name(j);
      if (name != nullptr && std::strcmp(name, wanted) == 0) {
        enclave->ecall_map[i] = j;
        break;
      }
    }
  }

  veil_vhost_imports_t imports{};
  imports.abi_version = VEIL_VENCLAVE_ABI_VERSION;
  imports.struct_size = sizeof(imports);
  imports.context = enclave;
  imports.arena_base = enclave->arena;
  imports.arena_size = enclave->arena_size;
  imports.call_host = veil::host_call_host;
  imports.host_malloc = veil::host_malloc;
  imports.host_free = veil::host_free;
  imports.notify_abort = veil::host_notify_abort;
  result = exports->initialize(&imports);
  if (result != OE_OK) {
    veil::unload(enclave);
    return result;
  }
  enclave->exports = exports;

  {
    std::lock_guard<std::mutex> lock(registry().mutex);
    registry().live.insert(enclave);
  }
  *enclave_out = enclave;
  return OE_OK;
}

extern "C" oe_result_t oe_terminate_enclave(oe_enclave_t* enclave) {
  if (enclave == nullptr) return OE_INVALID_PARAMETER;
  {
    std::unique_lock<std::mutex> lock(registry().mutex);
    if (registry().live.count(enclave) == 0 || enclave->terminating)
      return OE_INVALID_PARAMETER;
    // Waiting below for this thread's own ecall to finish would never end.
    if (veil::in_ocall_of(enclave)) return OE_BUSY;
    enclave->terminating = true;
    registry().live.erase(enclave);
    registry().idle.wait(lock, [enclave] { return enclave->active == 0; });
  }
  veil::unload(enclave);
  return OE_OK;
}

extern "C" oe_result_t oe_call_enclave_function(oe_enclave_t* enclave, uint32_t function_id,
                                                const void* input_buffer,
                                                size_t input_buffer_size, void* output_buffer,
                                                size_t output_buffer_size,
                                                size_t* output_bytes_written) {
  if (enclave == nullptr) return OE_INVALID_PARAMETER;
  uint32_t index = veil::kNoEcall;
  {
    std::lock_guard<std::mutex> lock(registry().mutex);
    if (registry().live.count(enclave) == 0 || enclave->terminating)
      return OE_INVALID_PARAMETER;
    if (enclave->aborting.load()) return OE_ENCLAVE_ABORTING;
    if (veil::in_ocall_of(enclave)) return OE_REENTRANT_ECALL;
    if (function_id < enclave->ecall_map.size()) index = enclave->ecall_map[function_id];
    if (index == veil::kNoEcall) return OE_NOT_FOUND;
    if (enclave->active >= enclave->config.num_tcs) return OE_OUT_OF_THREADS;
    ++enclave->active;
  }
  oe_result_t result =
      enclave->exports->call_enclave(index, input_buffer, input_buffer_size, output_buffer,
                                     output_buffer_size, output_bytes_written);
  if (result == OE_ENCLAVE_ABORTING) enclave->aborting.store(true);
  {
    std::lock_guard<std::mutex> lock(registry().mutex);
    --enclave->active;
  }
  registry().idle.notify_all();
  return result;
}

extern "C" oe_result_t veil_virtual_get_enclave_info(oe_enclave_t* enclave,
                                                     veil_virtual_enclave_info_t* info) {
  if (enclave == nullptr || info == nullptr) return OE_INVALID_PARAMETER;
  std::lock_guard<std::mutex> lock(registry().mutex);
  if (registry().live.count(enclave) == 0 || enclave->terminating) return OE_INVALID_PARAMETER;
  info->debug = enclave->config.debug;
  info->num_tcs = enclave->config.num_tcs;
  info->num_heap_pages = enclave->config.num_heap_pages;
  info->num_stack_pages = enclave->config.num_stack_pages;
  info->product_id = enclave->config.product_id;
  info->security_version = enclave->config.security_version;
  info->arena_base = enclave->arena;
  info->arena_size = enclave->arena_size;
  return OE_OK;
}
