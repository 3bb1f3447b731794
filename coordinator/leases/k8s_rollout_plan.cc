#include "coordinator/leases/k8s_rollout_plan.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/debian_version.h"
#include "common/k8s_steps.h"
#include "common/proto_time.h"
#include "coordinator/gates/core_gates.h"
#include "coordinator/gates/window.h"

namespace tended::coordinator {
namespace {

using tended::v1::K8sNodeRole;
using tended::v1::K8sRollout;
using tended::v1::K8sRolloutNode;
using tended::v1::K8sRolloutStage;
using tended::v1::K8sStepKind;
using tended::v1::PreflightCheck;

PreflightCheck Check(std::string name, bool pass, std::string reason) {
  PreflightCheck check;
  check.set_name(std::move(name));
  check.set_pass(pass);
  check.set_reason(std::move(reason));
  return check;
}

const tended::v1::K8sNodeFacts* K8sFacts(const state::FleetState& state, const std::string& node) {
  const state::NodeEntry* entry = state.FindNode(node);
  if (entry == nullptr || !entry->reported_since_start() || !entry->facts.has_k8s()) {
    return nullptr;
  }
  return &entry->facts.k8s();
}

void AddStep(tended::v1::K8sUpgradeWork& work, K8sStepKind kind, const std::string& target,
             const std::string& containerd = "") {
  tended::v1::K8sStep* step = work.add_steps();
  step->set_kind(kind);
  step->set_target_version(target);
  if (!containerd.empty()) step->set_containerd_version(containerd);
}

bool IsControlPlane(K8sNodeRole role) {
  return role == tended::v1::K8S_NODE_ROLE_FIRST_CONTROL_PLANE ||
         role == tended::v1::K8S_NODE_ROLE_CONTROL_PLANE;
}

std::vector<std::string> Ordered(std::vector<std::string> names,
                                 const std::vector<std::string>& order) {
  std::sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
    auto ia = std::find(order.begin(), order.end(), a);
    auto ib = std::find(order.begin(), order.end(), b);
    if (ia != ib) return ia < ib;
    return a < b;
  });
  return names;
}

constexpr char kDeprecatedApisMetricName[] = "apiserver_requested_deprecated_apis";

// "1.32" (also "v1.32" or "1.32.0") as (major, minor); nullopt for anything else.
std::optional<std::pair<int, int>> ParseMinorRelease(absl::string_view text) {
  absl::ConsumePrefix(&text, "v");
  std::vector<absl::string_view> parts = absl::StrSplit(text, '.');
  if (parts.size() != 2 && parts.size() != 3) return std::nullopt;
  int numbers[3] = {0, 0, 0};
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].empty() || parts[i].size() > 4 ||
        !std::all_of(parts[i].begin(), parts[i].end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    if (!absl::SimpleAtoi(parts[i], &numbers[i])) return std::nullopt;
  }
  return std::make_pair(numbers[0], numbers[1]);
}

// Server text made safe for a message: printable ASCII, at most `max_bytes`.
std::string Printable(absl::string_view text, size_t max_bytes = 64) {
  std::string out;
  for (char c : text.substr(0, max_bytes)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (text.size() > max_bytes) out += "...";
  return out;
}

}  // namespace

int K8sLeaseCount(K8sNodeRole role) { return IsControlPlane(role) ? 2 : 1; }

bool K8sStageSelected(const K8sRollout& rollout, K8sRolloutStage stage) {
  if (rollout.stages().empty()) return true;
  return std::find(rollout.stages().begin(), rollout.stages().end(), stage) !=
         rollout.stages().end();
}

K8sRolloutStage K8sNodeStage(K8sNodeRole role) {
  switch (role) {
    case tended::v1::K8S_NODE_ROLE_FIRST_CONTROL_PLANE:
      return tended::v1::K8S_ROLLOUT_STAGE_FIRST_CONTROL_PLANE;
    case tended::v1::K8S_NODE_ROLE_CONTROL_PLANE:
      return tended::v1::K8S_ROLLOUT_STAGE_OTHER_CONTROL_PLANES;
    default:
      return tended::v1::K8S_ROLLOUT_STAGE_WORKERS;
  }
}

K8sRolloutStage K8sStepStage(K8sStepKind step, K8sNodeRole role) {
  switch (step) {
    case tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT:
      return tended::v1::K8S_ROLLOUT_STAGE_ETCD_SNAPSHOT;
    case tended::v1::K8S_STEP_KIND_CONTAINERD_FIX:
      return tended::v1::K8S_ROLLOUT_STAGE_RUNTIME_FIX;
    case tended::v1::K8S_STEP_KIND_APT_SOURCE_SWITCH:
      return tended::v1::K8S_ROLLOUT_STAGE_APT_SOURCE;
    default:
      return K8sNodeStage(role);
  }
}

std::string K8sStageName(K8sRolloutStage stage) {
  switch (stage) {
    case tended::v1::K8S_ROLLOUT_STAGE_PREFLIGHT:
      return "preflight";
    case tended::v1::K8S_ROLLOUT_STAGE_ETCD_SNAPSHOT:
      return "etcd_snapshot";
    case tended::v1::K8S_ROLLOUT_STAGE_RUNTIME_FIX:
      return "runtime_fix";
    case tended::v1::K8S_ROLLOUT_STAGE_APT_SOURCE:
      return "apt_source";
    case tended::v1::K8S_ROLLOUT_STAGE_FIRST_CONTROL_PLANE:
      return "first_control_plane";
    case tended::v1::K8S_ROLLOUT_STAGE_OTHER_CONTROL_PLANES:
      return "other_control_planes";
    case tended::v1::K8S_ROLLOUT_STAGE_WORKERS:
      return "workers";
    case tended::v1::K8S_ROLLOUT_STAGE_POSTFLIGHT:
      return "postflight";
    default:
      return "unspecified";
  }
}

std::string K8sRolloutStateName(tended::v1::K8sRolloutState state) {
  switch (state) {
    case tended::v1::K8S_ROLLOUT_STATE_RUNNING:
      return "RUNNING";
    case tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED:
      return "SUCCEEDED";
    case tended::v1::K8S_ROLLOUT_STATE_FAILED:
      return "FAILED";
    case tended::v1::K8S_ROLLOUT_STATE_CANCELLING:
      return "CANCELLING";
    case tended::v1::K8S_ROLLOUT_STATE_CANCELLED:
      return "CANCELLED";
    default:
      return "UNSPECIFIED";
  }
}

std::string K8sNodeProgressName(tended::v1::K8sNodeProgress progress) {
  switch (progress) {
    case tended::v1::K8S_NODE_PROGRESS_PENDING:
      return "PENDING";
    case tended::v1::K8S_NODE_PROGRESS_WAITING:
      return "WAITING";
    case tended::v1::K8S_NODE_PROGRESS_UPGRADING:
      return "UPGRADING";
    case tended::v1::K8S_NODE_PROGRESS_SOAKING:
      return "SOAKING";
    case tended::v1::K8S_NODE_PROGRESS_DONE:
      return "DONE";
    case tended::v1::K8S_NODE_PROGRESS_FAILED:
      return "FAILED";
    case tended::v1::K8S_NODE_PROGRESS_SKIPPED:
      return "SKIPPED";
    default:
      return "UNSPECIFIED";
  }
}

absl::StatusOr<std::vector<K8sRolloutNode>> OrderK8sRolloutNodes(const state::FleetState& state,
                                                                 const LeasePolicy& policy) {
  std::vector<std::string> control_planes;
  std::vector<std::string> workers;
  for (const auto& [name, entry] : state.nodes()) {
    const tended::v1::K8sNodeFacts* facts = K8sFacts(state, name);
    const bool listed_cp =
        std::find(policy.control_plane_order.begin(), policy.control_plane_order.end(), name) !=
        policy.control_plane_order.end();
    if ((facts != nullptr && facts->control_plane()) || (facts == nullptr && listed_cp)) {
      control_planes.push_back(name);
    } else {
      workers.push_back(name);
    }
  }
  if (control_planes.empty()) {
    return absl::FailedPreconditionError(
        "no node reports a control plane (an agent with its k8s section enabled on a node "
        "with /etc/kubernetes/manifests/kube-apiserver.yaml)");
  }
  std::vector<K8sRolloutNode> nodes;
  bool first = true;
  for (const std::string& name : Ordered(control_planes, policy.control_plane_order)) {
    K8sRolloutNode node;
    node.set_node_name(name);
    node.set_role(first ? tended::v1::K8S_NODE_ROLE_FIRST_CONTROL_PLANE
                        : tended::v1::K8S_NODE_ROLE_CONTROL_PLANE);
    node.set_progress(tended::v1::K8S_NODE_PROGRESS_PENDING);
    nodes.push_back(std::move(node));
    first = false;
  }
  for (const std::string& name : Ordered(workers, policy.worker_order)) {
    K8sRolloutNode node;
    node.set_node_name(name);
    node.set_role(tended::v1::K8S_NODE_ROLE_WORKER);
    node.set_progress(tended::v1::K8S_NODE_PROGRESS_PENDING);
    nodes.push_back(std::move(node));
  }
  return nodes;
}

absl::StatusOr<KubeVersion> RunningK8sVersion(const state::FleetState& state,
                                              const std::vector<K8sRolloutNode>& nodes) {
  if (nodes.empty()) return absl::FailedPreconditionError("no nodes");
  const std::string& first = nodes.front().node_name();
  const tended::v1::K8sNodeFacts* facts = K8sFacts(state, first);
  if (facts == nullptr || facts->kubelet_version().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the first control plane ", first,
                     " has not reported its kubelet version since the coordinator started"));
  }
  absl::StatusOr<KubeVersion> running = ParseReportedVersion(facts->kubelet_version());
  if (!running.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(first, ": ", running.status().message()));
  }
  return running;
}

std::string WorkersContainerdVersion(const state::FleetState& state,
                                     const std::vector<K8sRolloutNode>& nodes) {
  std::string newest;
  for (const K8sRolloutNode& node : nodes) {
    if (node.role() != tended::v1::K8S_NODE_ROLE_WORKER) continue;
    const tended::v1::K8sNodeFacts* facts = K8sFacts(state, node.node_name());
    if (facts == nullptr || facts->containerd_version().empty()) continue;
    if (newest.empty() || CompareDebianVersions(facts->containerd_version(), newest) > 0) {
      newest = facts->containerd_version();
    }
  }
  return newest;
}

tended::v1::K8sUpgradeWork K8sWorkFor(const K8sRollout& rollout, const K8sRolloutNode& node,
                                      const state::FleetState& state) {
  tended::v1::K8sUpgradeWork work;
  work.set_rollout_id(rollout.id());
  work.set_role(node.role());
  work.set_target_version(rollout.target_version());
  const std::string& target = rollout.target_version();
  const bool minor = rollout.kind() == tended::v1::K8S_UPGRADE_KIND_MINOR;
  const bool node_stage = K8sStageSelected(rollout, K8sNodeStage(node.role()));
  const bool apt_source =
      minor && K8sStageSelected(rollout, tended::v1::K8S_ROLLOUT_STAGE_APT_SOURCE);
  if (IsControlPlane(node.role())) {
    if (node.leases_done() == 0) {
      work.set_drain(false);
      if (node.role() == tended::v1::K8S_NODE_ROLE_FIRST_CONTROL_PLANE &&
          K8sStageSelected(rollout, tended::v1::K8S_ROLLOUT_STAGE_ETCD_SNAPSHOT)) {
        AddStep(work, tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT, target);
      }
      if (K8sStageSelected(rollout, tended::v1::K8S_ROLLOUT_STAGE_RUNTIME_FIX)) {
        std::vector<K8sRolloutNode> nodes(rollout.nodes().begin(), rollout.nodes().end());
        const std::string wanted = WorkersContainerdVersion(state, nodes);
        const tended::v1::K8sNodeFacts* facts = K8sFacts(state, node.node_name());
        if (!wanted.empty() && facts != nullptr && !facts->containerd_version().empty() &&
            CompareDebianVersions(facts->containerd_version(), wanted) < 0) {
          AddStep(work, tended::v1::K8S_STEP_KIND_CONTAINERD_FIX, target, wanted);
        }
      }
      if (apt_source) AddStep(work, tended::v1::K8S_STEP_KIND_APT_SOURCE_SWITCH, target);
      if (node_stage) {
        AddStep(work, tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE, target);
        if (node.role() == tended::v1::K8S_NODE_ROLE_FIRST_CONTROL_PLANE) {
          AddStep(work, tended::v1::K8S_STEP_KIND_KUBEADM_PLAN, target);
          AddStep(work, tended::v1::K8S_STEP_KIND_KUBEADM_APPLY, target);
        } else {
          AddStep(work, tended::v1::K8S_STEP_KIND_KUBEADM_NODE, target);
        }
      }
    } else if (node.leases_done() == 1 && node_stage) {
      work.set_drain(true);
      AddStep(work, tended::v1::K8S_STEP_KIND_KUBELET_PACKAGES, target);
      AddStep(work, tended::v1::K8S_STEP_KIND_KUBELET_RESTART, target);
    }
    return work;
  }
  if (node.leases_done() == 0) {
    work.set_drain(true);
    if (apt_source) AddStep(work, tended::v1::K8S_STEP_KIND_APT_SOURCE_SWITCH, target);
    if (node_stage) {
      AddStep(work, tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE, target);
      AddStep(work, tended::v1::K8S_STEP_KIND_KUBEADM_NODE, target);
      AddStep(work, tended::v1::K8S_STEP_KIND_KUBELET_PACKAGES, target);
      AddStep(work, tended::v1::K8S_STEP_KIND_KUBELET_RESTART, target);
    }
    // Only a source switch: no drain needed for it.
    if (!node_stage) work.set_drain(false);
  }
  return work;
}

bool K8sNodeAtTarget(const state::FleetState& state, const std::string& node,
                     const KubeVersion& target) {
  const tended::v1::K8sNodeFacts* facts = K8sFacts(state, node);
  return facts != nullptr && PackageVersionIs(facts->kubeadm_version(), target) &&
         PackageVersionIs(facts->kubelet_version(), target) &&
         PackageVersionIs(facts->kubectl_version(), target);
}

PreflightCheck DeprecatedApiCheck(const DeprecatedApiReading* reading, const KubeVersion& target) {
  const std::string target_minor = absl::StrCat(target.major, ".", target.minor);
  if (reading == nullptr) {
    return Check("deprecated_apis", true,
                 absl::StrCat("skipped: no Prometheus is configured (alerts.prometheus_url), so "
                              "nobody can tell whether a client still uses an API that ",
                              target_minor, " removes"));
  }
  if (!reading->status.ok()) {
    return Check(
        "deprecated_apis", false,
        absl::StrCat("cannot read ", kDeprecatedApisMetricName, ", so the APIs that ", target_minor,
                     " removes cannot be ruled out: ", reading->status.message()));
  }
  std::set<std::string> removed;
  std::set<std::string> unreadable;
  for (const DeprecatedApiSeries& series : reading->series) {
    if (series.value != 1 || series.removed_release.empty()) continue;
    const std::string api = Printable(
        absl::StrCat(series.group.empty() ? "" : absl::StrCat(series.group, "/"), series.version,
                     "/", series.resource,
                     series.subresource.empty() ? "" : absl::StrCat("/", series.subresource)),
        160);
    std::optional<std::pair<int, int>> release = ParseMinorRelease(series.removed_release);
    if (!release.has_value()) {
      unreadable.insert(
          absl::StrCat(api, " (removed_release \"", Printable(series.removed_release), "\")"));
      continue;
    }
    if (*release <= std::make_pair(target.major, target.minor)) {
      removed.insert(absl::StrCat(api, " (removed in ", release->first, ".", release->second, ")"));
    }
  }
  if (removed.empty() && unreadable.empty()) {
    return Check("deprecated_apis", true,
                 absl::StrCat("no API that ", target_minor, " removes was requested (",
                              reading->series.size(), " deprecated-API series read from ",
                              reading->source, " at ", FormatUtcTime(reading->fetched_at), ")"));
  }
  std::string reason;
  if (!removed.empty()) {
    reason = absl::StrCat(removed.size(), removed.size() == 1 ? " API" : " APIs",
                          " still in use would be gone after the upgrade to ", target_minor, ": ",
                          JoinCapped({removed.begin(), removed.end()}),
                          "; move their clients to the replacement APIs first");
  }
  if (!unreadable.empty()) {
    absl::StrAppend(&reason, reason.empty() ? "" : "; ", "unreadable removal releases: ",
                    JoinCapped({unreadable.begin(), unreadable.end()}));
  }
  absl::StrAppend(&reason, " (", kDeprecatedApisMetricName, " from ", reading->source, " at ",
                  FormatUtcTime(reading->fetched_at), ")");
  return Check("deprecated_apis", false, reason);
}

std::vector<PreflightCheck> K8sPreflight(const K8sRollout& rollout, const state::FleetState& state,
                                         const std::vector<GateOutcome>& fleet_gates,
                                         const KubeVersion& target,
                                         const DeprecatedApiReading* deprecated_apis) {
  std::vector<PreflightCheck> checks;
  for (const GateOutcome& gate : fleet_gates) {
    if (gate.gate == "window" || gate.gate == "concurrency" || gate.gate == "waiting_node" ||
        gate.gate == "policy") {
      continue;  // Each lease is gated by these when its turn comes.
    }
    checks.push_back(Check(gate.gate, gate.pass, gate.reason));
  }
  std::vector<std::string> missing;
  std::map<std::string, KubeVersion> kubelets;
  std::vector<std::string> unparsable;
  for (const K8sRolloutNode& node : rollout.nodes()) {
    const tended::v1::K8sNodeFacts* facts = K8sFacts(state, node.node_name());
    if (facts == nullptr || facts->kubelet_version().empty()) {
      missing.push_back(node.node_name());
      continue;
    }
    absl::StatusOr<KubeVersion> kubelet = ParseReportedVersion(facts->kubelet_version());
    if (!kubelet.ok()) {
      unparsable.push_back(absl::StrCat(node.node_name(), " (", facts->kubelet_version(), ")"));
      continue;
    }
    kubelets[node.node_name()] = *kubelet;
  }
  checks.push_back(
      missing.empty() && unparsable.empty()
          ? Check("k8s_facts", true,
                  absl::StrCat("all ", rollout.nodes_size(),
                               " nodes report their Kubernetes packages"))
          : Check("k8s_facts", false,
                  absl::StrCat(missing.empty() ? ""
                                               : absl::StrCat("no Kubernetes facts since the "
                                                              "coordinator started from ",
                                                              JoinCapped(missing)),
                               missing.empty() || unparsable.empty() ? "" : "; ",
                               unparsable.empty() ? ""
                                                  : absl::StrCat("unreadable kubelet versions: ",
                                                                 JoinCapped(unparsable)))));
  absl::Status skew = CheckKubeletSkew(target, kubelets);
  checks.push_back(skew.ok() ? Check("skew", true,
                                     absl::StrCat("every kubelet within ", kMaxKubeletMinorsBehind,
                                                  " minors below ", target.ToString()))
                             : Check("skew", false, std::string(skew.message())));
  const std::string& first = rollout.nodes().empty() ? "" : rollout.nodes(0).node_name();
  const tended::v1::K8sNodeFacts* cp = K8sFacts(state, first);
  if (cp == nullptr || !cp->has_checked_time()) {
    checks.push_back(
        Check("target_available", false,
              absl::StrCat("the first control plane ", first, " has not run a version check yet")));
  } else if (rollout.kind() == tended::v1::K8S_UPGRADE_KIND_MINOR) {
    const std::string minor = absl::StrCat(target.major, ".", target.minor);
    const bool available = cp->next_minor_available() && cp->next_minor() == minor;
    checks.push_back(Check(
        "target_available", available,
        available
            ? absl::StrCat("the v", minor, " repository answered at ",
                           FormatUtcTime(FromProtoTimestamp(cp->checked_time())))
            : absl::StrCat("the v", minor, " repository was not found by ", first,
                           "'s last check (", FormatUtcTime(FromProtoTimestamp(cp->checked_time())),
                           cp->check_error().empty() ? "" : ": ", cp->check_error(), ")")));
  } else {
    bool found = false;
    for (const std::string& candidate : cp->kubeadm_candidates()) {
      found |= PackageVersionIs(candidate, target);
    }
    checks.push_back(
        Check("target_available", found,
              found ? absl::StrCat("kubeadm ", target.ToString(), " is in ", first, "'s apt lists")
                    : absl::StrCat("kubeadm ", target.ToString(), " is not among the ",
                                   cp->kubeadm_candidates_size(), " versions in ", first,
                                   "'s apt lists at its last check")));
  }
  if (rollout.kind() == tended::v1::K8S_UPGRADE_KIND_MINOR) {
    checks.push_back(DeprecatedApiCheck(deprecated_apis, target));
  }
  return checks;
}

std::vector<PreflightCheck> K8sPostflight(const K8sRollout& rollout, const state::FleetState& state,
                                          const GateFacts& facts, const CoordinatorConfig& config,
                                          absl::Time now) {
  std::vector<PreflightCheck> checks;
  absl::StatusOr<KubeVersion> target = ParseTargetVersion(rollout.target_version());
  if (!target.ok()) {
    checks.push_back(Check("versions", false, std::string(target.status().message())));
    return checks;
  }
  std::vector<std::string> behind;
  for (const K8sRolloutNode& node : rollout.nodes()) {
    if (node.progress() != tended::v1::K8S_NODE_PROGRESS_DONE &&
        node.progress() != tended::v1::K8S_NODE_PROGRESS_SKIPPED) {
      behind.push_back(
          absl::StrCat(node.node_name(), " (", K8sNodeProgressName(node.progress()), ")"));
      continue;
    }
    if (!K8sStageSelected(rollout, K8sNodeStage(node.role()))) continue;
    const tended::v1::K8sNodeFacts* k8s = K8sFacts(state, node.node_name());
    if (k8s == nullptr || !PackageVersionIs(k8s->kubelet_version(), *target)) {
      behind.push_back(absl::StrCat(node.node_name(), " (kubelet ",
                                    k8s == nullptr ? "unknown" : k8s->kubelet_version(), ")"));
    }
  }
  if (facts.kube.has_value() && facts.kube->facts != nullptr) {
    for (const kube::NodeInfo& info : facts.kube->facts->nodes) {
      auto it = std::find_if(rollout.nodes().begin(), rollout.nodes().end(),
                             [&](const K8sRolloutNode& n) { return n.node_name() == info.name; });
      if (it == rollout.nodes().end() || !K8sStageSelected(rollout, K8sNodeStage(it->role()))) {
        continue;
      }
      if (info.kubelet_version != target->ToTag()) {
        behind.push_back(
            absl::StrCat(info.name, " (Kubernetes reports ", info.kubelet_version, ")"));
      }
    }
  }
  checks.push_back(
      behind.empty()
          ? Check("versions", true, absl::StrCat("every upgraded node runs ", target->ToString()))
          : Check("versions", false,
                  absl::StrCat("not at ", target->ToString(), ": ", JoinCapped(behind))));
  if (!config.alerts.prometheus_url.empty()) {
    GateOutcome alerts = AlertsGate(facts, config, now);
    checks.push_back(Check("alerts", alerts.pass, alerts.reason));
  }
  const LeasePolicy& policy = config.leases.at(tended::v1::LEASE_KIND_K8S_UPGRADE);
  if (facts.kube.has_value() && facts.kube->facts != nullptr &&
      facts.kube->facts->pods.has_value()) {
    const kube::PodReadiness& pods = *facts.kube->facts->pods;
    const bool ok = pods.Ratio() >= policy.min_pod_ready_ratio;
    checks.push_back(
        Check("pod_ready_ratio", ok,
              absl::StrCat(pods.ready, " of ", pods.counted, " pods Ready (",
                           static_cast<int>(pods.Ratio() * 100), "%, at least ",
                           static_cast<int>(policy.min_pod_ready_ratio * 100), "% needed)")));
  }
  return checks;
}

bool AllChecksPass(const std::vector<PreflightCheck>& checks) {
  return std::all_of(checks.begin(), checks.end(),
                     [](const PreflightCheck& check) { return check.pass(); });
}

std::string DescribeFailedChecks(const std::vector<PreflightCheck>& checks) {
  std::vector<std::string> failed;
  for (const PreflightCheck& check : checks) {
    if (!check.pass()) failed.push_back(absl::StrCat(check.name(), ": ", check.reason()));
  }
  return absl::StrJoin(failed, "; ");
}

std::vector<std::string> K8sPackageWaits(const tended::v1::Lease& lease,
                                         const tended::v1::NodeFacts& facts) {
  std::vector<std::string> waits;
  absl::StatusOr<KubeVersion> target = ParseTargetVersion(lease.k8s_work().target_version());
  if (!target.ok()) {
    waits.push_back(std::string(target.status().message()));
    return waits;
  }
  const tended::v1::K8sNodeFacts& k8s = facts.k8s();
  auto expect = [&](const char* package, const std::string& installed) {
    if (!PackageVersionIs(installed, *target)) {
      waits.push_back(absl::StrCat(package, " is ", installed.empty() ? "not reported" : installed,
                                   ", expected ", target->ToString()));
    }
  };
  for (const tended::v1::K8sStep& step : lease.k8s_work().steps()) {
    switch (step.kind()) {
      case tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE:
        expect("kubeadm", k8s.kubeadm_version());
        break;
      case tended::v1::K8S_STEP_KIND_KUBELET_PACKAGES:
        expect("kubelet", k8s.kubelet_version());
        expect("kubectl", k8s.kubectl_version());
        break;
      case tended::v1::K8S_STEP_KIND_CONTAINERD_FIX:
        if (k8s.containerd_version() != step.containerd_version()) {
          waits.push_back(absl::StrCat("containerd is ", k8s.containerd_version(), ", expected ",
                                       step.containerd_version()));
        }
        break;
      default:
        break;
    }
  }
  return waits;
}

std::vector<std::string> DescribeK8sPlan(const K8sRollout& rollout,
                                         const state::FleetState& state) {
  std::vector<std::string> plan;
  absl::StatusOr<KubeVersion> target = ParseTargetVersion(rollout.target_version());
  for (const K8sRolloutNode& original : rollout.nodes()) {
    if (target.ok() && K8sNodeAtTarget(state, original.node_name(), *target)) {
      plan.push_back(
          absl::StrCat(original.node_name(), ": already at ", target->ToString(), ", skipped"));
      continue;
    }
    K8sRolloutNode node = original;
    for (int lease = 0; lease < K8sLeaseCount(node.role()); ++lease) {
      node.set_leases_done(static_cast<uint32_t>(lease));
      tended::v1::K8sUpgradeWork work = K8sWorkFor(rollout, node, state);
      if (work.steps().empty()) continue;
      std::vector<std::string> steps;
      for (const auto& step : work.steps()) {
        std::string name = K8sStepName(step.kind());
        if (!step.containerd_version().empty())
          absl::StrAppend(&name, " ", step.containerd_version());
        steps.push_back(std::move(name));
      }
      plan.push_back(absl::StrCat(node.node_name(), ": k8s_upgrade lease ", lease + 1, " (",
                                  work.drain() ? "cordon and drain first" : "no drain",
                                  "): ", absl::StrJoin(steps, ", ")));
    }
  }
  return plan;
}

}  // namespace tended::coordinator
