// A Rebooter that reboots nothing: it counts the reboots asked for and their reasons. Like
// logind it is not simulated(), so the agent stops acting after a reboot it asked for, as
// a host going down would.
#ifndef TENDED_TESTS_FAKES_FAKE_REBOOTER_H_
#define TENDED_TESTS_FAKES_FAKE_REBOOTER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/rebooter.h"

namespace tended::testing {

class FakeRebooter final : public agent::Rebooter {
 public:
  absl::Status Reboot(absl::string_view reason) override {
    reasons.emplace_back(reason);
    return answer;
  }
  bool simulated() const override { return false; }

  int reboots() const { return static_cast<int>(reasons.size()); }

  // What Reboot() answers.
  absl::Status answer;
  std::vector<std::string> reasons;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_FAKE_REBOOTER_H_
