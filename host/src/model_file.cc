// Reads the model file of veil.save_model (python/veil/_inference.py): a NumPy .npz,
// which np.savez writes as a ZIP archive of .npy arrays stored uncompressed. Only
// what that writer produces is accepted, and every length and offset is checked
// against the file before it is used: a damaged file is an InputError, never a
// read out of bounds.
#include "veil/model_file.h"

#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include "bridge.h"
#include "veil/error.h"

namespace veil {
namespace {

constexpr char kFormat[] = "veil-model-1";  // save_model's "format" array

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw InputError("load_model: '" + path + "': " + what +
                       "; re-save the model with veil.save_model",
                   VEIL_ERR_INVALID_ARGUMENT, 0);
}

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) { return le16(p) | static_cast<uint32_t>(le16(p + 2)) << 16; }
uint64_t le64(const uint8_t* p) { return le32(p) | static_cast<uint64_t>(le32(p + 4)) << 32; }

// CRC-32 as ZIP records it (reflected polynomial 0xEDB88320).
uint32_t crc32(const uint8_t* p, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// The file's bytes, handed out only after a bounds check.
struct File {
  std::string path;
  std::vector<uint8_t> bytes;

  const uint8_t* at(size_t offset, size_t length, const std::string& what) const {
    if (offset > bytes.size() || length > bytes.size() - offset)
      fail(path, "truncated or damaged: " + what + " runs past the end of the file");
    return bytes.data() + offset;
  }
};

File read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError("load_model: '" + path + "' is a directory, not a model file (`veil train "
                     "--out DIR` writes DIR/model.npz)", VEIL_ERR_INVALID_ARGUMENT, 0);
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw InputError("load_model: cannot open '" + path + "': " + std::strerror(errno) +
                         " (veil.save_model writes a model file; `veil train --out DIR` writes "
                         "DIR/model.npz)",
                     VEIL_ERR_INVALID_ARGUMENT, 0);
  File f{path, std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {})};
  if (in.bad()) fail(path, "cannot read it");
  return f;
}

// Where each array's .npy bytes lie in the file, by name ("layer_0.npy", ...).
struct Span {
  size_t offset = 0;
  size_t size = 0;
};
using Archive = std::map<std::string, Span>;

constexpr uint32_t kLocalSignature = 0x04034b50, kCentralSignature = 0x02014b50,
                   kEndSignature = 0x06054b50;
constexpr size_t kLocalSize = 30, kCentralSize = 46, kEndSize = 22, kMaxComment = 0xFFFF;

size_t find_end_record(const File& f) {
  const size_t size = f.bytes.size();
  if (size < kEndSize) fail(f.path, "truncated or not a NumPy .npz file (too short for a ZIP)");
  // The end record is last but for a comment of up to 64 KiB, whose length it gives.
  const size_t lowest = size > kEndSize + kMaxComment ? size - kEndSize - kMaxComment : 0;
  for (size_t p = size - kEndSize;; --p) {
    const uint8_t* e = f.bytes.data() + p;
    if (le32(e) == kEndSignature && p + kEndSize + le16(e + 20) == size) return p;
    if (p == lowest) break;
  }
  fail(f.path, "truncated or not a NumPy .npz file (no ZIP end record)");
}

Archive read_archive(const File& f) {
  const size_t end = find_end_record(f);
  const uint8_t* e = f.bytes.data() + end;
  const uint32_t count = le16(e + 10), directory_size = le32(e + 12),
                 directory_offset = le32(e + 16);
  if (count == 0xFFFF || directory_size == 0xFFFFFFFF || directory_offset == 0xFFFFFFFF)
    fail(f.path, "a ZIP64 archive (over 4 GiB or 65535 arrays), larger than any veil model");
  if (le16(e + 4) != 0 || le16(e + 6) != 0 || le16(e + 8) != count)
    fail(f.path, "a ZIP archive split over several disks");
  if (directory_offset > end || directory_size > end - directory_offset)
    fail(f.path, "truncated or damaged: the ZIP directory lies outside the file");
  const size_t directory_end = directory_offset + directory_size;

  Archive archive;
  size_t p = directory_offset;
  for (uint32_t i = 0; i < count; ++i) {
    if (p > directory_end || kCentralSize > directory_end - p)
      fail(f.path, "damaged: the ZIP directory is shorter than its entry count");
    const uint8_t* c = f.bytes.data() + p;
    if (le32(c) != kCentralSignature) fail(f.path, "damaged: a ZIP directory entry is corrupt");
    const uint16_t flags = le16(c + 8), method = le16(c + 10), name_size = le16(c + 28);
    const uint32_t crc = le32(c + 16), stored_size = le32(c + 20), size = le32(c + 24),
                   local = le32(c + 42);
    const size_t entry_size = kCentralSize + name_size + le16(c + 30) + le16(c + 32);
    if (entry_size > directory_end - p)
      fail(f.path, "damaged: a ZIP directory entry runs past the directory");
    const std::string name(reinterpret_cast<const char*>(c + kCentralSize), name_size);
    if (flags & 1) fail(f.path, "'" + name + "' is encrypted");
    if (method != 0)
      fail(f.path, "'" + name + "' is compressed (ZIP method " + std::to_string(method) +
                       "); veil reads arrays stored uncompressed, as np.savez and "
                       "veil.save_model write them, not np.savez_compressed");
    if (stored_size == 0xFFFFFFFF || size == 0xFFFFFFFF || local == 0xFFFFFFFF)
      fail(f.path, "a ZIP64 archive (over 4 GiB), larger than any veil model");
    if (stored_size != size) fail(f.path, "damaged: '" + name + "' has two different sizes");

    const uint8_t* l = f.at(local, kLocalSize, "the ZIP header of '" + name + "'");
    const uint16_t local_name_size = le16(l + 26);
    const uint8_t* local_name = f.at(local + kLocalSize, local_name_size, "the name of " + name);
    if (le32(l) != kLocalSignature || local_name_size != name_size ||
        std::memcmp(local_name, name.data(), name_size) != 0)
      fail(f.path, "damaged: the ZIP header of '" + name + "' is corrupt");
    const size_t offset = local + kLocalSize + local_name_size + le16(l + 28);
    const uint8_t* data = f.at(offset, size, "'" + name + "'");
    if (offset + size > directory_offset)
      fail(f.path, "damaged: '" + name + "' overlaps the ZIP directory");
    if (crc32(data, size) != crc)
      fail(f.path, "damaged: '" + name + "' fails its CRC-32 check");
    if (!archive.emplace(name, Span{offset, size}).second)
      fail(f.path, "damaged: '" + name + "' appears twice");
    p += entry_size;
  }
  return archive;
}

// One .npy array: little-endian, C order, of a kind save_model writes.
struct Array {
  std::string name;
  char kind = 0;         // 'f' float, 'i' signed integer, 'U' UTF-32 text
  size_t item_size = 0;  // bytes per element
  std::vector<size_t> shape;
  const uint8_t* data = nullptr;
  size_t count = 1;  // elements
};

// The header of a .npy file is a Python dict literal, for example
// {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), } padded with spaces.
class NpyHeader {
 public:
  NpyHeader(const File& f, std::string name, std::string text)
      : f_(f), name_(std::move(name)), s_(std::move(text)) {}

  void parse(Array* array) {
    std::string descr;
    bool fortran = false, have_descr = false, have_shape = false;
    expect('{');
    while (!eat('}')) {
      const std::string key = quoted();
      expect(':');
      if (key == "descr") {
        descr = quoted();
        have_descr = true;
      } else if (key == "fortran_order") {
        fortran = word() == "True";
      } else if (key == "shape") {
        array->shape = tuple();
        have_shape = true;
      } else {
        bad("an unknown field '" + key + "'");
      }
      if (!eat(',')) {
        expect('}');
        break;
      }
    }
    if (!have_descr || !have_shape) bad("no descr or shape");
    if (fortran) bad("an array in Fortran order");
    set_type(descr, array);
  }

 private:
  [[noreturn]] void bad(const std::string& what) {
    fail(f_.path, "array '" + name_ + "' has a .npy header with " + what);
  }
  void skip() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t')) ++i_;
  }
  bool eat(char c) {
    skip();
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  void expect(char c) {
    if (!eat(c)) bad(std::string("a syntax error (expected '") + c + "')");
  }
  std::string quoted() {
    skip();
    if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"'))
      bad("a syntax error (expected a string)");
    const char quote = s_[i_++];
    const size_t close = s_.find(quote, i_);
    if (close == std::string::npos) bad("an unterminated string");
    std::string out = s_.substr(i_, close - i_);
    i_ = close + 1;
    return out;
  }
  std::string word() {
    skip();
    const size_t start = i_;
    while (i_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[i_]))) ++i_;
    std::string out = s_.substr(start, i_ - start);
    if (out != "True" && out != "False") bad("fortran_order neither True nor False");
    return out;
  }
  std::vector<size_t> tuple() {
    std::vector<size_t> dims;
    expect('(');
    while (!eat(')')) {
      skip();
      size_t value = 0, digits = 0;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
        if (++digits > 12) bad("a dimension too large");
        value = value * 10 + static_cast<size_t>(s_[i_++] - '0');
      }
      if (digits == 0) bad("a syntax error in its shape");
      dims.push_back(value);
      if (!eat(',')) {
        expect(')');
        break;
      }
    }
    return dims;
  }
  void set_type(const std::string& descr, Array* array) {
    if (descr.size() < 3 || (descr[0] != '<' && descr[0] != '|'))
      bad("dtype '" + descr + "' (veil reads little-endian float64, integers and text)");
    const char kind = descr[1];
    size_t size = 0;
    for (size_t k = 2; k < descr.size(); ++k) {
      if (descr[k] < '0' || descr[k] > '9' || k > 8) bad("dtype '" + descr + "'");
      size = size * 10 + static_cast<size_t>(descr[k] - '0');
    }
    if (kind == 'f' && size == 8) {
      array->item_size = 8;
    } else if (kind == 'i' && (size == 4 || size == 8)) {
      array->item_size = size;
    } else if (kind == 'U' && size >= 1) {
      array->item_size = 4 * size;
    } else {
      bad("dtype '" + descr + "' (veil reads little-endian float64, integers and text)");
    }
    array->kind = kind;
  }

  const File& f_;
  std::string name_, s_;
  size_t i_ = 0;
};

Array read_array(const File& f, const Archive& archive, const std::string& name) {
  const auto it = archive.find(name + ".npy");
  if (it == archive.end()) fail(f.path, "not a veil model file: it has no array '" + name + "'");
  const uint8_t* p = f.bytes.data() + it->second.offset;
  const size_t n = it->second.size;
  static const char kMagic[] = "\x93NUMPY";
  if (n < 10 || std::memcmp(p, kMagic, 6) != 0)
    fail(f.path, "array '" + name + "' is not in .npy format");
  size_t header_size = 0, start = 0;
  if (p[6] == 1) {
    header_size = le16(p + 8), start = 10;
  } else if ((p[6] == 2 || p[6] == 3) && n >= 12) {
    header_size = le32(p + 8), start = 12;
  } else {
    fail(f.path, "array '" + name + "' has an unknown .npy version");
  }
  if (header_size > n - start) fail(f.path, "array '" + name + "' has a truncated .npy header");
  Array array;
  array.name = name;
  NpyHeader(f, name, std::string(reinterpret_cast<const char*>(p + start), header_size))
      .parse(&array);
  const size_t data_size = n - start - header_size;
  for (size_t d : array.shape) {
    if (d != 0 && array.count > SIZE_MAX / d) fail(f.path, "array '" + name + "' is too large");
    array.count *= d;
  }
  if (array.count > data_size / array.item_size || array.count * array.item_size != data_size)
    fail(f.path, "array '" + name + "' holds " + std::to_string(data_size) + " bytes, not the " +
                     std::to_string(array.count) + " elements of its shape");
  array.data = p + start + header_size;
  return array;
}

std::string shape_text(const std::vector<size_t>& shape) {
  std::string s = "(";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::vector<double> floats(const File& f, const Array& a) {
  if (a.kind != 'f') fail(f.path, "array '" + a.name + "' must hold float64 values");
  std::vector<double> out(a.count);
  for (size_t k = 0; k < a.count; ++k) {
    const uint64_t bits = le64(a.data + 8 * k);
    std::memcpy(&out[k], &bits, sizeof bits);
    if (!std::isfinite(out[k]))
      fail(f.path, "array '" + a.name + "' holds a non-finite value at index " + std::to_string(k));
  }
  return out;
}

std::vector<int64_t> integers(const File& f, const Array& a) {
  if (a.kind != 'i') fail(f.path, "array '" + a.name + "' must hold integers");
  std::vector<int64_t> out(a.count);
  for (size_t k = 0; k < a.count; ++k)
    out[k] = a.item_size == 4 ? static_cast<int32_t>(le32(a.data + 4 * k))
                              : static_cast<int64_t>(le64(a.data + 8 * k));
  return out;
}

// A 0-d text array as ASCII (other characters become '?'), trailing NULs dropped.
std::string text(const File& f, const Array& a) {
  if (a.kind != 'U' || a.count != 1) fail(f.path, "array '" + a.name + "' must be one string");
  std::string out;
  for (size_t k = 0; k < a.item_size / 4; ++k) {
    const uint32_t c = le32(a.data + 4 * k);
    out += c < 128 ? static_cast<char>(c) : '?';
  }
  return out.substr(0, out.find('\0'));
}

// Whether name is "layer_<k>.npy" for a k below count.
bool layer_name(const std::string& name, size_t count) {
  for (size_t k = 0; k < count; ++k)
    if (name == "layer_" + std::to_string(k) + ".npy") return true;
  return false;
}

}  // namespace

SavedModel load_model(const std::string& path) {
  const File f = read_file(path);
  const Archive archive = read_archive(f);
  if (archive.count("format.npy")) {
    const std::string format = text(f, read_array(f, archive, "format"));
    if (format != kFormat) fail(path, "an unknown model format '" + format + "'");
  }
  // Python writes a CNN's geometry beside its weights (docs/design.md §4.4); this reader
  // builds dense layers only, so it refuses one rather than misread it.
  if (archive.count("layer_geometry.npy"))
    fail(path, "a convolutional model (it has layer_geometry): veil::load_model reads dense "
               "models only; Python's veil.load_model reads it");
  size_t layer_count = 0;
  while (archive.count("layer_" + std::to_string(layer_count) + ".npy")) ++layer_count;
  if (layer_count == 0)
    fail(path, "not a veil model file: it has no array 'layer_0' (veil.save_model writes "
               "layer_0, layer_1, ...)");
  for (const auto& entry : archive)
    if (entry.first.rfind("layer_", 0) == 0 && !layer_name(entry.first, layer_count))
      fail(path, "array '" + entry.first + "' is not one of layer_0 to layer_" +
                     std::to_string(layer_count - 1));
  if (layer_count > limits::max_layers)
    fail(path, std::to_string(layer_count) + " layers, more than the " +
                   std::to_string(limits::max_layers) + " veil supports");
  if (!archive.count("activation_codes.npy") || !archive.count("loss_code.npy"))
    fail(path, "it has no activation_codes and loss_code (an older veil wrote it)");

  SavedModel model;
  const Array codes_array = read_array(f, archive, "activation_codes");
  const std::vector<int64_t> codes = integers(f, codes_array);
  if (codes_array.shape.size() != 1 || codes.size() != layer_count)
    fail(path, "activation_codes has shape " + shape_text(codes_array.shape) + ", not (" +
                   std::to_string(layer_count) + ",), one per layer");
  const Array loss_array = read_array(f, archive, "loss_code");
  const std::vector<int64_t> loss = integers(f, loss_array);
  if (!loss_array.shape.empty()) fail(path, "loss_code must be a single integer");
  if (loss[0] < INT32_MIN || loss[0] > INT32_MAX || !is_valid(static_cast<Loss>(loss[0])))
    fail(path, "unknown loss code " + std::to_string(loss[0]));
  model.loss = static_cast<Loss>(loss[0]);

  for (size_t l = 0; l < layer_count; ++l) {
    const std::string name = "layer_" + std::to_string(l);
    const Array a = read_array(f, archive, name);
    if (a.shape.size() != 2 || a.shape[0] < 2 || a.shape[1] < 1 ||
        a.shape[0] - 1 > limits::max_width || a.shape[1] > limits::max_width)
      fail(path, name + " has shape " + shape_text(a.shape) + ", not (inputs + 1, outputs) "
                 "with widths from 1 to " + std::to_string(limits::max_width));
    LayerSpec spec;
    spec.inputs = static_cast<uint32_t>(a.shape[0] - 1);
    spec.outputs = static_cast<uint32_t>(a.shape[1]);
    if (codes[l] < INT32_MIN || codes[l] > INT32_MAX || !is_valid(static_cast<Activation>(codes[l])))
      fail(path, name + " has an unknown activation code " + std::to_string(codes[l]));
    spec.activation = static_cast<Activation>(codes[l]);
    if (l > 0 && spec.inputs != model.layers.back().outputs)
      fail(path, name + " takes " + std::to_string(spec.inputs) + " inputs but layer_" +
                     std::to_string(l - 1) + " gives " +
                     std::to_string(model.layers.back().outputs));
    model.layers.push_back(spec);
    model.weights.push_back(floats(f, a));
  }

  const bool has_mean = archive.count("mean.npy") > 0, has_scale = archive.count("scale.npy") > 0;
  if (has_mean != has_scale) fail(path, "it has one of mean and scale without the other");
  if (has_mean) {
    const auto per_input = [&](const std::string& name) {
      const Array a = read_array(f, archive, name);
      if (a.shape.size() != 1 || a.shape[0] != model.input_size())
        fail(path, name + " has shape " + shape_text(a.shape) + ", not (" +
                       std::to_string(model.input_size()) + ",), one per input");
      return floats(f, a);
    };
    model.mean = per_input("mean");
    model.scale = per_input("scale");
    for (double s : model.scale)
      if (!(s > 0)) fail(path, "scale holds a value that is not positive");
  }
  return model;
}

InferenceConfig SavedModel::inference_config(InferenceMode mode) const {
  InferenceConfig config;
  config.layers = layers;
  config.loss = loss;
  config.mode = mode;
  return config;
}

std::vector<const double*> SavedModel::weight_pointers() const {
  std::vector<const double*> pointers;
  for (const auto& w : weights) pointers.push_back(w.data());
  return pointers;
}

std::vector<double> SavedModel::standardize(const double* x, size_t rows) const {
  const size_t n = input_size();
  std::vector<double> out(x, x + rows * n);
  if (mean.empty()) return out;
  // The same two rounded operations per value as numpy's (X - mean) / scale.
  for (size_t r = 0; r < rows; ++r)
    for (size_t j = 0; j < n; ++j) out[r * n + j] = (out[r * n + j] - mean[j]) / scale[j];
  return out;
}

}  // namespace veil
