#include "agent/lease_requester.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tended::agent {

LeaseRequester::LeaseRequester(CoordinatorClient* coordinator, const Clock& clock, Options options)
    : coordinator_(coordinator), clock_(clock), options_(std::move(options)) {}

LeaseRequester::Answer LeaseRequester::Ask(absl::FunctionRef<std::string()> reason) {
  const absl::Time now = clock_.Now();
  Answer answer;
  if (waiting_ && now < next_ask_) {
    answer.next = next_ask_;
    answer.status = status_;
    return answer;
  }
  tended::v1::AcquireLeaseRequest request;
  request.set_node_name(options_.node_name);
  request.set_kind(options_.kind);
  request.set_reason(reason());
  request.set_agent_instance_id(options_.agent_instance_id);
  auto response = coordinator_->AcquireLease(request);
  if (!response.ok()) {
    if (!absl::IsFailedPrecondition(response.status()) &&
        !absl::IsInvalidArgument(response.status())) {
      answer.result = Answer::Result::kUnreachable;
      answer.error = response.status();
      return answer;
    }
    // Refused (the kind is disabled, the node unknown, another lease held): ask again later.
    status_ = absl::StrCat(options_.what, " refused: ", response.status().message());
  } else if (response->has_lease()) {
    waiting_ = false;
    answer.result = Answer::Result::kGranted;
    answer.lease = response->lease();
    return answer;
  } else {
    std::vector<std::string> blocking;
    for (const auto& gate : response->gates()) {
      if (gate.verdict() == tended::v1::GATE_VERDICT_BLOCK) {
        blocking.push_back(absl::StrCat(gate.gate(), ": ", gate.reason()));
      }
    }
    status_ = absl::StrCat("waiting for ", options_.what, " (queue position ",
                           response->queue_position(), "): ", absl::StrJoin(blocking, "; "));
  }
  waiting_ = true;
  next_ask_ = now + options_.check_period;
  answer.next = next_ask_;
  answer.status = status_;
  return answer;
}

absl::Status LeaseRequester::Cancel() {
  if (!waiting_) return absl::OkStatus();
  tended::v1::CancelLeaseRequestRequest cancel;
  cancel.set_node_name(options_.node_name);
  cancel.set_kind(options_.kind);
  cancel.set_agent_instance_id(options_.agent_instance_id);
  if (auto cancelled = coordinator_->CancelLeaseRequest(cancel); !cancelled.ok()) {
    return cancelled.status();
  }
  Reset();
  return absl::OkStatus();
}

void LeaseRequester::Reset() {
  waiting_ = false;
  next_ask_ = absl::InfinitePast();
  status_.clear();
}

}  // namespace tended::agent
