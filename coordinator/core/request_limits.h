// Every field of every request checked before the core looks at it: names are node names,
// kinds are kinds, and every string and list has a bound, so that no call can grow the
// state or the event log without limit or smuggle garbage into them. A request that breaks
// a rule gets INVALID_ARGUMENT naming the field, the rule and what was sent.
#ifndef TENDED_COORDINATOR_CORE_REQUEST_LIMITS_H_
#define TENDED_COORDINATOR_CORE_REQUEST_LIMITS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "tended/v1/node_service.pb.h"
#include "tended/v1/operator_service.pb.h"

namespace tended::coordinator {

struct RequestLimits {
  static constexpr size_t kReason = 1024;             // Free text from people or agents.
  static constexpr size_t kShortText = 256;           // Versions, kernels, steps, ids.
  static constexpr size_t kMessage = 4096;            // A step's message, a plan error.
  static constexpr size_t kLeaseId = 320;
  static constexpr size_t kInstanceId = 64;
  static constexpr int kRebootReasons = 100;
  static constexpr int kPackages = 5000;              // Package lists of any kind.
  static constexpr int kPlannedUpgrades = 2000;
};

absl::Status ValidateReportFacts(const tended::v1::ReportFactsRequest& request);
absl::Status ValidateAcquireLease(const tended::v1::AcquireLeaseRequest& request);
absl::Status ValidateRenewLease(const tended::v1::RenewLeaseRequest& request);
absl::Status ValidateBeginDisruption(const tended::v1::BeginDisruptionRequest& request);
absl::Status ValidateReleaseLease(const tended::v1::ReleaseLeaseRequest& request);
absl::Status ValidateCancelLeaseRequest(const tended::v1::CancelLeaseRequestRequest& request);
absl::Status ValidateReportStep(const tended::v1::ReportStepRequest& request);
absl::Status ValidateWatchDirectives(const tended::v1::WatchDirectivesRequest& request);

// Operators: a required reason of bounded length; lease ids and node names checked.
absl::Status ValidateOperatorReason(const std::string& reason);
absl::Status ValidateNodeName(absl::string_view field, absl::string_view name);
absl::Status ValidateLeaseId(absl::string_view field, absl::string_view id);
// REBOOT, OS_UPGRADE or K8S_UPGRADE.
absl::Status ValidateKind(absl::string_view field, tended::v1::LeaseKind kind);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_CORE_REQUEST_LIMITS_H_
