// train_mlp: verify-mode training of a small MLP from C++.
//
// The CPU device (OpenBLAS) computes every product; the enclave checks each one
// with Freivalds' algorithm before it uses it. The data are Gaussian clusters,
// three per class, so the classes are not linearly separable and the hidden
// layers matter. Usage: train_mlp [weights.txt]
#include <veil/veil.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr size_t kFeatures = 8;
constexpr size_t kClasses = 4;
constexpr size_t kClustersPerClass = 3;
constexpr size_t kTrainRows = 2048;
constexpr size_t kTestRows = 1024;
constexpr size_t kBatch = 32;
constexpr int kEpochs = 8;
constexpr int kHalveLrAtEpoch = 6;
constexpr double kTargetAccuracy = 0.90;

// std::normal_distribution differs between standard libraries; drawing from the
// engine directly keeps the data, and so the printed results, the same everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  double normal() {  // Box-Muller
    const double u = 1.0 - uniform();  // in (0, 1]: log(u) is finite
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * uniform());
  }
  size_t below(size_t n) { return static_cast<size_t>(uniform() * static_cast<double>(n)); }

 private:
  std::mt19937_64 engine_;
};

struct Dataset {
  std::vector<double> x;  // rows x kFeatures, row-major
  std::vector<int32_t> y;
  size_t rows() const { return y.size(); }
};

Dataset make_clusters(const std::vector<double>& centers, size_t rows, Rng& rng) {
  const size_t clusters = centers.size() / kFeatures;
  Dataset d;
  d.x.resize(rows * kFeatures);
  d.y.resize(rows);
  for (size_t i = 0; i < rows; ++i) {
    const size_t c = rng.below(clusters);
    d.y[i] = static_cast<int32_t>(c % kClasses);
    for (size_t j = 0; j < kFeatures; ++j)
      d.x[i * kFeatures + j] = centers[c * kFeatures + j] + rng.normal();
  }
  return d;
}

// Verify-mode inference in chunks the enclave accepts (at most max_batch rows).
double accuracy(veil::Trainer& trainer, const Dataset& d) {
  const size_t chunk = trainer.config().max_batch;
  std::vector<double> probs(chunk * kClasses);
  size_t correct = 0;
  for (size_t start = 0; start < d.rows(); start += chunk) {
    const size_t n = std::min(chunk, d.rows() - start);
    trainer.predict(&d.x[start * kFeatures], n, probs.data());
    for (size_t i = 0; i < n; ++i) {
      const double* p = &probs[i * kClasses];
      const auto best = std::max_element(p, p + kClasses) - p;
      correct += best == d.y[start + i];
    }
  }
  return static_cast<double>(correct) / static_cast<double>(d.rows());
}

void write_weights(const std::string& path, const veil::TrainConfig& config,
                   const std::vector<std::vector<double>>& weights) {
  std::ofstream out(path);
  out << "# veil train_mlp weights; per layer: 'layer L rows R cols C' (rows = inputs + 1,\n"
         "# the last row is the bias), then R lines of C values\n";
  out << std::setprecision(17);
  for (size_t l = 0; l < weights.size(); ++l) {
    const size_t rows = config.layers[l].inputs + 1, cols = config.layers[l].outputs;
    out << "layer " << l << " rows " << rows << " cols " << cols << "\n";
    for (size_t r = 0; r < rows; ++r) {
      for (size_t c = 0; c < cols; ++c) out << (c ? " " : "") << weights[l][r * cols + c];
      out << "\n";
    }
  }
  if (!out.flush()) throw std::runtime_error("cannot write " + path);
}

int run(const char* weights_path) {
  Rng rng(20240601);
  std::vector<double> centers(kClasses * kClustersPerClass * kFeatures);
  for (double& v : centers) v = 6.0 * rng.uniform() - 3.0;
  const Dataset train = make_clusters(centers, kTrainRows, rng);
  const Dataset test = make_clusters(centers, kTestRows, rng);

  veil::Enclave enclave;  // the image installed beside libveil_host
  veil::EnclaveInfo info = enclave.info();
  std::cout << "veil " << veil::version() << ", " << info.backend << " enclave "
            << enclave.image_path() << "\n";

  veil::TrainConfig config;
  config.layers = {{kFeatures, 32, veil::Activation::relu},
                   {32, 32, veil::Activation::relu},
                   {32, kClasses, veil::Activation::identity}};
  config.loss = veil::Loss::cross_entropy;
  config.lr_exp = 2;  // learning rate 2^-2
  config.max_batch = kBatch;
  config.seed = 1;

  veil::CpuDevice device(1);
  veil::Trainer trainer(enclave, device, config);

  std::vector<size_t> order(train.rows());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::vector<double> xb(kBatch * kFeatures);
  std::vector<int32_t> yb(kBatch);
  for (int epoch = 1; epoch <= kEpochs; ++epoch) {
    if (epoch == kHalveLrAtEpoch) trainer.halve_lr();
    for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
    double loss = 0;
    size_t correct = 0, steps = 0;
    for (size_t start = 0; start + kBatch <= order.size(); start += kBatch, ++steps) {
      for (size_t i = 0; i < kBatch; ++i) {
        const size_t row = order[start + i];
        std::copy_n(&train.x[row * kFeatures], kFeatures, &xb[i * kFeatures]);
        yb[i] = train.y[row];
      }
      veil::StepResult r = trainer.step(xb.data(), yb.data(), kBatch);
      loss += r.loss;
      correct += r.correct;
    }
    std::printf("epoch %d lr=2^-%d loss=%.4f train_accuracy=%.4f checks_passed=%llu\n", epoch,
                trainer.config().lr_exp, loss / steps,
                static_cast<double>(correct) / static_cast<double>(steps * kBatch),
                static_cast<unsigned long long>(trainer.stats().checks_passed));
  }

  const double acc = accuracy(trainer, test);

  // Exporting checks the device's weights against the enclave's fingerprints first.
  std::vector<std::vector<double>> weights;
  for (uint32_t l = 0; l < config.layers.size(); ++l) {
    weights.push_back(trainer.export_weights(l));
    std::printf("layer %u weights %ux%u (bias row last)\n", l, config.layers[l].inputs + 1,
                config.layers[l].outputs);
  }
  if (weights_path) {
    write_weights(weights_path, config, weights);
    std::printf("weights written to %s\n", weights_path);
  }

  const veil::SessionStats stats = trainer.stats();
  const veil::Timing timing = trainer.timing();
  std::printf("enclave_seconds=%.3f device_seconds=%.3f\n", timing.enclave_seconds(),
              timing.device_seconds);
  std::printf("accuracy=%.4f target=%.2f steps=%llu checks_passed=%llu aborted=%s\n", acc,
              kTargetAccuracy, static_cast<unsigned long long>(stats.step),
              static_cast<unsigned long long>(stats.checks_passed), stats.aborted ? "yes" : "no");
  if (acc < kTargetAccuracy) {
    std::fprintf(stderr, "train_mlp: accuracy %.4f is below the target %.2f\n", acc,
                 kTargetAccuracy);
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc > 1 ? argv[1] : nullptr);
  } catch (const veil::VerificationError& e) {
    // The device returned a wrong product: the session is over and no result left it.
    std::fprintf(stderr, "train_mlp: verification failed: %s\n", e.what());
  } catch (const veil::Error& e) {
    std::fprintf(stderr, "train_mlp: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_mlp: %s\n", e.what());
  }
  return 1;
}
