#pragma once
// The small verify-training configuration the boundary tests, the bench-image tests
// and the fuzz harnesses share: two layers at the default formats, in wire form.
// Include after the generated bridge header that declares veil_train_config_t.
#include <cstdint>

namespace veil_test {

inline veil_train_config_t small_wire_config(uint32_t max_batch, uint64_t seed = 1) {
  veil_train_config_t c{};
  c.layer_count = 2;
  c.loss = VEIL_LOSS_CROSS_ENTROPY;
  c.frac_act = 8;
  c.frac_grad = 12;
  c.lr_exp = 3;
  c.max_batch = max_batch;
  c.seed = seed;
  c.act_clip = 64;
  c.grad_clip = 8;
  c.weight_max = 8;
  return c;
}

}  // namespace veil_test
