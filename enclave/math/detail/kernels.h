#pragma once
/**
 * @file kernels.h
 * Internal: one table of kernels per instruction set. fused.cpp and
 * freivalds.cpp validate arguments and pick a table; the kernels assume valid
 * arguments.
 */

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "math/detail/scalar.h"
#include "math/fused.h"
#include "math/kernel_path.h"
#include "math/status.h"

namespace veil {
namespace math {
namespace detail {

/** Elements per chunk: 4 KiB of doubles stays in L1 between sub-passes. */
constexpr std::size_t kChunk = 512;

/**
 * The exact float64 GEMM tile of the blinding correction (blinding.h): rows
 * and columns of one register tile. A packed panel holds kTileRows (kTileCols)
 * values per depth step, depth-major.
 */
constexpr std::size_t kTileRows = 8;
constexpr std::size_t kTileCols = 16;
using ExactTile = void (*)(std::size_t depth, const double* a, const double* b, double* c,
                           std::size_t ldc);

/** A validated forward pass with its derived constants. */
struct ForwardPlan {
  ForwardArgs args;
  double inv_scale;  // 2^-scale
  double two_f;      // 2^frac_bits of a_format
  Quantizer qz;
  // next_v[r] split into 21-bit limbs, limb c at next_limbs + (3 r + c) cols;
  // null when a_next may exceed the vector kernels' float64 bound (2^23),
  // never when next_dots is set with a_next_narrow.
  const double* next_limbs = nullptr;
  std::size_t row_begin = 0;  // the kernel runs rows [row_begin, args.rows) (parallel.h)
};

/** A validated backward pass with its derived constants. */
struct BackwardPlan {
  BackwardArgs args;
  double inv_scale;
  double two_f;
  Quantizer qz;
  std::size_t row_begin = 0;
};

struct Kernels {
  Status (*matvec)(const double* x, std::size_t rows, std::size_t cols, std::size_t ld,
                   const std::uint64_t* v, std::uint64_t* out);
  Status (*matvec2)(const double* x, std::size_t rows, std::size_t cols, std::size_t ld,
                    const std::uint64_t* v1, const std::uint64_t* v2, std::uint64_t* out1,
                    std::uint64_t* out2);
  Status (*matvec_t)(const double* x, std::size_t rows, std::size_t cols, std::size_t ld,
                     const std::uint64_t* y, std::uint64_t* out);
  std::size_t (*quantize)(const double* x, std::size_t rows, std::size_t cols, std::size_t ldx,
                          double two_f, Quantizer qz, double* out, std::size_t ldo,
                          OperandStats* stats);  // returns the saturated count
  // Write a_next or a_next_narrow (dz_prev or dz_prev_narrow), whichever is set.
  PassResult (*forward)(const ForwardPlan& plan);
  PassResult (*backward)(const BackwardPlan& plan);

  // Narrow operands (float32 integers below 2^23): the same field values as
  // the float64 entries, and the first element that is not narrow as a fault.
  Status (*matvec_f)(const float* x, std::size_t rows, std::size_t cols, std::size_t ld,
                     const std::uint64_t* v, std::uint64_t* out);
  Status (*matvec2_f)(const float* x, std::size_t rows, std::size_t cols, std::size_t ld,
                      const std::uint64_t* v1, const std::uint64_t* v2, std::uint64_t* out1,
                      std::uint64_t* out2);
  Status (*matvec_t_f)(const float* x, std::size_t rows, std::size_t cols, std::size_t ld,
                       const std::uint64_t* y, std::uint64_t* out);
  // quantize into float32: the caller ensures the limit is below 2^23.
  std::size_t (*quantize_f)(const double* x, std::size_t rows, std::size_t cols,
                            std::size_t ldx, double two_f, Quantizer qz, float* out,
                            std::size_t ldo, OperandStats* stats);
  // c (kTileRows x kTileCols, row stride ldc) += a panel * b panel over depth
  // steps: integer-valued operands whose every partial sum the caller bounds
  // below 2^53, so the sums are exact in any order, fused or not.
  ExactTile exact_tile;
};

const Kernels& portable_kernels() noexcept;
/** nullptr when the build has no such path (non-x86 or unsupported compiler). */
const Kernels* avx2_kernels() noexcept;
const Kernels* avx512_kernels() noexcept;
/** The table of a supported path. */
const Kernels& kernels_of(KernelPath path) noexcept;
/**
 * The table every pass uses: kernels_of(best_kernel_path()) in the image
 * (kernel_choice.cpp); the math tests' hook defines it to force a path.
 */
const Kernels& active_kernels() noexcept;

}  // namespace detail
}  // namespace math
}  // namespace veil
