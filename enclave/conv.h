#pragma once
// Convolution and pooling around the dense protocols (docs/design.md §4.4). A
// convolution is the dense product im2col(X) M on B * positions rows, with the
// kernel as a (k^2 C_in + 1) x C_out matrix, bias row last; a dense layer after a
// convolution takes its flattened output, which is im2col with one window over the
// whole tensor. The products, their checks, the fingerprints and the updates are
// the dense layer's; this file only lays operands out, pools, and carries
// gradients back through both. Everything here is O(B * positions * (window + C_out)).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "math/activation.h"
#include "math/fixed_point.h"
#include "session.h"
#include "veil_t.h"

namespace veil::enclave::conv {

/** A layer's geometry: how its input is gathered and how its output is pooled. */
struct Shape {
  bool windowed = false;  // input gathered by windows (a conv, or a dense after one)
  // Input tensor (channels, height, width) and window. Layer 0 reads the batch
  // as (C, H, W); any other layer reads the layer below's pooled output, stored
  // position-major (H, W, C) as the device returns rows of output channels.
  uint32_t c = 0, h = 0, w = 0, kh = 1, kw = 1, stride = 1, pad = 0;
  uint32_t oh = 1, ow = 1;  // output positions per example (1 x 1 for dense)
  int32_t pool = VEIL_POOL_NONE;
  uint32_t ps = 1, ph = 1, pw = 1;  // pooled output: ph = oh / ps (floor)
  size_t positions() const { return size_t{oh} * ow; }
  size_t tensor_size() const { return size_t{c} * h * w; }  // input values per example
  size_t pooled() const { return size_t{ph} * pw; }
};

/**
 * Check every geometry field of a model whose widths and codes are otherwise
 * valid; on failure the session's error names the layer and the field.
 */
int validate(Session& session, const veil_layer_spec_t* layers, size_t count);

/** Input features per example of a validated model: C H W for a conv first layer. */
size_t input_features(const veil_layer_spec_t& first);

/** The geometry of layer i of a validated model. */
Shape shape_of(const veil_layer_spec_t* layers, size_t i);

/**
 * Write the layer's operand: one row per (example, output position), one column
 * per (channel, window row, window column), zeros for padding, then the bias
 * entry `one`. src holds integers (quantized activations); first_layer selects
 * the (C, H, W) layout of the batch instead of the pooled (H, W, C) one.
 */
template <typename T>
void gather(const Shape& s, bool first_layer, const double* src, size_t batch, T one, T* out);

/**
 * The adjoint of gather for a layer above the first: add each operand
 * column's gradient (cols, leading dimension ld, bias column ignored) into the
 * pooled (H, W, C) gradient of the layer below, which it zeroes first.
 */
void scatter(const Shape& s, const double* cols, size_t ld, size_t batch, double* dst);

/**
 * Pool a layer's real output, (batch, oh, ow, C) with C = channels, into
 * (batch, ph, pw, C); for max pooling arg gets each window's first argmax.
 */
void pool(const Shape& s, uint32_t channels, const double* in, size_t batch, double* out,
          uint8_t* arg);

/** The adjoint of pool: the gradient of the unpooled output (zeroed first). */
void unpool(const Shape& s, uint32_t channels, const double* d_out, const uint8_t* arg,
            size_t batch, double* d_in);

/**
 * A windowed first layer's operand from the batch x (N x C H W real values):
 * quantized into `tensor` (grown as needed), then gathered. Returns the values
 * clipped; *stats gets quantize()'s (its col_l1 must be null).
 */
template <typename T>
uint64_t first_operand(const Shape& s, const double* x, size_t batch, math::FixedFormat fmt,
                       std::vector<double>* tensor, math::OperandStats* stats, T* out);

/**
 * The operand of the windowed layer above from a layer's checked real z (rows x
 * m, rows = batch positions): the activation, pooling (arg: each max-pooled
 * output's argmax), one rounding to fmt, the gather. real and tensor are work
 * buffers, grown as needed. Returns the values clipped.
 */
template <typename T>
uint64_t next_operand(const Shape& s, const Shape& next, math::Activation act, uint32_t m,
                      const double* z, size_t batch, math::FixedFormat fmt,
                      std::vector<double>* real, std::vector<double>* tensor, uint8_t* arg,
                      T* out);

}  // namespace veil::enclave::conv
