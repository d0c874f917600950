#pragma once
// Internal helpers that do not depend on which bridge a file includes: the one
// generated from edl/veil.edl (bridge.h) or the bench image's, generated from
// edl/veil_bench.edl, which imports veil.edl's types and calls (host/bench/).
// The two bridges' headers cannot meet in one file, so these take no bridge type
// beyond the two structs veil.edl declares for every bridge importing it.
#include <string>
#include <vector>

struct veil_train_config_t;
struct veil_layer_spec_t;

namespace veil {

struct TrainConfig;
struct LayerSpec;

/** The wire form of one layer (shared by training and inference). */
void to_wire(const LayerSpec& layer, veil_layer_spec_t* raw);

/** The wire form of a training configuration (shared by every trainer). */
void to_wire(const TrainConfig& config, veil_train_config_t* raw,
             std::vector<veil_layer_spec_t>* layers);

namespace detail {

/**
 * Throw the veil::Error for a failed call: a bridge failure (oe_result other than
 * OE_OK), else the enclave's status with its message and the device's (either may
 * be empty).
 */
[[noreturn]] void throw_call_error(const char* call, int oe_result, int status,
                                   const std::string& message,
                                   const std::string& device_message = "");

}  // namespace detail
}  // namespace veil
