#include "conv.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace veil::enclave::conv {
namespace {

constexpr uint32_t kMaxSide = 4096;   // input height and width
constexpr uint32_t kMaxKernel = 64;   // window side and stride
constexpr uint32_t kMaxPool = 16;     // pooling window; its argmax fits a byte

uint32_t out_side(uint32_t in, uint32_t k, uint32_t stride, uint32_t pad) {
  return (in + 2 * pad - k) / stride + 1;
}

// Geometry fields a dense layer must leave 0.
int check_dense(Session& session, size_t i, const veil_layer_spec_t& l) {
  const uint32_t fields[8] = {l.channels, l.height, l.width, l.kernel,
                              l.stride,   l.padding, static_cast<uint32_t>(l.pool), l.pool_size};
  const char* names[8] = {"channels", "height", "width", "kernel",
                          "stride", "padding", "pool", "pool_size"};
  for (int f = 0; f < 8; ++f)
    if (fields[f] != 0)
      return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                          "layer %zu: a dense layer's %s must be 0, got %u (geometry and pooling "
                          "belong to convolutions)",
                          i, names[f], fields[f]);
  return VEIL_OK;
}

int check_conv(Session& session, size_t i, const veil_layer_spec_t& l) {
  if (l.channels == 0 || l.height == 0 || l.width == 0 || l.height > kMaxSide ||
      l.width > kMaxSide)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "layer %zu: input %u x %u x %u; channels must be >= 1 and height and "
                        "width in [1, %u]",
                        i, l.channels, l.height, l.width, kMaxSide);
  if (l.kernel == 0 || l.kernel > kMaxKernel || l.stride == 0 || l.stride > kMaxKernel ||
      l.padding >= l.kernel)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "layer %zu: kernel=%u stride=%u padding=%u; kernel and stride must be in "
                        "[1, %u] and padding below kernel",
                        i, l.kernel, l.stride, l.padding, kMaxKernel);
  if (l.height + 2 * l.padding < l.kernel || l.width + 2 * l.padding < l.kernel)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "layer %zu: a %u x %u kernel does not fit the padded %u x %u input", i,
                        l.kernel, l.kernel, l.height + 2 * l.padding, l.width + 2 * l.padding);
  if (static_cast<uint64_t>(l.kernel) * l.kernel * l.channels != l.inputs)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "layer %zu: inputs=%u but a %u x %u kernel over %u channels has %u", i,
                        l.inputs, l.kernel, l.kernel, l.channels, l.kernel * l.kernel * l.channels);
  const uint32_t oh = out_side(l.height, l.kernel, l.stride, l.padding);
  const uint32_t ow = out_side(l.width, l.kernel, l.stride, l.padding);
  if (l.pool == VEIL_POOL_NONE && l.pool_size != 0)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "layer %zu: pool_size=%u without pooling", i,
                        l.pool_size);
  if (l.pool != VEIL_POOL_NONE && l.pool != VEIL_POOL_MAX && l.pool != VEIL_POOL_AVG)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "layer %zu: unknown pool %d (0 none, 1 max, 2 avg)",
                        i, l.pool);
  if (l.pool != VEIL_POOL_NONE && (l.pool_size < 2 || l.pool_size > kMaxPool ||
                                   l.pool_size > oh || l.pool_size > ow))
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "layer %zu: pool_size=%u must be in [2, %u] and fit the %u x %u output", i,
                        l.pool_size, kMaxPool, oh, ow);
  return VEIL_OK;
}

// How layer i's input must match the layer below's output.
int check_chain(Session& session, size_t i, const veil_layer_spec_t* layers) {
  const veil_layer_spec_t& l = layers[i];
  const veil_layer_spec_t& below = layers[i - 1];
  const bool conv = l.kind == VEIL_LAYER_KIND_CONV2D;
  if (below.kind != VEIL_LAYER_KIND_CONV2D) {
    if (conv)
      return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                          "layer %zu: a convolution must be the first layer or follow another "
                          "convolution",
                          i);
    if (below.outputs != l.inputs)
      return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                          "layer %zu takes %u inputs but layer %zu gives %u outputs", i, l.inputs,
                          i - 1, below.outputs);
    return VEIL_OK;
  }
  const Shape s = shape_of(layers, i - 1);
  const uint64_t flat = uint64_t{below.outputs} * s.ph * s.pw;
  if (conv ? (l.channels != below.outputs || l.height != s.ph || l.width != s.pw)
           : flat != l.inputs)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "layer %zu: layer %zu gives %u x %u x %u (channels x height x width) but "
                        "layer %zu takes %u x %u x %u",
                        i, i - 1, below.outputs, s.ph, s.pw, i, conv ? l.channels : l.inputs,
                        conv ? l.height : 1, conv ? l.width : 1);
  return VEIL_OK;
}

}  // namespace

int validate(Session& session, const veil_layer_spec_t* layers, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const veil_layer_spec_t& l = layers[i];
    if (l.kind != VEIL_LAYER_KIND_DENSE && l.kind != VEIL_LAYER_KIND_CONV2D)
      return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                          "layer %zu: unknown kind %d (0 dense, 1 conv2d)", i, l.kind);
    const bool conv = l.kind == VEIL_LAYER_KIND_CONV2D;
    if (conv && i + 1 == count)
      return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                          "layer %zu: the last layer must be dense (it gives the classes)", i);
    int rc = conv ? check_conv(session, i, l) : check_dense(session, i, l);
    if (rc == VEIL_OK && i > 0) rc = check_chain(session, i, layers);
    if (rc != VEIL_OK) return rc;
  }
  return VEIL_OK;
}

size_t input_features(const veil_layer_spec_t& first) {
  if (first.kind != VEIL_LAYER_KIND_CONV2D) return first.inputs;
  return size_t{first.channels} * first.height * first.width;
}

Shape shape_of(const veil_layer_spec_t* layers, size_t i) {
  const veil_layer_spec_t& l = layers[i];
  Shape s;
  if (l.kind == VEIL_LAYER_KIND_CONV2D) {
    s.windowed = true;
    s.c = l.channels, s.h = l.height, s.w = l.width;
    s.kh = s.kw = l.kernel, s.stride = l.stride, s.pad = l.padding;
    s.oh = out_side(l.height, l.kernel, l.stride, l.padding);
    s.ow = out_side(l.width, l.kernel, l.stride, l.padding);
    s.pool = l.pool;
    s.ps = l.pool == VEIL_POOL_NONE ? 1 : l.pool_size;
    s.ph = s.oh / s.ps, s.pw = s.ow / s.ps;
  } else if (i > 0 && layers[i - 1].kind == VEIL_LAYER_KIND_CONV2D) {
    // Flatten: one window over the whole pooled tensor, columns in (C, H, W) order.
    const Shape below = shape_of(layers, i - 1);
    s.windowed = true;
    s.c = layers[i - 1].outputs, s.h = s.kh = below.ph, s.w = s.kw = below.pw;
  }
  return s;
}

template <typename T>
void gather(const Shape& s, bool first_layer, const double* src, size_t batch, T one, T* out) {
  // Element (c, y, x) of an example's input tensor is image[c sc + y sy + x sx].
  const size_t plane = size_t{s.h} * s.w;
  const size_t sc = first_layer ? plane : 1;
  const size_t sy = first_layer ? s.w : size_t{s.w} * s.c;
  const size_t sx = first_layer ? 1 : s.c;
  const size_t cols = size_t{s.c} * s.kh * s.kw;
  for (size_t b = 0; b < batch; ++b)
    for (uint32_t oy = 0; oy < s.oh; ++oy)
      for (uint32_t ox = 0; ox < s.ow; ++ox) {
        const double* image = src + b * plane * s.c;
        T* row = out + ((b * s.oh + oy) * s.ow + ox) * (cols + 1);
        const int64_t y0 = int64_t{oy} * s.stride - s.pad, x0 = int64_t{ox} * s.stride - s.pad;
        for (uint32_t c = 0; c < s.c; ++c)
          for (uint32_t ky = 0; ky < s.kh; ++ky, row += s.kw) {
            const int64_t y = y0 + ky;
            if (y < 0 || y >= s.h) {
              std::fill(row, row + s.kw, T(0));
              continue;
            }
            const double* line = image + c * sc + y * sy;
            for (uint32_t kx = 0; kx < s.kw; ++kx) {
              const int64_t x = x0 + kx;
              row[kx] = x >= 0 && x < s.w ? static_cast<T>(line[x * sx]) : T(0);
            }
          }
        *row = one;
      }
}
template void gather<float>(const Shape&, bool, const double*, size_t, float, float*);
template void gather<double>(const Shape&, bool, const double*, size_t, double, double*);

void scatter(const Shape& s, const double* cols, size_t ld, size_t batch, double* dst) {
  std::fill(dst, dst + batch * s.h * s.w * s.c, 0.0);
  for (size_t b = 0; b < batch; ++b)
    for (uint32_t oy = 0; oy < s.oh; ++oy)
      for (uint32_t ox = 0; ox < s.ow; ++ox) {
        const double* row = cols + ((b * s.oh + oy) * s.ow + ox) * ld;
        double* image = dst + b * s.h * s.w * s.c;  // (H, W, C)
        const int64_t y0 = int64_t{oy} * s.stride - s.pad, x0 = int64_t{ox} * s.stride - s.pad;
        for (uint32_t c = 0; c < s.c; ++c)
          for (uint32_t ky = 0; ky < s.kh; ++ky, row += s.kw) {
            const int64_t y = y0 + ky;
            if (y < 0 || y >= s.h) continue;
            double* line = image + y * s.w * s.c + c;
            for (uint32_t kx = 0; kx < s.kw; ++kx) {
              const int64_t x = x0 + kx;
              if (x >= 0 && x < s.w) line[x * s.c] += row[kx];
            }
          }
      }
}

void pool(const Shape& s, uint32_t channels, const double* in, size_t batch, double* out,
          uint8_t* arg) {
  const double inv = 1.0 / (double(s.ps) * s.ps);
  for (size_t b = 0; b < batch; ++b)
    for (uint32_t py = 0; py < s.ph; ++py)
      for (uint32_t px = 0; px < s.pw; ++px)
        for (uint32_t c = 0; c < channels; ++c) {
          double best = 0, sum = 0;
          uint8_t best_at = 0;
          for (uint32_t k = 0; k < s.ps * s.ps; ++k) {
            const size_t y = size_t{py} * s.ps + k / s.ps, x = size_t{px} * s.ps + k % s.ps;
            const double v = in[((b * s.oh + y) * s.ow + x) * channels + c];
            sum += v;
            if (k == 0 || v > best) best = v, best_at = static_cast<uint8_t>(k);
          }
          const size_t o = ((b * s.ph + py) * s.pw + px) * channels + c;
          if (s.pool == VEIL_POOL_MAX) out[o] = best, arg[o] = best_at;
          else out[o] = sum * inv;
        }
}

void unpool(const Shape& s, uint32_t channels, const double* d_out, const uint8_t* arg,
            size_t batch, double* d_in) {
  std::fill(d_in, d_in + batch * s.positions() * channels, 0.0);
  const double inv = 1.0 / (double(s.ps) * s.ps);
  for (size_t b = 0; b < batch; ++b)
    for (uint32_t py = 0; py < s.ph; ++py)
      for (uint32_t px = 0; px < s.pw; ++px)
        for (uint32_t c = 0; c < channels; ++c) {
          const size_t o = ((b * s.ph + py) * s.pw + px) * channels + c;
          for (uint32_t k = 0; k < s.ps * s.ps; ++k) {
            if (s.pool == VEIL_POOL_MAX && k != arg[o]) continue;
            const size_t y = size_t{py} * s.ps + k / s.ps, x = size_t{px} * s.ps + k % s.ps;
            d_in[((b * s.oh + y) * s.ow + x) * channels + c] =
                s.pool == VEIL_POOL_MAX ? d_out[o] : d_out[o] * inv;
          }
        }
}

template <typename T>
uint64_t first_operand(const Shape& s, const double* x, size_t batch, math::FixedFormat fmt,
                       std::vector<double>* tensor, math::OperandStats* stats, T* out) {
  const size_t features = s.tensor_size();
  if (tensor->size() < batch * features) tensor->resize(batch * features);
  const uint64_t saturated =
      math::quantize(x, batch, features, features, fmt, tensor->data(), features, stats).saturated;
  gather(s, true, tensor->data(), batch, static_cast<T>(std::ldexp(1.0, fmt.frac_bits)), out);
  return saturated;
}

template <typename T>
uint64_t next_operand(const Shape& s, const Shape& next, math::Activation act, uint32_t m,
                      const double* z, size_t batch, math::FixedFormat fmt,
                      std::vector<double>* real, std::vector<double>* tensor, uint8_t* arg,
                      T* out) {
  const size_t rows = batch * s.positions(), pooled = batch * s.pooled() * m;
  if (real->size() < rows * m + pooled) real->resize(rows * m + pooled);
  for (size_t i = 0; i < rows * m; ++i) (*real)[i] = math::activate(act, z[i]);
  const double* values = real->data();
  if (s.pool != VEIL_POOL_NONE) {
    pool(s, m, real->data(), batch, real->data() + rows * m, arg);
    values = real->data() + rows * m;
  }
  // Pooling acts on real values, so the layer above gets one rounding, as after a dense layer.
  if (tensor->size() < pooled) tensor->resize(pooled);
  const uint64_t saturated =
      math::quantize(values, 1, pooled, pooled, fmt, tensor->data(), pooled).saturated;
  gather(next, false, tensor->data(), batch, static_cast<T>(std::ldexp(1.0, fmt.frac_bits)), out);
  return saturated;
}

template uint64_t first_operand<float>(const Shape&, const double*, size_t, math::FixedFormat,
                                       std::vector<double>*, math::OperandStats*, float*);
template uint64_t first_operand<double>(const Shape&, const double*, size_t, math::FixedFormat,
                                        std::vector<double>*, math::OperandStats*, double*);
template uint64_t next_operand<float>(const Shape&, const Shape&, math::Activation, uint32_t,
                                      const double*, size_t, math::FixedFormat,
                                      std::vector<double>*, std::vector<double>*, uint8_t*,
                                      float*);
template uint64_t next_operand<double>(const Shape&, const Shape&, math::Activation, uint32_t,
                                       const double*, size_t, math::FixedFormat,
                                       std::vector<double>*, std::vector<double>*, uint8_t*,
                                       double*);

}  // namespace veil::enclave::conv
