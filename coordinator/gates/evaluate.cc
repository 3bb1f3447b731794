#include "coordinator/gates/evaluate.h"

#include "absl/strings/str_cat.h"
#include "coordinator/gates/core_gates.h"
#include "coordinator/gates/kube_gates.h"
#include "coordinator/gates/window.h"

namespace tended::coordinator {
namespace {

const LeasePolicy* EnabledPolicy(tended::v1::LeaseKind kind, const CoordinatorConfig& config,
                                 std::vector<GateOutcome>& outcomes) {
  auto policy = config.leases.find(kind);
  const std::string name(LeaseKindConfigName(kind));
  if (policy == config.leases.end()) {
    outcomes.push_back(
        BlockGate("policy", absl::StrCat(name, " leases are not configured, so none are granted")));
    return nullptr;
  }
  if (!policy->second.enabled) {
    outcomes.push_back(
        BlockGate("policy", absl::StrCat(name, " leases are disabled in the configuration")));
    return nullptr;
  }
  return &policy->second;
}

}  // namespace

std::vector<GateOutcome> EvaluateFleetGates(tended::v1::LeaseKind kind, const GateFacts& facts,
                                            const CoordinatorConfig& config, absl::Time now) {
  std::vector<GateOutcome> outcomes;
  const LeasePolicy* policy = EnabledPolicy(kind, config, outcomes);
  if (policy == nullptr) return outcomes;
  outcomes = {StateGate(facts),
              HaltGate(facts),
              WindowGate(*policy, now),
              ConcurrencyGate(kind, facts, config),
              SoakGate(*policy, facts, now),
              FleetHealthGate(facts, config, now),
              AlertsGate(facts, config, now)};
  AppendKubernetesGates(*policy, facts, config, now, outcomes);
  return outcomes;
}

std::vector<GateOutcome> RecheckBeforeAct(tended::v1::LeaseKind kind, const GateFacts& facts,
                                          const CoordinatorConfig& config, absl::Time now) {
  std::vector<GateOutcome> outcomes;
  const LeasePolicy* policy = EnabledPolicy(kind, config, outcomes);
  if (policy == nullptr) return outcomes;
  return {StateGate(facts), HaltGate(facts), WindowGate(*policy, now), AlertsGate(facts, config, now),
          FleetHealthGate(facts, config, now)};
}

}  // namespace tended::coordinator
