#include "coordinator/kube/drainer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace tended::kube {
namespace {

class RealSleeper final : public Sleeper {
 public:
  void Sleep(absl::Duration duration) override {
    if (duration > absl::ZeroDuration()) absl::SleepFor(duration);
  }
};

bool MatchesAll(const PodInfo& pod, const std::map<std::string, std::string>& selector) {
  if (selector.empty()) return false;
  for (const auto& [key, value] : selector) {
    auto it = pod.labels.find(key);
    if (it == pod.labels.end() || it->second != value) return false;
  }
  return true;
}

std::string SelectorText(const std::map<std::string, std::string>& selector) {
  return absl::StrJoin(selector, ",", absl::PairFormatter("="));
}

absl::string_view SkipReason(PodDisposition disposition) {
  switch (disposition) {
    case PodDisposition::kSkipDaemonSet:
      return "DaemonSet";
    case PodDisposition::kSkipMirror:
      return "mirror pod";
    case PodDisposition::kSkipDeleting:
      return "already being deleted";
    default:
      return "";
  }
}

}  // namespace

Sleeper& Sleeper::Real() {
  static RealSleeper* const kSleeper = new RealSleeper();
  return *kSleeper;
}

PodDisposition ClassifyPod(const PodInfo& pod, const DrainOptions& options, absl::Time now,
                           bool daemon_set_exists) {
  if (pod.deletion_timestamp.has_value() &&
      options.skip_wait_for_delete_timeout > absl::ZeroDuration() &&
      now - *pod.deletion_timestamp > options.skip_wait_for_delete_timeout) {
    return PodDisposition::kSkipDeleting;
  }
  if (pod.controller_kind == "DaemonSet" && !pod.IsTerminal()) {
    if (daemon_set_exists) return PodDisposition::kSkipDaemonSet;
    if (!options.force_unmanaged) return PodDisposition::kRefuseOrphanedDaemonSet;
    return PodDisposition::kEvict;
  }
  if (pod.is_mirror) return PodDisposition::kSkipMirror;
  if (pod.has_empty_dir && !pod.IsTerminal() && !options.delete_emptydir_data) {
    return PodDisposition::kRefuseEmptyDir;
  }
  if (pod.controller_kind.empty() && !pod.IsTerminal() && !options.force_unmanaged) {
    return PodDisposition::kRefuseUnmanaged;
  }
  return PodDisposition::kEvict;
}

Drainer::Drainer(KubeClient& client, const Clock& clock, Sleeper& sleeper, DrainOptions options)
    : client_(client), clock_(clock), sleeper_(sleeper), options_(std::move(options)) {}

absl::Status Drainer::SetUnschedulable(const std::string& node, bool value, bool* was_already) {
  std::string patch = absl::StrCat(R"({"spec":{"unschedulable":)", value ? "true" : "false", "}}");
  absl::Status last = absl::OkStatus();
  for (int attempt = 0; attempt <= options_.conflict_retries; ++attempt) {
    ASSIGN_OR_RETURN(NodeInfo current, client_.GetNode(node));
    if (current.unschedulable == value) {
      *was_already = true;
      return absl::OkStatus();
    }
    absl::StatusOr<NodeInfo> patched =
        client_.PatchNodeMerge(node, patch, current.resource_version);
    if (patched.ok()) return absl::OkStatus();
    if (!absl::IsAborted(patched.status())) return patched.status();
    last = patched.status();
    Logger("kube")->info("node {} changed while {}; reading it again", node,
                         value ? "cordoning" : "uncordoning");
  }
  return absl::AbortedError(
      absl::StrCat("node ", node, " kept changing while ", value ? "cordoning" : "uncordoning",
                   " (", options_.conflict_retries + 1, " conflicts): ", last.message()));
}

absl::StatusOr<CordonResult> Drainer::Cordon(const std::string& node) {
  CordonResult result;
  RETURN_IF_ERROR(SetUnschedulable(node, true, &result.was_already_cordoned));
  if (result.was_already_cordoned) {
    Logger("kube")->info("node {} was already cordoned; it will not be uncordoned by us", node);
  } else {
    Logger("kube")->info("cordoned node {}", node);
  }
  ASSIGN_OR_RETURN(result.node, client_.GetNode(node));
  return result;
}

absl::Status Drainer::Uncordon(const std::string& node) {
  bool already = false;
  RETURN_IF_ERROR(SetUnschedulable(node, false, &already));
  Logger("kube")->info("uncordoned node {}", node);
  return absl::OkStatus();
}

absl::Status Drainer::CheckBlockingPods(const std::string& node) {
  if (options_.blocking_pod_selectors.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<PodInfo> pods, client_.ListPodsOnNode(node));
  for (const PodInfo& pod : pods) {
    if (pod.IsTerminal() || pod.deletion_timestamp.has_value()) continue;
    for (const auto& selector : options_.blocking_pod_selectors) {
      if (MatchesAll(pod, selector)) {
        return absl::FailedPreconditionError(absl::StrCat("pod ", pod.FullName(), " on node ", node,
                                                          " matches the blocking-pod selector ",
                                                          SelectorText(selector)));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<DrainReport> Drainer::Drain(const std::string& node) {
  const absl::Time start = clock_.Now();
  const absl::Time deadline = start + options_.timeout;
  auto log = Logger("kube");
  RETURN_IF_ERROR(CheckBlockingPods(node));
  ASSIGN_OR_RETURN(std::vector<PodInfo> pods, client_.ListPodsOnNode(node));

  DrainReport report;
  std::map<std::string, bool> daemon_sets;  // "ns/name" -> exists
  std::vector<std::string> refused_unmanaged, refused_empty_dir, refused_orphans;
  struct Pending {
    PodInfo pod;
    absl::Time next_attempt;
    std::string last_refusal;
  };
  std::map<std::string, Pending> pending;
  for (const PodInfo& pod : pods) {
    bool ds_exists = false;
    if (pod.controller_kind == "DaemonSet" && !pod.IsTerminal()) {
      std::string key = absl::StrCat(pod.namespace_name, "/", pod.controller_name);
      auto it = daemon_sets.find(key);
      if (it == daemon_sets.end()) {
        absl::StatusOr<DaemonSetInfo> ds =
            client_.GetDaemonSet(pod.namespace_name, pod.controller_name);
        if (!ds.ok() && !absl::IsNotFound(ds.status())) return ds.status();
        it = daemon_sets.emplace(key, ds.ok()).first;
      }
      ds_exists = it->second;
    }
    PodDisposition disposition = ClassifyPod(pod, options_, start, ds_exists);
    switch (disposition) {
      case PodDisposition::kEvict:
        pending[pod.FullName()] = Pending{pod, start, ""};
        break;
      case PodDisposition::kSkipDaemonSet:
      case PodDisposition::kSkipMirror:
      case PodDisposition::kSkipDeleting:
        report.skipped.push_back(absl::StrCat(pod.FullName(), " (", SkipReason(disposition), ")"));
        break;
      case PodDisposition::kRefuseEmptyDir:
        refused_empty_dir.push_back(pod.FullName());
        break;
      case PodDisposition::kRefuseUnmanaged:
        refused_unmanaged.push_back(pod.FullName());
        break;
      case PodDisposition::kRefuseOrphanedDaemonSet:
        refused_orphans.push_back(pod.FullName());
        break;
    }
  }
  std::vector<std::string> refusals;
  if (!refused_unmanaged.empty()) {
    refusals.push_back(absl::StrCat("pods without a controller (allow with force_unmanaged): ",
                                    absl::StrJoin(refused_unmanaged, ", ")));
  }
  if (!refused_orphans.empty()) {
    refusals.push_back(
        absl::StrCat("pods of a DaemonSet that no longer exists (allow with force_unmanaged): ",
                     absl::StrJoin(refused_orphans, ", ")));
  }
  if (!refused_empty_dir.empty()) {
    refusals.push_back(absl::StrCat(
        "pods with emptyDir data that would be lost (allow with delete_emptydir_data): ",
        absl::StrJoin(refused_empty_dir, ", ")));
  }
  if (!refusals.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot drain node ", node, ": ", absl::StrJoin(refusals, "; ")));
  }
  log->info("draining node {}: {} pods to evict, {} skipped", node, pending.size(),
            report.skipped.size());

  // Evict, retrying refusals until the deadline.
  std::map<std::string, std::string> waiting;  // "ns/name" -> uid
  int rounds = 0;
  while (!pending.empty()) {
    if (++rounds > options_.max_rounds) {
      return absl::InternalError(
          absl::StrCat("drain of node ", node, " gave up after ", options_.max_rounds, " rounds"));
    }
    absl::Time now = clock_.Now();
    if (now >= deadline) {
      std::vector<std::string> stuck;
      for (const auto& [key, p] : pending) {
        stuck.push_back(p.last_refusal.empty() ? key
                                               : absl::StrCat(key, " (", p.last_refusal, ")"));
      }
      return absl::DeadlineExceededError(absl::StrCat(
          "drain of node ", node, " timed out after ", absl::FormatDuration(options_.timeout),
          "; not evicted: ", absl::StrJoin(stuck, ", ")));
    }
    absl::Time earliest = deadline;
    for (auto it = pending.begin(); it != pending.end();) {
      Pending& p = it->second;
      if (p.next_attempt > now) {
        earliest = std::min(earliest, p.next_attempt);
        ++it;
        continue;
      }
      absl::StatusOr<EvictionResult> result =
          client_.EvictPod(p.pod.namespace_name, p.pod.name, options_.grace_period);
      if (!result.ok()) {
        if (!absl::IsUnavailable(result.status())) return result.status();
        p.last_refusal = std::string(result.status().message());
        p.next_attempt = now + options_.pdb_retry_default;
        earliest = std::min(earliest, p.next_attempt);
        ++it;
        continue;
      }
      switch (result->outcome) {
        case EvictionOutcome::kEvicted:
        case EvictionOutcome::kNamespaceTerminating:
          log->info("evicting pod {} from node {}", it->first, node);
          waiting[it->first] = p.pod.uid;
          it = pending.erase(it);
          continue;
        case EvictionOutcome::kNotFound:
          report.already_gone.push_back(it->first);
          it = pending.erase(it);
          continue;
        case EvictionOutcome::kBlockedByPdb:
          ++report.pdb_refusals;
          p.last_refusal = result->message.empty() ? "PodDisruptionBudget" : result->message;
          p.next_attempt = now + result->retry_after.value_or(options_.pdb_retry_default);
          earliest = std::min(earliest, p.next_attempt);
          log->info("eviction of pod {} refused ({}); retrying at {}", it->first, p.last_refusal,
                    absl::FormatTime(p.next_attempt));
          ++it;
          continue;
        case EvictionOutcome::kTooManyPdbs:
          return absl::FailedPreconditionError(absl::StrCat(
              "cannot evict pod ", it->first, " from node ", node,
              ": more than one PodDisruptionBudget selects it (", result->message, ")"));
        case EvictionOutcome::kForbidden:
          return absl::PermissionDeniedError(
              absl::StrCat("eviction of pod ", it->first, " forbidden: ", result->message));
      }
      ++it;
    }
    if (!pending.empty()) sleeper_.Sleep(std::max(absl::ZeroDuration(), earliest - now));
  }

  // Wait until every evicted pod is gone: 404, or a pod of the same name with another uid.
  while (!waiting.empty()) {
    if (++rounds > options_.max_rounds) {
      return absl::InternalError(
          absl::StrCat("drain of node ", node, " gave up after ", options_.max_rounds, " rounds"));
    }
    for (auto it = waiting.begin(); it != waiting.end();) {
      size_t slash = it->first.find('/');
      absl::StatusOr<PodInfo> pod =
          client_.GetPod(it->first.substr(0, slash), it->first.substr(slash + 1));
      if (absl::IsNotFound(pod.status()) || (pod.ok() && pod->uid != it->second)) {
        report.evicted.push_back(it->first);
        it = waiting.erase(it);
        continue;
      }
      if (!pod.ok() && !absl::IsUnavailable(pod.status())) return pod.status();
      ++it;
    }
    if (waiting.empty()) break;
    absl::Time now = clock_.Now();
    if (now >= deadline) {
      std::vector<std::string> left;
      for (const auto& [key, uid] : waiting) left.push_back(key);
      return absl::DeadlineExceededError(absl::StrCat(
          "drain of node ", node, " timed out after ", absl::FormatDuration(options_.timeout),
          " waiting for evicted pods to terminate: ", absl::StrJoin(left, ", ")));
    }
    sleeper_.Sleep(std::min(options_.poll_interval, deadline - now));
  }
  log->info("drained node {}: {} pods evicted in {}", node, report.evicted.size(),
            absl::FormatDuration(clock_.Now() - start));
  return report;
}

Drainer::CordonAndDrainResult Drainer::CordonAndDrain(const std::string& node) {
  CordonAndDrainResult result;
  result.status = CheckBlockingPods(node);
  if (!result.status.ok()) return result;
  absl::StatusOr<CordonResult> cordon = Cordon(node);
  if (!cordon.ok()) {
    result.status = cordon.status();
    return result;
  }
  result.was_already_cordoned = cordon->was_already_cordoned;
  result.cordoned_by_us = !cordon->was_already_cordoned;
  absl::StatusOr<DrainReport> report = Drain(node);
  if (!report.ok()) {
    result.status = report.status();
    return result;
  }
  result.report = *std::move(report);
  return result;
}

}  // namespace tended::kube
