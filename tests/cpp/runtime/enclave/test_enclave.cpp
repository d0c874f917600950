// The runtime test enclave: each ecall exercises one marshalling path and reports
// what it saw, so the host-side tests can assert on it.
#include <openenclave/attestation/attester.h>
#include <openenclave/edger8r/enclave.h>
#include <openenclave/enclave.h>

#include <cstring>
#include <stdexcept>

#include "runtime_test_t.h"

int ecall_sum(const int32_t* values, size_t n) {
  if (values == nullptr) return -1;
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) total += values[i];
  return static_cast<int>(total);
}

void ecall_nop(void) {}

// Returns a bit per range-check fact that holds (all five: 0x1f).
int ecall_probe_in(const uint8_t* data, size_t len, uint64_t* seen_address, int* within,
                   int* outside) {
  *seen_address = reinterpret_cast<uint64_t>(data);
  *within = oe_is_within_enclave(data, len) ? 1 : 0;
  *outside = oe_is_outside_enclave(data, len) ? 1 : 0;
  // The enclave owns this copy: writing to it must not reach the host's buffer.
  std::memset(const_cast<uint8_t*>(data), 0, len);
  int facts = 0;
  // [out] parameters point into the arena too.
  if (oe_is_within_enclave(seen_address, sizeof(*seen_address)) &&
      oe_is_within_enclave(within, sizeof(*within)))
    facts |= 1;
  // The enclave's own heap is process memory: outside the arena.
  auto* heap = new uint8_t[64];
  if (!oe_is_within_enclave(heap, 64) && oe_is_outside_enclave(heap, 64)) facts |= 2;
  delete[] heap;
  // So is its stack.
  uint8_t local[16];
  if (!oe_is_within_enclave(local, sizeof(local)) && oe_is_outside_enclave(local, sizeof(local)))
    facts |= 4;
  // NULL is neither inside nor outside.
  if (!oe_is_within_enclave(nullptr, 1) && !oe_is_outside_enclave(nullptr, 1)) facts |= 8;
  // A range that wraps around the address space is neither.
  if (!oe_is_within_enclave(data, SIZE_MAX) && !oe_is_outside_enclave(data, SIZE_MAX))
    facts |= 16;
  return facts;
}

uint32_t ecall_fill(uint32_t* out, size_t n, uint32_t seed) {
  uint32_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    if (out[i] != 0) return UINT32_MAX;  // [out] buffers arrive zeroed
    out[i] = seed + static_cast<uint32_t>(i);
    sum += out[i];
  }
  return sum;
}

int ecall_scale(double* values, int n, double factor) {
  for (int i = 0; i < n; ++i) values[i] *= factor;
  return n;
}

size_t ecall_strlen(const char* text) { return text ? std::strlen(text) : SIZE_MAX; }

int ecall_upper(char* text) {
  int changed = 0;
  for (char* p = text; *p; ++p) {
    if (*p >= 'a' && *p <= 'z') {
      *p = static_cast<char>(*p - 'a' + 'A');
      ++changed;
    }
  }
  return changed;
}

uint64_t ecall_mix_key(const uint8_t key[16], uint8_t digest[16], int32_t grid[2][3]) {
  uint64_t sum = 0;
  for (int i = 0; i < 16; ++i) {
    digest[i] = static_cast<uint8_t>(key[i] ^ 0x5a);
    sum += key[i];
  }
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) grid[r][c] = grid[r][c] * 10 + r;
  return sum;
}

rt_color ecall_move(const struct rt_point* p, rt_point delta, struct rt_point* moved,
                    enum rt_color color, rt_segment* segment) {
  moved->x = p->x + delta.x;
  moved->y = p->y + delta.y;
  for (int i = 0; i < 4; ++i) moved->tag[i] = static_cast<uint8_t>(p->tag[i] + delta.tag[i]);
  moved->color = color;
  segment->stop = *moved;
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) segment->weights[r][c] += 0.5;
  return color == RT_RED ? RT_GREEN : RT_CYAN;
}

int64_t ecall_bytes(const void* blob, uint16_t k, void* tail) {
  const auto* bytes = static_cast<const uint8_t*>(blob);
  int64_t sum = 0;
  for (size_t i = 0; i < k; ++i) sum += bytes[i];
  std::memcpy(tail, "tailtail", 8);
  return sum;
}

bool ecall_is_even(unsigned long long value, short small, char c, float f) {
  return value % 2 == 0 && small == -7 && c == 'q' && f == 1.5f;
}

int ecall_ocall_roundtrip(int32_t seed) {
  int32_t in_values[4];
  int32_t out_values[4];
  int32_t inout_values[4];
  for (int i = 0; i < 4; ++i) {
    in_values[i] = seed + i;
    out_values[i] = 0x7f7f7f7f;
    inout_values[i] = i * 10;
  }
  char note[8] = "abc";
  int ret = -1;
  oe_result_t r = ocall_transform(&ret, in_values, out_values, inout_values, 4, "roundtrip",
                                  note, reinterpret_cast<uint64_t>(in_values));
  if (r != OE_OK) return 100 + static_cast<int>(r);
  if (ret != 4) return 2;
  for (int i = 0; i < 4; ++i) {
    if (in_values[i] != seed + i) return 3;  // the host wrote only to its own copy
    if (out_values[i] != (seed + i) * 2) return 4;
    if (inout_values[i] != i * 10 + 1) return 5;
  }
  if (std::strcmp(note, "ABC") != 0) return 6;

  // A failing ocall leaves the enclave's [out] and [in, out] memory untouched.
  uint8_t blob[16] = {0xEE};
  rt_point p;
  std::memset(&p, 0x33, sizeof(p));
  uint8_t shared[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  r = ocall_record(blob, &p, shared);
  if (r != OE_UNEXPECTED) return 7;
  const auto* raw = reinterpret_cast<const uint8_t*>(&p);
  for (size_t i = 0; i < sizeof(p); ++i)
    if (raw[i] != 0x33) return 8;
  if (shared[0] != 1 || shared[7] != 8) return 9;

  // The same ocall succeeding: results arrive.
  blob[0] = 0x01;
  r = ocall_record(blob, &p, shared);
  if (r != OE_OK) return 10;
  if (p.x != 1 || p.y != 16 || p.color != RT_BLUE) return 11;
  if (shared[0] != 2 || shared[7] != 9) return 12;

  // Unknown ocall ids are refused by the host runtime.
  uint8_t in[16] = {0};
  uint8_t out[16];
  size_t written = 1;
  r = oe_call_host_function(9999, in, sizeof(in), out, sizeof(out), &written);
  if (r != OE_NOT_FOUND || written != 0) return 13;
  return 0;
}

int ecall_block_in_ocall(void) {
  oe_result_t r = ocall_block();
  return r == OE_OK ? 0 : static_cast<int>(r);
}

int ecall_try_reenter(void) {
  int host_saw = -1;
  oe_result_t r = ocall_reenter(&host_saw);
  return r == OE_OK ? host_saw : -1000 - static_cast<int>(r);
}

void ecall_write_then_abort(uint8_t* out, size_t n) {
  std::memset(out, 0xAB, n);  // produced in enclave memory, never copied back
  oe_abort();
}

int ecall_throw(int x) {
  if (x > 0) throw std::runtime_error("escapes the ecall");
  return x;
}

int ecall_platform(int32_t* seal_by_policy, int32_t* seal_v2, int32_t* report,
                   int32_t* evidence, uint8_t* random) {
  uint8_t* key = reinterpret_cast<uint8_t*>(1);
  size_t key_size = 99;
  *seal_by_policy = oe_get_seal_key_by_policy(OE_SEAL_POLICY_UNIQUE, &key, &key_size, nullptr,
                                              nullptr);
  if (key != nullptr || key_size != 0) return 1;
  const uint8_t info[4] = {1, 2, 3, 4};
  *seal_v2 = oe_get_seal_key(info, sizeof(info), &key, &key_size);
  uint8_t* report_buffer = nullptr;
  size_t report_size = 0;
  *report = oe_get_report(0, nullptr, 0, nullptr, 0, &report_buffer, &report_size);
  oe_uuid_t format{};
  uint8_t* ev = nullptr;
  size_t ev_size = 0;
  *evidence = oe_get_evidence(&format, 0, nullptr, 0, nullptr, 0, &ev, &ev_size, nullptr, nullptr);
  if (oe_random(random, 32) != OE_OK) return 2;
  return 0;
}
