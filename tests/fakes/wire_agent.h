// A scripted tended agent for black-box tests of the real tended-coordinator: one node's
// identity (name, agent instance id, boot id), its facts, and what its journal keeps (the
// lease it holds, the highest fencing token and the coordinator state id it was told),
// making the NodeService calls a real agent makes, filled as a real agent fills them.
// A FleetHeartbeat reports for a set of them in the background, as their agents would
// every report interval. Thread-safe.
#ifndef TENDED_TESTS_FAKES_WIRE_AGENT_H_
#define TENDED_TESTS_FAKES_WIRE_AGENT_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tended/v1/node_service.grpc.pb.h"

namespace tended::testing {

class WireAgent {
 public:
  WireAgent(std::string node_name, std::string instance_id, std::string boot_id);

  // Where calls go (a restarted coordinator gets a new channel).
  void SetChannel(std::shared_ptr<grpc::Channel> channel);

  const std::string& node_name() const { return node_name_; }
  const std::string& instance_id() const { return instance_id_; }

  // Facts.
  void SetBootId(std::string boot_id);
  std::string boot_id() const;
  void SetRebootRequired(bool required, std::vector<std::string> reasons = {});
  void SetOsUpgrade(tended::v1::OsUpgradeFacts os);
  // Whether a FleetHeartbeat reports for this agent (an agent that is down does not).
  void SetReporting(bool reporting) { reporting_.store(reporting); }
  bool reporting() const { return reporting_.load(); }

  // The journal.
  std::optional<tended::v1::Lease> held_lease() const;
  uint64_t max_fencing_token_seen() const;
  std::string coordinator_state_id() const;
  // The lease was released (verified, force-released): the journal forgets it.
  void ForgetLease();

  // The report a real agent would send now.
  tended::v1::ReportFactsRequest FactsRequest() const;

  // NodeService calls, each bounded by `timeout`; what they return updates the journal.
  grpc::Status Report(absl::Duration timeout = absl::Seconds(30));
  grpc::Status SendFacts(const tended::v1::ReportFactsRequest& request,
                         absl::Duration timeout = absl::Seconds(30));
  grpc::Status Acquire(tended::v1::LeaseKind kind, const std::string& reason,
                       tended::v1::AcquireLeaseResponse* response = nullptr);
  grpc::Status SendAcquire(const tended::v1::AcquireLeaseRequest& request,
                           tended::v1::AcquireLeaseResponse* response = nullptr);
  // BeginDisruption for the held lease, with its token (or `token` when not 0).
  grpc::Status Begin(const std::string& step,
                     const std::vector<tended::v1::PackageChange>& packages = {},
                     uint64_t token = 0, tended::v1::BeginDisruptionResponse* response = nullptr);
  grpc::Status Renew(tended::v1::RenewLeaseResponse* response = nullptr);
  grpc::Status Release(const std::string& reason);
  grpc::Status ReportStep(const tended::v1::StepReport& report,
                          tended::v1::ReportStepResponse* response = nullptr);

 private:
  std::shared_ptr<tended::v1::NodeService::Stub> stub() const;
  void Took(const tended::v1::Lease& lease);  // A lease the coordinator said this node holds.

  const std::string node_name_;
  const std::string instance_id_;
  std::atomic<bool> reporting_{true};
  mutable absl::Mutex mutex_;
  std::shared_ptr<tended::v1::NodeService::Stub> stub_ ABSL_GUARDED_BY(mutex_);
  tended::v1::NodeFacts facts_ ABSL_GUARDED_BY(mutex_);
  std::optional<tended::v1::Lease> held_ ABSL_GUARDED_BY(mutex_);
  uint64_t max_token_ ABSL_GUARDED_BY(mutex_) = 0;
  std::string state_id_ ABSL_GUARDED_BY(mutex_);
};

// Reports for every added agent whose reporting() is on, every `interval`, on its own
// thread, until destroyed. Failed reports are ignored (a coordinator may be restarting).
class FleetHeartbeat {
 public:
  explicit FleetHeartbeat(absl::Duration interval = absl::Seconds(1));
  ~FleetHeartbeat();
  FleetHeartbeat(const FleetHeartbeat&) = delete;
  FleetHeartbeat& operator=(const FleetHeartbeat&) = delete;

  // The agent must outlive this heartbeat.
  void Add(WireAgent* agent);

 private:
  void Run();

  const absl::Duration interval_;
  absl::Mutex mutex_;
  std::vector<WireAgent*> agents_ ABSL_GUARDED_BY(mutex_);
  bool stop_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_WIRE_AGENT_H_
