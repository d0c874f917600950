// Verify-mode training as one worker of a data-parallel run (docs/design.md
// §4.6): each worker checks its own shard's products as in a lone session; the
// update is the sum of every worker's A_i^T dZ_i, which the devices all-reduce
// and apply, and every enclave subtracts the sum of every worker's fingerprint
// deltas, received sealed, so that all hold the same fingerprints and the next
// check on any worker catches a device that applied anything else.
#include <algorithm>
#include <cstdio>

#include "codec.h"
#include "exactness.h"
#include "math/field.h"
#include "platform.h"
#include "training.h"

namespace veil::enclave {

using Field = math::FieldQ;

int Training::join(Session& session, const uint8_t* run_key, size_t key_len, uint32_t worker,
                   uint32_t workers) {
  call_name_ = "join";
  if (key_len != kSealKeyBytes)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "join: a run key is %zu bytes, got %zu",
                        kSealKeyBytes, key_len);
  if (workers < 1 || workers > VEIL_LIMIT_MAX_WORKERS || worker >= workers)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "join: worker %u of %u: need 1 <= workers <= %d and worker < workers",
                        worker, workers, VEIL_LIMIT_MAX_WORKERS);
  if (group_)
    return session.fail(VEIL_ERR_ORDER, "join: this session already is worker %u of %u",
                        group_->worker(), group_->workers());
  // A fresh session's weights must still be M_0 for its fingerprints to be redone.
  if (step_ != first_step_ || (!restored_ && lr_exp_ != config_.lr_exp))
    return session.fail(VEIL_ERR_ORDER, "join: only before the session's first step or halving");
  math::PrgKey secret_key;
  uint8_t exchange_key[kSealKeyBytes];
  if (!Group::derive(run_key, Group::Derived::secrets, secret_key.bytes, sizeof secret_key.bytes) ||
      !Group::derive(run_key, Group::Derived::exchange, exchange_key, sizeof exchange_key))
    return session.fail(VEIL_ERR_INTERNAL, "join: deriving the run's keys failed");
  auto group = std::make_unique<Group>(worker, workers, exchange_key);
  wipe(exchange_key, sizeof exchange_key);
  int rc = VEIL_OK;
  if (restored_) {
    // The checkpoint's secrets must be this run's: derived from the same key.
    std::vector<uint64_t> s, t;
    for (uint32_t l = 0; rc == VEIL_OK && l < layers_.size(); ++l) {
      if (!draw_check_vectors(secret_key, l, &s, &t))
        rc = session.fail(VEIL_ERR_INTERNAL, "the enclave's CSPRNG failed");
      else if (s != layers_[l].s || t != layers_[l].t)
        rc = session.fail(VEIL_ERR_INVALID_ARGUMENT,
                          "join: the checkpoint was sealed by another run (its check vectors do "
                          "not derive from this run key)");
      wipe(s);
      wipe(t);
    }
  }
  // Every worker's random nonce, in worker order, binds the step messages to
  // these sessions: a message from an earlier attempt at the run cannot be replayed.
  std::vector<uint8_t> nonce(Group::kNonceBytes);
  if (rc == VEIL_OK && !secure_random(nonce.data(), nonce.size()))
    rc = session.fail(VEIL_ERR_INTERNAL, "the platform's random source failed");
  std::vector<std::vector<uint8_t>> nonces;
  if (rc == VEIL_OK) rc = group->exchange(session, "join", ExchangeKind::join, step_, nonce, &nonces);
  if (rc == VEIL_OK) {
    std::vector<uint8_t> epoch;
    for (const std::vector<uint8_t>& n : nonces) epoch.insert(epoch.end(), n.begin(), n.end());
    group->set_epoch(std::move(epoch));
    // Nothing can fail from here but the CSPRNG, which ends the session.
    if (!restored_) rc = start_layers(session, secret_key, false);
    if (rc != VEIL_OK) session.abort();
  }
  wipe(secret_key.bytes, sizeof secret_key.bytes);
  if (rc == VEIL_OK) group_ = std::move(group);
  return rc;
}

int Training::share_updates(Session& session, size_t batch, double* growth) {
  std::vector<uint8_t> mine;
  Encoder e(&mine);
  e.u64(batch);
  for (uint32_t l = 0; l < layers_.size(); ++l) {
    e.f64(growth[l]);
    e.u64s(layers_[l].dv);
    e.u64s(layers_[l].dw);
  }
  char where[48];
  std::snprintf(where, sizeof where, "step %llu", static_cast<unsigned long long>(step_ + 1));
  std::vector<std::vector<uint8_t>> all;
  int rc = group_->exchange(session, where, ExchangeKind::step, step_ + 1, mine, &all);
  if (rc != VEIL_OK) return rc;
  // Sums in worker order, so that every worker gets the same bits.
  uint64_t rows = 0;
  for (uint32_t l = 0; l < layers_.size(); ++l) {
    growth[l] = 0;
    std::fill(layers_[l].dv.begin(), layers_[l].dv.end(), 0);
    std::fill(layers_[l].dw.begin(), layers_[l].dw.end(), 0);
  }
  // Every message opened under the run's key was sealed by an enclave of the
  // run, with this layout: its values are in range.
  for (const std::vector<uint8_t>& message : all) {
    Decoder d(message.data(), message.size());
    rows += d.u64();
    for (uint32_t l = 0; l < layers_.size(); ++l) {
      growth[l] += d.f64();
      for (std::vector<uint64_t>* delta : {&layers_[l].dv, &layers_[l].dw})
        for (uint64_t& x : *delta) x = Field::add(x, d.u64());
    }
  }
  wipe(mine);
  if (rows > config_.max_batch)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "train_step: the workers' batches add up to %llu rows; max_batch is %u",
                        static_cast<unsigned long long>(rows), config_.max_batch);
  for (uint32_t l = 0; l < layers_.size(); ++l)
    if (layers_[l].device_max + growth[l] >= kExact)
      return exactness_refusal(session, l, "update", layers_[l].device_max + growth[l]);
  return VEIL_OK;
}

}  // namespace veil::enclave
