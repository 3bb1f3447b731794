#include "agent/apt_plan_status.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace tended::agent {
namespace {

// The value of `key` in an origin's comma-separated key=value terms ("\," escapes a comma).
std::string OriginTerm(absl::string_view origin, absl::string_view key) {
  std::vector<std::string> terms(1);
  for (size_t i = 0; i < origin.size(); ++i) {
    if (origin[i] == '\\' && i + 1 < origin.size() && origin[i + 1] == ',') {
      terms.back() += ',';
      ++i;
    } else if (origin[i] == ',') {
      terms.emplace_back();
    } else {
      terms.back() += origin[i];
    }
  }
  for (const std::string& term : terms) {
    absl::string_view view = term;
    if (absl::ConsumePrefix(&view, key) && absl::ConsumePrefix(&view, "=")) {
      return std::string(view);
    }
  }
  return "";
}

bool SecuritySuite(absl::string_view suite) {
  return absl::EndsWith(suite, "-security") || absl::EndsWith(suite, "/updates");
}

}  // namespace

std::string KeptReasonClass(absl::string_view reason) {
  if (absl::StartsWith(reason, "held (")) return "held";
  if (absl::StartsWith(reason, "blacklisted (")) return "blacklisted";
  if (absl::StartsWith(reason, "not in Package-Whitelist")) return "not_whitelisted";
  if (absl::StrContains(reason, "from a disallowed origin") ||
      absl::StrContains(reason, "lower pin priority")) {
    return "origin";
  }
  if (absl::StrContains(reason, "not from a trusted source")) return "untrusted";
  if (absl::StrContains(reason, "Upgrade-Requires: app-restart")) return "app_restart";
  for (absl::string_view start : {"needs ", "would ", "its candidate ", "could not be marked",
                                  "cannot be upgraded together"}) {
    if (absl::StartsWith(reason, start)) return "dependencies";
  }
  return "other";
}

bool IsSecurityOrigin(absl::string_view origin) {
  return SecuritySuite(OriginTerm(origin, "a")) || SecuritySuite(OriginTerm(origin, "n")) ||
         absl::StrContains(OriginTerm(origin, "l"), "Security");
}

void SummarizePlan(const apt::UpgradePlan& plan, AptPlanSummary* summary) {
  summary->upgrades = static_cast<int>(plan.upgrades.size());
  summary->security_upgrades = 0;
  for (const apt::PackageUpgrade& u : plan.upgrades) {
    if (IsSecurityOrigin(u.origin)) ++summary->security_upgrades;
  }
  summary->kept.clear();
  for (const char* reason : kKeptReasons) summary->kept[reason] = 0;
  for (const apt::KeptPackage& k : plan.kept) ++summary->kept[KeptReasonClass(k.reason)];
}

void AptPlanStatus::PlanComputed(const apt::UpgradePlan& plan, absl::Time at) {
  AptPlanSummary summary;
  summary.attempt_time = at;
  summary.plan_time = at;
  SummarizePlan(plan, &summary);
  absl::MutexLock lock(&mutex_);
  summary_ = std::move(summary);
}

void AptPlanStatus::PlanFailed(absl::Time at) {
  absl::MutexLock lock(&mutex_);
  if (!summary_.has_value()) {
    summary_.emplace();
    for (const char* reason : kKeptReasons) summary_->kept[reason] = 0;
  }
  summary_->attempt_time = at;
  summary_->failed = true;
}

void AptPlanStatus::Reset() {
  absl::MutexLock lock(&mutex_);
  summary_.reset();
}

std::optional<AptPlanSummary> AptPlanStatus::Get() const {
  absl::MutexLock lock(&mutex_);
  return summary_;
}

}  // namespace tended::agent
