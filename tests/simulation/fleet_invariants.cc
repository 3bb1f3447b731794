// The simulation's checks of the one promise (DESIGN.md): at the moment of every reboot
// (a current lease proven by its fencing token, no gate saying no, never two reboots
// under one lease, never more rebooted nodes than the concurrency by the nodes' own
// ground truth) and after every step (the lease list, and the event log replayed from
// outside: grants, adoptions, releases only after verification).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/proto_time.h"
#include "coordinator/gates/window.h"
#include "coordinator/state/embedded_ledger.h"
#include "tests/simulation/simulated_fleet.h"

namespace tended::simulation {

using ::tended::coordinator::LeasePolicy;
using ::tended::v1::Lease;

void Fleet::BeforeReboot(size_t index) {
  SimNode& node = nodes_[index];
  Trace(absl::StrCat(node.name, " reboots"));
  ++node.reboots;
  ++stats_.reboots;
  if (node.agent == nullptr) {
    Fail(absl::StrCat(node.name, " rebooted with no agent running"));
    return;
  }
  const auto& journal = node.agent->journal();
  if (!journal.has_lease()) {
    Fail(absl::StrCat(node.name, " rebooted with no lease in its journal"));
    return;
  }
  if (journal.step() != "reboot") {
    Fail(absl::StrCat(node.name, " rebooted without journaling the step first"));
  }
  if (!PathExists(node.root.Resolve(kSentinel))) {
    Fail(absl::StrCat(node.name, " rebooted though no reboot was required"));
  }
  if (coordinator() == nullptr) {
    Fail(absl::StrCat(node.name, " rebooted while the coordinator was down"));
    return;
  }
  const Lease* current = nullptr;
  std::vector<Lease> active = ActiveLeases();
  for (const Lease& lease : active) {
    if (lease.node_name() == node.name) current = &lease;
  }
  if (current == nullptr) {
    Fail(absl::StrCat(node.name, " rebooted under ", journal.lease().id(),
                      " but the coordinator has no active lease for it"));
    return;
  }
  if (current->fencing_token() != journal.lease().fencing_token() ||
      current->id() != journal.lease().id()) {
    Fail(absl::StrCat(node.name, " rebooted with token ", journal.lease().fencing_token(), " (",
                      journal.lease().id(), ") but the current lease is ", current->id(),
                      " with token ", current->fencing_token()));
  }
  if (current->phase() != tended::v1::LEASE_PHASE_DISRUPTING) {
    Fail(absl::StrCat(node.name, " rebooted under ", current->id(), " in phase ",
                      tended::v1::LeasePhase_Name(current->phase())));
  }
  if (!rebooted_leases_.insert(current->id()).second) {
    Fail(absl::StrCat(node.name, " rebooted twice under ", current->id()));
  }
  if (!node.rebooted_under.empty()) {
    Fail(absl::StrCat(node.name, " rebooted under ", current->id(), " while ", node.rebooted_under,
                      " from its last reboot was still held"));
  }
  // The nodes' own ground truth, whatever the coordinator remembers (a lost state too):
  // the nodes that rebooted and were not yet released.
  int disrupted_by_truth = 1;
  for (const SimNode& other : nodes_) {
    if (&other != &node && !other.rebooted_under.empty()) ++disrupted_by_truth;
  }
  if (disrupted_by_truth > options_.concurrency) {
    Fail(absl::StrCat(node.name, " rebooted while ", disrupted_by_truth - 1,
                      " other nodes were rebooted and not yet released, concurrency ",
                      options_.concurrency));
  }
  // No disruption while a gate says no: the act itself, not only the grant.
  // The coordinator's own view of the halt (an operator's call that got no answer may
  // or may not have taken effect, as with any store).
  tended::v1::ExplainGatesRequest explain;
  explain.set_kind(tended::v1::LEASE_KIND_REBOOT);
  if (auto gates = coordinator()->ExplainGates(explain);
      gates.ok() && gates->explanations_size() == 1) {
    for (const auto& gate : gates->explanations(0).gates()) {
      if (gate.gate() == "halt" && gate.verdict() == tended::v1::GATE_VERDICT_BLOCK) {
        Fail(absl::StrCat(node.name, " rebooted while the fleet was halted: ", gate.reason()));
      }
    }
  }
  if (alerts_->mode() != ScriptedAlertSource::Mode::kQuiet) {
    Fail(absl::StrCat(node.name, " rebooted while an alert fired or Prometheus was broken"));
  }
  const LeasePolicy& policy = config_.leases.at(tended::v1::LEASE_KIND_REBOOT);
  // The last fence check comes reboot.delay before the act: the window must have admitted
  // the step then.
  if (!coordinator::EvaluateWindows(policy.windows, policy.expected_duration,
                                    clock_.Now() - kRebootDelay)
           .open &&
      !coordinator::EvaluateWindows(policy.windows, policy.expected_duration, clock_.Now()).open) {
    Fail(absl::StrCat(node.name, " rebooted outside the maintenance window"));
  }
  node.rebooted_under = current->id();
  node.rebooted_at = clock_.Now();
}

void Fleet::CheckInvariants() {
  if (harness_->running() && harness_->ledger_failed()) {
    ++stats_.ledger_failures;
    Trace("the state ledger failed: the coordinator restarts from disk");
    StopCoordinator();
    StartCoordinator();
  }
  const int limit = options_.concurrency;
  std::vector<Lease> all = AllLeases();
  std::map<std::string, const Lease*> by_id;
  std::set<std::string> holders;
  int active = 0;
  for (const Lease& lease : all) {
    by_id[lease.id()] = &lease;
    if (!coordinator::state::IsActive(lease)) continue;
    ++active;
    if (!holders.insert(lease.node_name()).second) {
      Fail(absl::StrCat(lease.node_name(), " holds two active leases"));
    }
  }
  stats_.max_active = std::max(stats_.max_active, active);
  // (a) the lease list.
  if (active > limit) {
    Fail(absl::StrCat(active, " active leases, concurrency ", limit));
  }
  // (c) the event log, replayed from outside.
  if (coordinator() != nullptr) CheckEventLog(limit);
  // A node that rebooted keeps its lease until it is released, after verification or
  // by an operator.
  for (SimNode& node : nodes_) {
    if (node.rebooted_under.empty()) continue;
    auto it = by_id.find(node.rebooted_under);
    if (it == by_id.end()) {
      if (state_lost_at_ < node.rebooted_at) {
        Fail(absl::StrCat(node.name, " rebooted under ", node.rebooted_under,
                          ", which the coordinator forgot"));
      } else if (node.agent != nullptr &&
                 (!node.agent->journal().has_lease() ||
                  node.agent->journal().lease().id() != node.rebooted_under)) {
        // Lost with the state and with the agent's journal: nobody holds it any more,
        // and the node is back.
        node.rebooted_under.clear();
      }
      continue;
    }
    if (!coordinator::state::IsActive(*it->second)) {
      if (coordinator() != nullptr && replay_.active.count(node.rebooted_under) == 0) {
        node.rebooted_under.clear();
      }
    }
  }
}

void Fleet::CheckEventLog(int limit) {
  for (int page = 0; page < 100; ++page) {
    tended::v1::ListEventsRequest request;
    request.set_after_sequence(replay_.last_sequence);
    request.set_limit(1000);
    auto response = coordinator()->ListEvents(request);
    if (!response.ok()) {
      Fail(absl::StrCat("ListEvents: ", response.status().ToString()));
      return;
    }
    if (response->events().empty()) return;
    for (const tended::v1::Event& event : response->events()) {
      if (event.sequence() != replay_.last_sequence + 1) {
        Fail(absl::StrCat("event ", event.sequence(), " follows ", replay_.last_sequence));
      }
      replay_.last_sequence = event.sequence();
      const std::string& id = event.lease_id();
      if (std::getenv("TENDED_SIM_EVENTS") != nullptr) {
        std::fprintf(stderr, "event %llu %s %s %s token %llu disrupted %u: %s\n",
                     static_cast<unsigned long long>(event.sequence()),
                     tended::v1::EventType_Name(event.type()).c_str(), event.node_name().c_str(),
                     id.c_str(), static_cast<unsigned long long>(event.fencing_token()),
                     event.disrupted_nodes(), event.message().c_str());
      }
      switch (event.type()) {
        case tended::v1::EVENT_TYPE_LEASE_GRANTED:
          if (event.fencing_token() <= replay_.last_token) {
            Fail(absl::StrCat("grant of ", id, " with token ", event.fencing_token(),
                              " after token ", replay_.last_token));
          }
          replay_.last_token = event.fencing_token();
          for (const auto& [other, node] : replay_.active) {
            if (node == event.node_name()) {
              Fail(absl::StrCat("grant of ", id, " while ", other, " is held by ", node));
            }
          }
          replay_.active[id] = event.node_name();
          CheckGrantPassedGates(event);
          break;
        case tended::v1::EVENT_TYPE_LEASE_ADOPTED:
          // A coordinator that lost its state took the lease over from its holder.
          for (const auto& [other, node] : replay_.active) {
            if (node == event.node_name()) {
              Fail(absl::StrCat("adoption of ", id, " while ", other, " is held by ", node));
            }
          }
          replay_.active[id] = event.node_name();
          replay_.last_token = std::max(replay_.last_token, event.fencing_token());
          if (event.lease_phase() != tended::v1::LEASE_PHASE_GRANTED) {
            replay_.disrupting.insert(id);
          }
          break;
        case tended::v1::EVENT_TYPE_HALTED:
          replay_.halted = true;
          break;
        case tended::v1::EVENT_TYPE_RESUMED:
          replay_.halted = false;
          break;
        case tended::v1::EVENT_TYPE_LEASE_PHASE_CHANGED:
          if (replay_.active.count(id) == 0) {
            Fail(absl::StrCat("phase change of ", id, ", which is not active"));
          }
          if (event.lease_phase() == tended::v1::LEASE_PHASE_DISRUPTING) {
            replay_.disrupting.insert(id);
          } else if (event.lease_phase() == tended::v1::LEASE_PHASE_VERIFYING) {
            replay_.verifying.insert(id);
          }
          break;
        default:
          break;
      }
      if (event.type() == tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED) {
        // A coordinator that loses its state may adopt it again from a holder that never
        // heard of the release: that second life ends without saying anything new.
        force_released_.insert(id);
      }
      if (!id.empty() && event.lease_phase() == tended::v1::LEASE_PHASE_RELEASED) {
        if (replay_.active.erase(id) == 0) {
          Fail(absl::StrCat("release of ", id, ", which is not active"));
        }
        // A disruption ended (verified, or force-released once begun): the soak starts.
        if (replay_.verifying.count(id) > 0 ||
            (event.type() == tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED &&
             replay_.disrupting.count(id) > 0)) {
          replay_.last_disruption_end = FromProtoTimestamp(event.time());
        }
        // Short of an operator's force-release, a lease ends after verification, or is
        // given back before any disruption: never a disrupted lease that did not verify.
        if (event.type() != tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED) {
          const bool rebooted =
              rebooted_leases_.count(id) > 0 || power_cycled_leases_.count(id) > 0;
          if (rebooted && replay_.verifying.count(id) == 0 && force_released_.count(id) == 0) {
            Fail(absl::StrCat(id, " was released without verification after its reboot"));
          }
          // Given back after it began is fine only if the node never rebooted under it.
          if (!rebooted && replay_.disrupting.count(id) > 0 &&
              event.type() != tended::v1::EVENT_TYPE_LEASE_RETURNED) {
            Fail(absl::StrCat(id, " began a disruption, never rebooted, and was released"));
          }
          if (rebooted && event.type() == tended::v1::EVENT_TYPE_LEASE_RETURNED &&
              force_released_.count(id) == 0) {
            Fail(absl::StrCat(id, " was returned although its node rebooted under it"));
          }
        }
      }
      if (event.disrupted_nodes() != replay_.active.size()) {
        Fail(absl::StrCat("event ", event.sequence(), " says ", event.disrupted_nodes(),
                          " disrupted nodes; its log replayed says ", replay_.active.size()));
      }
      if (event.disrupted_nodes() > static_cast<uint32_t>(limit)) {
        Fail(absl::StrCat("event ", event.sequence(), " records ", event.disrupted_nodes(),
                          " disrupted nodes, concurrency ", limit));
      }
    }
  }
}

void Fleet::CheckGrantPassedGates(const tended::v1::Event& grant) {
  const absl::Time at = FromProtoTimestamp(grant.time());
  const LeasePolicy& policy = config_.leases.at(tended::v1::LEASE_KIND_REBOOT);
  if (replay_.halted) Fail(absl::StrCat(grant.lease_id(), " granted while halted"));
  if (at < replay_.last_disruption_end + policy.soak) {
    Fail(absl::StrCat(grant.lease_id(), " granted ",
                      absl::FormatDuration(at - replay_.last_disruption_end),
                      " after the last disruption ended, inside the soak"));
  }
  if (!coordinator::EvaluateWindows(policy.windows, policy.expected_duration, at).open) {
    Fail(absl::StrCat(grant.lease_id(), " granted outside the maintenance window"));
  }
}

}  // namespace tended::simulation
