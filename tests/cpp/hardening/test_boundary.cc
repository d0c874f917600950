// Every ecall of edl/veil.edl at the boundary, one case per (ecall, change): its
// valid call must succeed; with any one pointer NULL it must return
// VEIL_ERR_INVALID_ARGUMENT and leave a message naming that parameter; with any
// one count one more or one less than its buffers' shape it must be refused
// (unless the plan says that count may vary). The cases are generated from the
// EDL (gen_boundary_cases.py), so a new ecall or parameter is covered by the
// next build. Each case runs in its own child process (a death test in
// "threadsafe" style), so a crash fails that case, with its name, and no other.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <regex>
#include <string>

#include "boundary_harness.h"
#include "bridge.h"  // host/src: the enclave handle; routes device ocalls
#include "veil/cpu_device.h"
#include "veil/veil.h"
#include "veil_u.h"

namespace boundary {

Harness::Harness(oe_enclave_t* enclave) : enclave_(enclave) { session_ = open_session(); }

uint64_t Harness::open_session() {
  uint64_t id = 0;
  int status = -1;
  const oe_result_t result = ecall_open_session(enclave_, &status, &id);
  if (result != OE_OK || status != VEIL_OK)
    throw SetupError("ecall_open_session failed: " + last_error(0));
  auto device = std::make_unique<veil::CpuDevice>(1);
  veil::detail::bind_device(id, device.get(), &timing_);
  devices_[id] = std::move(device);
  return id;
}

veil::Device& Harness::device_of(uint64_t session) { return *devices_.at(session); }

std::string Harness::last_error(uint64_t session) const {
  return veil::detail::last_error(enclave_, session);
}

namespace {

const char* change_name(Change change) {
  switch (change) {
    case Change::kNone: return "valid";
    case Change::kNull: return "null";
    case Change::kCountUp: return "plus1";
    case Change::kCountDown: return "minus1";
  }
  return "?";
}

std::string describe(const Case& c) {
  switch (c.change) {
    case Change::kNone: return std::string(c.ecall) + " (its valid call)";
    case Change::kNull: return std::string(c.ecall) + " with " + c.param + " = NULL";
    case Change::kCountUp: return std::string(c.ecall) + " with " + c.param + " one more";
    case Change::kCountDown: return std::string(c.ecall) + " with " + c.param + " one less";
  }
  return c.ecall;
}

std::string outcome_text(const Outcome& o, const std::string& message) {
  return std::string("bridge ") + oe_result_str(o.bridge) + ", status " + std::to_string(o.status) +
         ", message \"" + message + "\"";
}

bool names_word(const std::string& message, const std::string& word) {
  return std::regex_search(message, std::regex("(^|[^A-Za-z0-9_])" + word + "([^A-Za-z0-9_]|$)"));
}

[[noreturn]] void finish(bool passed, const std::string& report) {
  std::fprintf(stderr, "%s\n", report.c_str());
  std::fflush(stderr);
  std::_Exit(passed ? 0 : 1);
}

// The child's whole life: load the enclave, build the valid call, change it,
// call, judge. Exit status 0 is a pass; the report goes to stderr either way.
[[noreturn]] void run_case(const Case& c) {
  alarm(120);  // a hung call fails the case (SIGALRM) instead of the whole run
  const std::string what = describe(c);
  try {
    veil::Enclave enclave;
    Harness h(enclave.handle().enclave);
    const Plan plan = find_plan(c.ecall);
    Call call;
    if (plan != nullptr) {
      call = plan(h);
    } else if (c.change == Change::kNull) {
      call = default_call(h, c.ecall);  // NULL must be refused whatever else is passed
    } else {
      finish(false, std::string("tests/cpp/hardening/boundary_plans.cc has no valid call of ") +
                        c.ecall + ": add one, so its counts can be checked");
    }
    const auto count = call.scalars.find(c.param);
    if (c.change == Change::kCountDown && count != call.scalars.end() && count->second <= 0)
      finish(true, what + ": nothing to check, the valid call's count is already 0");
    std::fprintf(stderr, "calling %s\n", what.c_str());
    std::fflush(stderr);  // a crash below still shows which call it was
    const Outcome o = invoker(c.ecall)(h, call, c.change, c.param);
    const uint64_t session = c.has_session ? static_cast<uint64_t>(call.scalars.at("session")) : 0;
    const std::string message = h.last_error(session);
    const std::string got = what + ": " + outcome_text(o, message);
    switch (c.change) {
      case Change::kNone:
        finish(o.bridge == OE_OK && o.status == VEIL_OK, got + "; the valid call must succeed");
      case Change::kNull:
        finish(o.bridge == OE_OK && o.status == VEIL_ERR_INVALID_ARGUMENT &&
                   names_word(message, c.param),
               got + "; expected VEIL_ERR_INVALID_ARGUMENT (" +
                   std::to_string(VEIL_ERR_INVALID_ARGUMENT) + ") and a message naming '" +
                   c.param + "'" + (plan == nullptr ? " (no plan: default arguments)" : ""));
      case Change::kCountUp:
      case Change::kCountDown: {
        const auto& valid = c.change == Change::kCountUp ? call.valid_larger : call.valid_smaller;
        if (valid.count(c.param) != 0)
          finish(o.bridge == OE_OK && o.status == VEIL_OK,
                 got + "; this count may vary, the call must succeed");
        finish(o.bridge != OE_OK || o.status != VEIL_OK, got + "; expected a refusal");
      }
    }
    finish(false, what + ": unknown change");
  } catch (const std::exception& e) {
    finish(false, what + ": setting up the valid call failed: " + e.what());
  }
}

}  // namespace

// gtest prints a case by what it calls, not as bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << describe(c); }

namespace {

class Boundary : public ::testing::TestWithParam<Case> {};

TEST_P(Boundary, Case) {
  // Each child re-executes this binary: forking a process whose BLAS library has
  // started threads (OpenBLAS does when loaded) is not safe.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(run_case(GetParam()), ::testing::ExitedWithCode(0), "");
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  std::string name = c.ecall;
  if (c.change != Change::kNone) name += std::string("__") + c.param;
  return name + "__" + change_name(c.change);
}

INSTANTIATE_TEST_SUITE_P(EveryEcall, Boundary, ::testing::ValuesIn(all_cases()), case_name);

TEST(BoundaryPlans, NameOnlyEcallsOfTheEdl) {
  // A plan left behind by a removed or renamed ecall would test nothing.
  for (const std::string& ecall : planned_ecalls())
    EXPECT_NE(invoker(ecall), nullptr) << "boundary_plans.cc plans " << ecall
                                       << ", which edl/veil.edl does not declare";
}

}  // namespace
}  // namespace boundary
