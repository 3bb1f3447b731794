#include "agent/k8s/version_check.h"

#include "common/logging.h"
#include "common/proto_file.h"
#include "common/proto_time.h"

namespace tended::agent::k8s {

ScheduledVersionCheck::ScheduledVersionCheck(std::function<tended::v1::K8sNodeFacts()> detect,
                                             Schedule schedule, Options options,
                                             std::function<void()> wake)
    : detect_(std::move(detect)),
      schedule_(std::move(schedule)),
      options_(std::move(options)),
      wake_(std::move(wake)) {
  tended::v1::K8sNodeFacts saved;
  if (!options_.state_path.empty()) {
    absl::Status read = ReadProtoJsonFile(options_.state_path, &saved);
    if (read.ok() && saved.has_checked_time()) {
      last_ = saved;
      next_due_ = schedule_.Next(FromProtoTimestamp(saved.checked_time()));
    } else if (!read.ok() && !absl::IsNotFound(read)) {
      Logger("agent")->warn("the last Kubernetes version check is unreadable ({}); checking again",
                            read.ToString());
    }
  }
}

ScheduledVersionCheck::~ScheduledVersionCheck() {
  if (worker_.joinable()) worker_.join();
}

void ScheduledVersionCheck::Collect() {
  std::optional<tended::v1::K8sNodeFacts> finished;
  {
    absl::MutexLock lock(&mutex_);
    if (running_ || !finished_.has_value()) return;
    finished.swap(finished_);
  }
  if (worker_.joinable()) worker_.join();
  last_ = *finished;
  changed_ = true;
  next_due_ = schedule_.Next(FromProtoTimestamp(last_->checked_time()));
  if (!last_->check_error().empty()) {
    Logger("agent")->warn("Kubernetes version check: {}", last_->check_error());
  } else {
    Logger("agent")->info("Kubernetes version check done: {} kubeadm candidates, next minor {} {}",
                          last_->kubeadm_candidates_size(), last_->next_minor(),
                          last_->next_minor_available() ? "available" : "not available");
  }
  if (!options_.state_path.empty()) {
    if (absl::Status saved = WriteProtoJsonFile(options_.state_path, *last_); !saved.ok()) {
      Logger("agent")->warn("cannot keep the version check's result: {}", saved.ToString());
    }
  }
}

absl::Time ScheduledVersionCheck::RunIfDue(absl::Time now) {
  Collect();
  {
    absl::MutexLock lock(&mutex_);
    if (running_) return now + absl::Seconds(5);
  }
  if (now < next_due_) return next_due_;
  if (!options_.background) {
    tended::v1::K8sNodeFacts facts = detect_();
    {
      absl::MutexLock lock(&mutex_);
      finished_ = std::move(facts);
    }
    Collect();
    return next_due_;
  }
  if (worker_.joinable()) worker_.join();
  {
    absl::MutexLock lock(&mutex_);
    running_ = true;
  }
  worker_ = std::thread([this] {
    tended::v1::K8sNodeFacts facts = detect_();
    {
      absl::MutexLock lock(&mutex_);
      finished_ = std::move(facts);
      running_ = false;
    }
    if (wake_) wake_();
  });
  return now + absl::Seconds(5);
}

bool ScheduledVersionCheck::TakeChanged() {
  Collect();
  const bool was = changed_;
  changed_ = false;
  return was;
}

void ScheduledVersionCheck::Fill(tended::v1::K8sNodeFacts* facts) {
  Collect();
  if (!last_.has_value()) return;
  *facts->mutable_kubeadm_candidates() = last_->kubeadm_candidates();
  facts->set_next_minor_available(last_->next_minor_available());
  facts->set_next_minor(last_->next_minor());
  *facts->mutable_checked_time() = last_->checked_time();
  facts->set_check_error(last_->check_error());
}

}  // namespace tended::agent::k8s
