// Asks the coordinator for one kind of lease on the node's behalf and keeps the request
// alive: AcquireLease when a need appears, again every check period while it waits (a
// backstop for a lost grant directive), CancelLeaseRequest when the need goes away. The
// Agent has one per lease kind it can carry out (REBOOT, OS_UPGRADE, later the Kubernetes
// steps) and decides which of them asks; what happens under a granted lease is the kind's
// own step.
//
// Thread-compatible: the Agent's loop only.
#ifndef TENDED_AGENT_LEASE_REQUESTER_H_
#define TENDED_AGENT_LEASE_REQUESTER_H_

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/coordinator_client.h"
#include "common/clock.h"
#include "tended/v1/types.pb.h"

namespace tended::agent {

class LeaseRequester {
 public:
  struct Options {
    std::string node_name;
    std::string agent_instance_id;
    tended::v1::LeaseKind kind = tended::v1::LEASE_KIND_UNSPECIFIED;
    // The lease as the status names it: "a reboot lease", "an OS upgrade lease".
    std::string what;
    // How long a waiting (or refused) request waits before asking again.
    absl::Duration check_period = absl::Hours(1);
  };

  // What Ask() came to.
  struct Answer {
    enum class Result {
      // The coordinator granted `lease` (or already held it for the node).
      kGranted,
      // Queued behind gates or other nodes, or refused for now: `status` says why, and the
      // next ask is due at `next`.
      kWaiting,
      // The coordinator could not be asked: `error`.
      kUnreachable,
    };
    Result result = Result::kWaiting;
    tended::v1::Lease lease;
    absl::Time next = absl::InfiniteFuture();
    std::string status;
    absl::Status error;
  };

  // `coordinator` and `clock` must outlive this.
  LeaseRequester(CoordinatorClient* coordinator, const Clock& clock, Options options);

  // Asks for the lease unless a request is pending and not due again yet; `reason` (for
  // the operator: "reboot-required: linux-image-...") is only computed when asking.
  Answer Ask(absl::FunctionRef<std::string()> reason);

  // Withdraws the pending request, if any. An error (the coordinator unreachable) leaves
  // it pending.
  absl::Status Cancel();

  // A request is pending at the coordinator (as far as this process knows).
  bool waiting() const { return waiting_; }
  tended::v1::LeaseKind kind() const { return options_.kind; }

  // Forgets the pending request so the next Ask() asks at once: after reconnecting (the
  // coordinator may have restarted) and when a lease ends.
  void Reset();

 private:
  CoordinatorClient* coordinator_;
  const Clock& clock_;
  const Options options_;
  bool waiting_ = false;
  absl::Time next_ask_ = absl::InfinitePast();
  std::string status_;
};

}  // namespace tended::agent

#endif  // TENDED_AGENT_LEASE_REQUESTER_H_
