#include "agent/os_upgrade_step.h"

#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/proto_time.h"

namespace tended::agent {
namespace {

constexpr size_t kPackagesInDescription = 5;

std::shared_ptr<spdlog::logger> Log() { return Logger("os-upgrade"); }

}  // namespace

std::string DescribePlan(const apt::UpgradePlan& plan) {
  std::vector<std::string> names;
  for (const apt::PackageUpgrade& u : plan.upgrades) {
    if (names.size() == kPackagesInDescription) {
      names.push_back(absl::StrCat("and ", plan.upgrades.size() - kPackagesInDescription, " more"));
      break;
    }
    names.push_back(absl::StrCat(u.package, " ", u.to));
  }
  return absl::StrCat(plan.upgrades.size(), " OS upgrades: ", absl::StrJoin(names, ", "));
}

google::protobuf::RepeatedPtrField<tended::v1::PackageChange> PackageChangesOf(
    const apt::UpgradePlan& plan) {
  google::protobuf::RepeatedPtrField<tended::v1::PackageChange> changes;
  for (const apt::PackageUpgrade& u : plan.upgrades) {
    tended::v1::PackageChange* change = changes.Add();
    change->set_name(u.package);
    change->set_from_version(u.from);
    change->set_to_version(u.to);
  }
  return changes;
}

apt::UpgradePlan PlanOf(
    const google::protobuf::RepeatedPtrField<tended::v1::PackageChange>& changes) {
  apt::UpgradePlan plan;
  for (const tended::v1::PackageChange& change : changes) {
    plan.upgrades.push_back({change.name(), change.from_version(), change.to_version(), ""});
  }
  return plan;
}

std::string PlanDigest(const apt::UpgradePlan& plan) {
  if (plan.upgrades.empty()) return "";
  std::vector<std::string> lines;
  lines.reserve(plan.upgrades.size());
  for (const apt::PackageUpgrade& u : plan.upgrades) {
    lines.push_back(absl::StrCat(u.package, "=", u.to, "\n"));
  }
  std::sort(lines.begin(), lines.end());
  uint64_t hash = 14695981039346656037ULL;
  for (const std::string& line : lines) {
    for (unsigned char c : line) {
      hash ^= c;
      hash *= 1099511628211ULL;
    }
  }
  return absl::StrFormat("%016x", hash);
}

tended::v1::StepReport StepReportFor(const absl::StatusOr<apt::ApplyResult>& result,
                                     const apt::UpgradePlan& requested) {
  tended::v1::StepReport report;
  report.set_step(kDpkgStep);
  auto add = [&report](const apt::PackageUpgrade& u) {
    tended::v1::PackageChange* change = report.add_packages();
    change->set_name(u.package);
    change->set_from_version(u.from);
    change->set_to_version(u.to);
  };
  if (!result.ok()) {
    report.set_state(tended::v1::STEP_STATE_FAILED);
    report.set_message(std::string(result.status().message()));
    for (const apt::PackageUpgrade& u : requested.upgrades) add(u);
    return report;
  }
  report.set_state(tended::v1::STEP_STATE_SUCCEEDED);
  for (const apt::PackageUpgrade& u : result->installed) add(u);
  std::string message = absl::StrCat(result->installed.size(), " packages installed");
  if (!result->skipped.empty()) absl::StrAppend(&message, ", ", result->skipped.size(), " skipped");
  if (result->repaired_dpkg) absl::StrAppend(&message, ", dpkg repaired first");
  report.set_message(message);
  report.set_reboot_required(result->reboot.required);
  return report;
}

OsUpgradeStep::OsUpgradeStep(apt::PackageManager* packages, Options options, const Clock& clock,
                             std::function<void()> wake)
    : packages_(packages), options_(options), clock_(clock), wake_(std::move(wake)) {}

OsUpgradeStep::~OsUpgradeStep() {
  if (worker_.joinable()) worker_.join();
}

absl::StatusOr<bool> OsUpgradeStep::RepairInterruptedDpkg() {
  if (worker_.joinable()) worker_.join();
  return packages_->RepairInterruptedDpkg(nullptr);
}

bool OsUpgradeStep::busy() {
  absl::MutexLock lock(&mutex_);
  return running_;
}

void OsUpgradeStep::Launch(std::function<void()> job) {
  {
    absl::MutexLock lock(&mutex_);
    running_ = true;
  }
  auto wrapped = [this, job = std::move(job)] {
    job();
    {
      absl::MutexLock lock(&mutex_);
      running_ = false;
    }
    if (wake_) wake_();
  };
  if (!options_.background) {
    wrapped();
    return;
  }
  if (worker_.joinable()) worker_.join();
  worker_ = std::thread(std::move(wrapped));
}

void OsUpgradeStep::Collect() {
  std::optional<absl::StatusOr<apt::UpgradePlan>> refreshed;
  {
    absl::MutexLock lock(&mutex_);
    refreshed.swap(refreshed_);
  }
  if (!refreshed.has_value()) return;
  plan_changed_ = true;
  plan_time_ = clock_.Now();
  if (refreshed->ok()) {
    plan_ = **refreshed;
    plan_error_.clear();
    if (options_.status != nullptr) options_.status->PlanComputed(*plan_, plan_time_);
    Log()->info("plan: {} upgrades, {} kept back", plan_->upgrades.size(), plan_->kept.size());
  } else {
    // Keep asking with what is known; the error is reported with the facts.
    plan_error_ = std::string(refreshed->status().message());
    if (options_.status != nullptr) options_.status->PlanFailed(plan_time_);
    Log()->error("cannot compute the upgrade plan: {}", plan_error_);
  }
}

absl::Time OsUpgradeStep::RefreshPlanIfDue(absl::Time now) {
  Collect();
  if (busy()) return std::min(next_plan_, now + absl::Seconds(1));
  if (now < next_plan_) return next_plan_;
  const bool update = options_.update_interval > absl::ZeroDuration() && now >= next_update_;
  if (update) next_update_ = now + options_.update_interval;
  next_plan_ = now + options_.plan_interval;
  Launch([this, update] {
    if (update) {
      if (absl::Status updated = packages_->Update(); !updated.ok()) {
        Log()->warn("refreshing the package lists: {}", updated.ToString());
      }
    }
    absl::StatusOr<apt::UpgradePlan> plan = packages_->Plan();
    // Give what the plan freed back to the system: with the in-process engine (tests, the
    // simulation) that is libapt-pkg's cache, tens of MB on a full host.
    ::malloc_trim(0);
    absl::MutexLock lock(&mutex_);
    refreshed_ = std::move(plan);
  });
  Collect();
  return busy() ? now + absl::Seconds(1) : next_plan_;
}

bool OsUpgradeStep::TakePlanChanged() {
  Collect();
  return std::exchange(plan_changed_, false);
}

void OsUpgradeStep::FillFacts(tended::v1::OsUpgradeFacts* facts) const {
  if (plan_time_ != absl::InfinitePast())
    *facts->mutable_plan_time() = ToProtoTimestamp(plan_time_);
  facts->set_plan_error(plan_error_);
  if (!plan_.has_value()) return;
  facts->set_upgrades_available(static_cast<uint32_t>(plan_->upgrades.size()));
  facts->set_kept_back(static_cast<uint32_t>(plan_->kept.size()));
  facts->set_plan_digest(PlanDigest(*plan_));
  for (const apt::PackageUpgrade& u : plan_->upgrades) {
    if (facts->planned_upgrades_size() >= kMaxPlannedInFacts) {
      facts->set_planned_truncated(true);
      break;
    }
    tended::v1::PackageVersion* planned = facts->add_planned_upgrades();
    planned->set_name(u.package);
    planned->set_version(u.to);
  }
}

void OsUpgradeStep::StartApply(const apt::UpgradePlan& plan) {
  Collect();
  {
    absl::MutexLock lock(&mutex_);
    applied_.reset();
    progress_.reset();
  }
  Launch([this, plan] {
    absl::StatusOr<apt::ApplyResult> result =
        packages_->Apply(plan, [this](const apt::ApplyProgress& progress) {
          bool changed = false;
          {
            absl::MutexLock lock(&mutex_);
            changed = !progress_.has_value() || progress_->stage != progress.stage;
            progress_ = progress;
          }
          if (changed && options_.background && wake_) wake_();
        });
    absl::MutexLock lock(&mutex_);
    applied_ = std::move(result);
  });
}

std::optional<apt::ApplyProgress> OsUpgradeStep::TakeProgress() {
  absl::MutexLock lock(&mutex_);
  std::optional<apt::ApplyProgress> progress;
  progress.swap(progress_);
  return progress;
}

std::optional<absl::StatusOr<apt::ApplyResult>> OsUpgradeStep::TakeApplyResult() {
  absl::MutexLock lock(&mutex_);
  std::optional<absl::StatusOr<apt::ApplyResult>> result;
  result.swap(applied_);
  return result;
}

void OsUpgradeStep::Reset() {
  if (worker_.joinable()) worker_.join();
  absl::MutexLock lock(&mutex_);
  applied_.reset();
  progress_.reset();
  refreshed_.reset();
  running_ = false;
  next_plan_ = absl::InfinitePast();
  next_update_ = absl::InfinitePast();
  plan_.reset();
  plan_time_ = absl::InfinitePast();
  plan_error_.clear();
  plan_changed_ = false;
  if (options_.status != nullptr) options_.status->Reset();
}

}  // namespace tended::agent
