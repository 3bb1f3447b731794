#include "coordinator/gates/kube_gates.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "coordinator/gates/window.h"

namespace tended::coordinator {
namespace {

// The facts when they are current; otherwise a blocking outcome for `gate`.
const kube::KubeFacts* CurrentFacts(const GateFacts& facts, const std::string& gate,
                                    GateOutcome* blocked) {
  if (!facts.kube.has_value() || !facts.kube->status.ok() || facts.kube->facts == nullptr) {
    *blocked = BlockGate(gate, "no current Kubernetes facts (see the kubernetes gate)");
    return nullptr;
  }
  return &*facts.kube->facts;
}

std::set<std::string> LeaseHolders(const GateFacts& facts) {
  std::set<std::string> holders;
  for (const ActiveLeaseForGates& lease : facts.active_leases) holders.insert(lease.node);
  return holders;
}

}  // namespace

GateOutcome KubernetesApiGate(const GateFacts& facts, const KubernetesConfig& config,
                              absl::Time now) {
  if (!facts.kube.has_value()) {
    return BlockGate("kubernetes", "the Kubernetes API has not been read yet");
  }
  const KubeGateFacts& kube = *facts.kube;
  if (!kube.status.ok()) {
    return BlockGate("kubernetes", absl::StrCat("cannot use the Kubernetes API", kube.source.empty() ? "" : " (",
                                kube.source, kube.source.empty() ? "" : ")", ": ",
                                kube.status.message(), "; no node is disrupted until it answers"));
  }
  if (kube.facts == nullptr) {
    return BlockGate("kubernetes", "the Kubernetes API has not been read yet");
  }
  const absl::Duration age = now - kube.facts->collected_at;
  if (age > config.facts_max_age) {
    return BlockGate("kubernetes", absl::StrCat("the Kubernetes facts are ", FormatDurationForPeople(age), " old (more than ",
                     FormatDurationForPeople(config.facts_max_age), "); waiting for a fresh read"));
  }
  return PassGate("kubernetes", absl::StrCat("the API (", kube.source, ") answers; ", kube.facts->nodes.size(),
                              kube.facts->nodes.size() == 1 ? " node" : " nodes"));
}

GateOutcome NodeReadyGate(const GateFacts& facts) {
  GateOutcome blocked;
  const kube::KubeFacts* current = CurrentFacts(facts, "node_ready", &blocked);
  if (current == nullptr) return blocked;
  const std::set<std::string> holders = LeaseHolders(facts);
  std::vector<std::string> not_ready;
  size_t checked = 0;
  for (const kube::NodeInfo& node : current->nodes) {
    if (holders.count(node.name) > 0) continue;
    ++checked;
    if (node.ready != kube::ConditionStatus::kTrue) {
      not_ready.push_back(absl::StrCat(node.name, " (Ready=", kube::ConditionStatusName(node.ready),
                                       node.ready_reason.empty() ? "" : ", ", node.ready_reason,
                                       ")"));
    }
  }
  std::sort(not_ready.begin(), not_ready.end());
  if (!not_ready.empty()) {
    return BlockGate("node_ready", absl::StrCat(not_ready.size(), not_ready.size() == 1 ? " node is" : " nodes are",
                                " not Ready: ", JoinCapped(not_ready)));
  }
  return PassGate("node_ready", absl::StrCat(checked, checked == 1 ? " node" : " nodes", " Ready",
                              holders.empty() ? "" : " (lease holders not counted)"));
}

GateOutcome ReadySoakGate(const LeasePolicy& policy, const GateFacts& facts, absl::Time now) {
  GateOutcome blocked;
  const kube::KubeFacts* current = CurrentFacts(facts, "ready_soak", &blocked);
  if (current == nullptr) return blocked;
  const std::set<std::string> holders = LeaseHolders(facts);
  const kube::NodeInfo* latest = nullptr;
  for (const kube::NodeInfo& node : current->nodes) {
    if (holders.count(node.name) > 0 || node.ready != kube::ConditionStatus::kTrue) continue;
    if (node.ready_last_transition == absl::InfinitePast()) continue;
    if (latest == nullptr || node.ready_last_transition > latest->ready_last_transition) {
      latest = &node;
    }
  }
  const std::string soak = FormatDurationForPeople(policy.soak);
  if (latest == nullptr) return PassGate("ready_soak", "no Ready transition known");
  const absl::Time soak_end = latest->ready_last_transition + policy.soak;
  if (now < soak_end) {
    GateOutcome outcome =
        BlockGate("ready_soak", absl::StrCat(latest->name, " became Ready at ",
                             FormatUtcTime(latest->ready_last_transition), "; the ", soak,
                             " soak ends at ", FormatUtcTime(soak_end), " (in ",
                             FormatDurationForPeople(soak_end - now), ")"));
    outcome.earliest_pass = soak_end;
    return outcome;
  }
  return PassGate("ready_soak", absl::StrCat("the last node to become Ready (", latest->name, ") did so ",
                              FormatDurationForPeople(now - latest->ready_last_transition),
                              " ago, past the ", soak, " soak period"));
}

GateOutcome CniGate(const GateFacts& facts, const KubernetesConfig& config) {
  GateOutcome blocked;
  const kube::KubeFacts* current = CurrentFacts(facts, "cni", &blocked);
  if (current == nullptr) return blocked;
  if (!current->cni.has_value()) {
    return BlockGate("cni", absl::StrCat("the DaemonSet ", config.cni_daemonset_namespace, "/",
                                config.cni_daemonset_name, " has not been read"));
  }
  std::string reason;
  bool ready = kube::DaemonSetReadyEverywhere(*current->cni, &reason);
  return ready ? PassGate("cni", std::move(reason)) : BlockGate("cni", std::move(reason));
}

GateOutcome PodReadyGate(const GateFacts& facts, const KubernetesConfig& config) {
  GateOutcome blocked;
  const kube::KubeFacts* current = CurrentFacts(facts, "pod_ready", &blocked);
  if (current == nullptr) return blocked;
  if (!current->pods.has_value()) return BlockGate("pod_ready", "pods have not been read");
  const kube::PodReadiness& pods = *current->pods;
  std::string summary =
      absl::StrFormat("%d of %d pods ready (%.1f%%; at least %.1f%% wanted)", pods.ready,
                      pods.counted, pods.Ratio() * 100, config.min_pod_ready_ratio * 100);
  if (pods.Ratio() >= config.min_pod_ready_ratio) return PassGate("pod_ready", std::move(summary));
  return BlockGate("pod_ready", std::move(summary));
}

void AppendKubernetesGates(const LeasePolicy& policy, const GateFacts& facts,
                           const CoordinatorConfig& config, absl::Time now,
                           std::vector<GateOutcome>& outcomes) {
  const KubernetesConfig& kubernetes = config.kubernetes;
  if (!kubernetes.enabled) return;
  outcomes.push_back(KubernetesApiGate(facts, kubernetes, now));
  outcomes.push_back(NodeReadyGate(facts));
  outcomes.push_back(ReadySoakGate(policy, facts, now));
  if (!kubernetes.cni_daemonset_name.empty()) outcomes.push_back(CniGate(facts, kubernetes));
  if (kubernetes.min_pod_ready_ratio > 0) outcomes.push_back(PodReadyGate(facts, kubernetes));
}

}  // namespace tended::coordinator
