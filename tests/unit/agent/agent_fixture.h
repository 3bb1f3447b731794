// The Agent under unit test: a throwaway root with a node's files, a fake clock, a scripted
// coordinator client, a fake rebooter that counts reboots and, for OS upgrades, a fake
// package manager. CoordinatorHolds() gives the scripted coordinator a minimal memory of
// one lease so that tests script only the answers they are about.
#ifndef TENDED_TESTS_UNIT_AGENT_AGENT_FIXTURE_H_
#define TENDED_TESTS_UNIT_AGENT_AGENT_FIXTURE_H_

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/agent.h"
#include "agent/config.h"
#include "common/file_util.h"
#include "common/proto_file.h"
#include "common/proto_time.h"
#include "common/root_path.h"
#include "tended/state/v1/state.pb.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_package_manager.h"
#include "tests/fakes/fake_rebooter.h"
#include "tests/fakes/node_root.h"
#include "tests/fakes/scripted_coordinator_client.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent {

class AgentFixture : public ::testing::Test {
 protected:
  static constexpr char kNode[] = "node-a";
  static constexpr char kBootId[] = "0b7c1d3e-5a2f-4c3b-9d1e-2f3a4b5c6d7e";

  AgentFixture() : root_(dir_.path()) {
    EXPECT_TRUE(tended::testing::PrepareNodeRoot(dir_.path(), kBootId).ok());
    config_.root = dir_.path();
    config_.state_dir = "/var/lib/tended";
    config_.report_interval = absl::Seconds(30);
    config_.check_period = absl::Minutes(5);
    config_.reconnect_initial_backoff = absl::Seconds(1);
    config_.reconnect_max_backoff = absl::Seconds(60);
    config_.reboot.delay = absl::Seconds(10);
    config_.apt.plan_interval = absl::Hours(1);
    config_.apt.update_interval = absl::ZeroDuration();
  }

  // A new agent process on the root (the journal and the instance id as on disk).
  std::unique_ptr<Agent> StartAgent(bool os_upgrades = false) {
    Agent::Dependencies deps;
    deps.clock = &clock_;
    deps.coordinator = &client_;
    deps.rebooter = &rebooter_;
    deps.packages = os_upgrades ? &packages_ : nullptr;
    deps.apt_in_background = false;
    deps.apt_plan_status = &plan_status_;
    auto agent = Agent::Create(config_, kNode, root_, deps);
    EXPECT_TRUE(agent.ok()) << agent.status();
    return agent.ok() ? *std::move(agent) : nullptr;
  }

  // Runs the agent whenever it asks to run, up to and including `span` from now; the clock
  // ends at now + span.
  void RunFor(Agent& agent, absl::Duration span) {
    const absl::Time end = clock_.Now() + span;
    int at_same_time = 0;
    for (int i = 0; i < 100000; ++i) {
      const absl::Time before = clock_.Now();
      const absl::Time next = agent.RunOnce();
      if (next > end) break;
      if (next > before) {
        clock_.Set(next);
        at_same_time = 0;
      } else if (++at_same_time > 100) {
        ADD_FAILURE() << "the agent keeps asking to run at " << absl::FormatTime(before);
        break;
      }
    }
    clock_.Set(end);
  }

  void NeedReboot() {
    ASSERT_TRUE(
        tended::testing::MarkRebootRequired(dir_.path(), "linux-image-6.1.0-28-amd64").ok());
  }
  void RebootNoLongerNeeded() {
    ASSERT_TRUE(RemoveFileIfExists(root_.Resolve(config_.reboot.sentinel)).ok());
  }

  tended::v1::Lease MakeLease(tended::v1::LeaseKind kind, tended::v1::LeasePhase phase,
                              const std::string& id = "lease-7", uint64_t token = 7) const {
    tended::v1::Lease lease;
    lease.set_id(id);
    lease.set_node_name(kNode);
    lease.set_kind(kind);
    lease.set_phase(phase);
    lease.set_fencing_token(token);
    lease.set_boot_id_at_grant(kBootId);
    *lease.mutable_grant_time() = ToProtoTimestamp(clock_.Now());
    *lease.mutable_renew_time() = ToProtoTimestamp(clock_.Now());
    // Renewed every 30 s (a third of the deadline).
    *lease.mutable_expire_time() = ToProtoTimestamp(clock_.Now() + absl::Seconds(90));
    return lease;
  }

  static tended::v1::Directive Granted(const tended::v1::Lease& lease) {
    tended::v1::Directive directive;
    *directive.mutable_lease_granted() = lease;
    return directive;
  }
  static tended::v1::Directive Revoked(const tended::v1::Lease& lease) {
    tended::v1::Directive directive;
    *directive.mutable_lease_revoked() = lease;
    return directive;
  }
  static tended::v1::Directive ReportNow() {
    tended::v1::Directive directive;
    directive.mutable_report_now();
    return directive;
  }

  // The scripted coordinator holds `lease` (until released): AcquireLease of its kind,
  // RenewLease and BeginDisruption answer with it (BeginDisruption moves it to DISRUPTING)
  // and ReleaseLease releases it; a call naming another lease or token is refused with
  // FAILED_PRECONDITION. Scripted answers still come first.
  void CoordinatorHolds(const tended::v1::Lease& lease) {
    held_ = lease;
    auto refused = [](const std::string& id) {
      return absl::FailedPreconditionError(absl::StrCat("lease ", id, " is not held"));
    };
    auto holds = [this](const std::string& id, uint64_t token) {
      return held_.has_value() && held_->id() == id && held_->fencing_token() == token;
    };
    client_.acquire_lease.otherwise = [this](const tended::v1::AcquireLeaseRequest& request) {
      tended::v1::AcquireLeaseResponse response;
      if (held_.has_value() && held_->kind() == request.kind()) {
        *response.mutable_lease() = *held_;
      } else {
        response.set_queue_position(1);
      }
      return absl::StatusOr<tended::v1::AcquireLeaseResponse>(response);
    };
    client_.renew_lease.otherwise = [this, holds,
                                     refused](const tended::v1::RenewLeaseRequest& request)
        -> absl::StatusOr<tended::v1::RenewLeaseResponse> {
      if (!holds(request.lease_id(), request.fencing_token())) return refused(request.lease_id());
      *held_->mutable_renew_time() = ToProtoTimestamp(clock_.Now());
      if (held_->phase() == tended::v1::LEASE_PHASE_GRANTED) {
        *held_->mutable_expire_time() = ToProtoTimestamp(clock_.Now() + absl::Seconds(90));
      }
      tended::v1::RenewLeaseResponse response;
      *response.mutable_lease() = *held_;
      return response;
    };
    client_.begin_disruption.otherwise =
        [this, holds, refused](const tended::v1::BeginDisruptionRequest& request)
        -> absl::StatusOr<tended::v1::BeginDisruptionResponse> {
      if (!holds(request.lease_id(), request.fencing_token())) return refused(request.lease_id());
      held_->set_phase(tended::v1::LEASE_PHASE_DISRUPTING);
      tended::v1::BeginDisruptionResponse response;
      *response.mutable_lease() = *held_;
      return response;
    };
    client_.release_lease.otherwise = [this, holds,
                                       refused](const tended::v1::ReleaseLeaseRequest& request)
        -> absl::StatusOr<tended::v1::ReleaseLeaseResponse> {
      if (!holds(request.lease_id(), request.fencing_token())) return refused(request.lease_id());
      held_->set_phase(tended::v1::LEASE_PHASE_RELEASED);
      tended::v1::ReleaseLeaseResponse response;
      *response.mutable_lease() = *held_;
      held_.reset();
      return response;
    };
    client_.report_step.otherwise = [this, holds,
                                     refused](const tended::v1::ReportStepRequest& request)
        -> absl::StatusOr<tended::v1::ReportStepResponse> {
      if (!holds(request.lease_id(), request.fencing_token())) return refused(request.lease_id());
      tended::v1::ReportStepResponse response;
      *response.mutable_lease() = *held_;
      return response;
    };
  }

  std::string StatePath(const std::string& name) const {
    return root_.Resolve(absl::StrCat(config_.state_dir, "/", name));
  }
  // The journal as on disk.
  tended::state::v1::AgentState JournalOnDisk() const {
    tended::state::v1::AgentState journal;
    EXPECT_TRUE(ReadProtoJsonFile(StatePath("agent-state.json"), &journal).ok());
    return journal;
  }

  tended::testing::TempDir dir_;
  RootPath root_;
  AgentConfig config_;
  tended::testing::FakeClock clock_;
  tended::testing::ScriptedCoordinatorClient client_;
  tended::testing::FakeRebooter rebooter_;
  tended::testing::FakePackageManager packages_;
  AptPlanStatus plan_status_;
  // What the scripted coordinator holds, after CoordinatorHolds().
  std::optional<tended::v1::Lease> held_;
};

}  // namespace tended::agent

#endif  // TENDED_TESTS_UNIT_AGENT_AGENT_FIXTURE_H_
