#include "group.h"

#include <cstring>

#include "codec.h"
#include "platform.h"
#include "veil_t.h"

namespace veil::enclave {

bool Group::derive(const uint8_t run_key[kSealKeyBytes], Derived label, uint8_t* out, size_t len) {
  uint8_t iv[kSealIvBytes] = {'v', 'e', 'i', 'l', '-', 'r', 'u', 'n'};
  put_le(iv + 8, static_cast<uint32_t>(label), 4);
  uint8_t zeros[64] = {0};
  uint8_t tag[kSealTagBytes];
  return len <= sizeof zeros && gcm_encrypt(run_key, iv, nullptr, 0, zeros, len, out, tag);
}

Group::Group(uint32_t worker, uint32_t workers, const uint8_t exchange_key[kSealKeyBytes])
    : worker_(worker), workers_(workers) {
  std::memcpy(key_, exchange_key, sizeof key_);
}

Group::~Group() { wipe(key_, sizeof key_); }

// Binds a message to its purpose, step, sender, the size of the run and (for
// step messages) the sessions that joined it, so that none can be moved to
// another place, another step, another worker's slot or another run's session.
std::vector<uint8_t> Group::associated_data(ExchangeKind kind, uint64_t step,
                                            uint32_t sender) const {
  static const char kTag[8] = {'v', 'e', 'i', 'l', 'x', 'c', 'h', '1'};
  std::vector<uint8_t> ad;
  Encoder e(&ad);
  e.bytes(kTag, sizeof kTag);
  e.u32(static_cast<uint32_t>(kind));
  e.u64(step);
  e.u32(sender);
  e.u32(workers_);
  if (kind == ExchangeKind::step) e.bytes(epoch_.data(), epoch_.size());
  return ad;
}

int Group::exchange(Session& session, const char* where, ExchangeKind kind, uint64_t step,
                    const std::vector<uint8_t>& mine,
                    std::vector<std::vector<uint8_t>>* all) const {
  all->assign(workers_, {});
  (*all)[worker_] = mine;
  if (workers_ == 1) return VEIL_OK;
  const size_t size = mine.size() + kSealOverhead;
  std::vector<uint8_t> sealed(size);
  std::vector<uint8_t> ad = associated_data(kind, step, worker_);
  if (!seal(key_, ad.data(), ad.size(), mine.data(), mine.size(), sealed.data()))
    return session.fail(VEIL_ERR_INTERNAL, "%s: sealing this worker's message failed", where);
  std::vector<uint8_t> received(size * workers_);
  int status = VEIL_OK;
  oe_result_t r = ocall_exchange(&status, session.id(), sealed.data(), size, received.data(),
                                 received.size());
  if (r != OE_OK || status != VEIL_OK)
    return session.fail(VEIL_ERR_DEVICE, "%s: the exchange with the other workers failed (%s); "
                        "nothing of the step was applied", where,
                        r != OE_OK ? oe_result_str(r) : "the host reported an error");
  for (uint32_t k = 0; k < workers_; ++k) {
    if (k == worker_) continue;
    ad = associated_data(kind, step, k);
    (*all)[k].resize(mine.size());
    if (!unseal(key_, ad.data(), ad.size(), received.data() + k * size, size, (*all)[k].data())) {
      return session.fail(VEIL_ERR_VERIFICATION,
                          "integrity check failed: %s, phase exchange: the message from worker %u "
                          "does not authenticate (altered, replayed, from another step or run, or "
                          "sealed under another run key)", where, k);
    }
  }
  return VEIL_OK;
}

}  // namespace veil::enclave
