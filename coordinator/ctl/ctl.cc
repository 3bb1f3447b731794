#include "coordinator/ctl/ctl.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "coordinator/ctl/event_audit.h"
#include "tended/v1/operator_service.grpc.pb.h"

namespace tended::ctl {
namespace {

using tended::v1::OperatorService;

constexpr char kUsage[] = R"(usage: tendedctl [--address HOST:PORT] [--insecure] [--json] COMMAND

commands:
  nodes                          every known node and its state
  leases [--all]                 active leases (--all: with released ones)
  gates [reboot|os_upgrade|k8s_upgrade]
                                 every gate: pass or block, why, earliest pass time
  halt REASON...                 stop new grants; in-flight steps finish safely
  resume                         allow grants again
  resume-rollout REASON...       clear a stopped OS upgrade rollout (its canary failed)
  release LEASE_ID REASON...     force-release a lease (a node that will not come back)
  remove NODE REASON...          forget a decommissioned node (it holds no lease)
  events [--after N] [--follow]  the event log; --follow keeps printing new events
  audit                          replay the event log: most nodes disrupted at once, reboots
  wait-rebooted N [TIMEOUT]      wait until N nodes completed a verified reboot and no lease
                                 is held (TIMEOUT like 120s; default 10m); exit 1 on timeout
)";

std::string Time(const google::protobuf::Timestamp& timestamp) {
  absl::Time time = FromProtoTimestamp(timestamp);
  if (time == absl::InfinitePast()) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", time, absl::LocalTimeZone());
}

std::string Trimmed(const std::string& name, const std::string& prefix) {
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

// "reboot", "os_upgrade", "k8s_upgrade", as in the configuration.
std::string Kind(tended::v1::LeaseKind kind) {
  if (kind == tended::v1::LEASE_KIND_UNSPECIFIED) return "-";
  return absl::AsciiStrToLower(Trimmed(tended::v1::LeaseKind_Name(kind), "LEASE_KIND_"));
}

void PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  std::cout << json;
}

int Fail(const grpc::Status& status) {
  std::cerr << "tendedctl: " << status.error_message() << " (code " << status.error_code() << ")\n";
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ? 3 : 1;
}

std::string FormatEvent(const tended::v1::Event& event) {
  std::string line = absl::StrCat(Time(event.time()), "  #", event.sequence(), "  ",
                                  Trimmed(tended::v1::EventType_Name(event.type()), "EVENT_TYPE_"));
  if (!event.node_name().empty()) absl::StrAppend(&line, "  ", event.node_name());
  if (!event.lease_id().empty()) {
    absl::StrAppend(&line, "  ", event.lease_id(), " (token ", event.fencing_token(), ")");
  }
  absl::StrAppend(&line, "  disrupted=", event.disrupted_nodes());
  if (!event.message().empty()) absl::StrAppend(&line, "  ", event.message());
  return line;
}

class Ctl {
 public:
  Ctl(const CtlOptions& options, std::shared_ptr<grpc::Channel> channel)
      : options_(options), stub_(OperatorService::NewStub(std::move(channel))) {}

  int Nodes() {
    grpc::ClientContext context;
    tended::v1::ListNodesResponse response;
    grpc::Status status = stub_->ListNodes(&context, tended::v1::ListNodesRequest(), &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) return PrintJson(response), 0;
    std::printf("%-20s %-10s %-7s %-38s %-20s %s\n", "NODE", "STATE", "REBOOT", "BOOT ID",
                "LAST REPORT", "LEASE");
    for (const auto& node : response.nodes()) {
      std::printf("%-20s %-10s %-7s %-38s %-20s %s\n", node.facts().node_name().c_str(),
                  Trimmed(tended::v1::NodeState_Name(node.state()), "NODE_STATE_").c_str(),
                  node.facts().reboot_required() ? "yes" : "no", node.facts().boot_id().c_str(),
                  Time(node.last_report_time()).c_str(), node.lease_id().c_str());
    }
    return 0;
  }

  int Leases(bool all) {
    grpc::ClientContext context;
    tended::v1::ListLeasesRequest request;
    request.set_include_released(all);
    tended::v1::ListLeasesResponse response;
    grpc::Status status = stub_->ListLeases(&context, request, &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) return PrintJson(response), 0;
    std::printf("%-32s %-12s %-20s %-6s %-11s %-20s %s\n", "LEASE", "KIND", "NODE", "TOKEN",
                "PHASE", "GRANTED", "STATUS");
    for (const auto& lease : response.leases()) {
      std::printf("%-32s %-12s %-20s %-6llu %-11s %-20s %s%s\n", lease.id().c_str(),
                  Kind(lease.kind()).c_str(), lease.node_name().c_str(),
                  static_cast<unsigned long long>(lease.fencing_token()),
                  Trimmed(tended::v1::LeasePhase_Name(lease.phase()), "LEASE_PHASE_").c_str(),
                  Time(lease.grant_time()).c_str(), lease.overdue() ? "OVERDUE " : "",
                  lease.status_message().c_str());
    }
    return 0;
  }

  int Gates(tended::v1::LeaseKind kind) {
    grpc::ClientContext context;
    tended::v1::ExplainGatesRequest request;
    request.set_kind(kind);
    tended::v1::ExplainGatesResponse response;
    grpc::Status status = stub_->ExplainGates(&context, request, &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) return PrintJson(response), 0;
    for (const auto& explanation : response.explanations()) {
      std::printf("%s: %s", Kind(explanation.kind()).c_str(),
                  explanation.would_grant() ? "would grant" : "blocked");
      if (!explanation.waiting_nodes().empty()) {
        std::printf(" (waiting: %s)", absl::StrJoin(explanation.waiting_nodes(), ", ").c_str());
      }
      std::printf("\n");
      for (const auto& gate : explanation.gates()) {
        bool pass = gate.verdict() == tended::v1::GATE_VERDICT_PASS;
        std::printf("  %-5s %-13s %s", pass ? "pass" : "BLOCK", gate.gate().c_str(),
                    gate.reason().c_str());
        if (gate.has_earliest_pass_time()) {
          std::printf(" (earliest %s)", Time(gate.earliest_pass_time()).c_str());
        }
        std::printf("\n");
      }
    }
    return 0;
  }

  int Halt(const std::string& reason) {
    grpc::ClientContext context;
    tended::v1::HaltRequest request;
    request.set_reason(reason);
    tended::v1::HaltResponse response;
    grpc::Status status = stub_->Halt(&context, request, &response);
    if (!status.ok()) return Fail(status);
    std::printf("halted: %s\n", response.halt().reason().c_str());
    return 0;
  }

  int Resume() {
    grpc::ClientContext context;
    tended::v1::ResumeResponse response;
    grpc::Status status = stub_->Resume(&context, tended::v1::ResumeRequest(), &response);
    if (!status.ok()) return Fail(status);
    std::printf("resumed\n");
    return 0;
  }

  int ResumeRollout(const std::string& reason) {
    grpc::ClientContext context;
    tended::v1::ResumeRolloutRequest request;
    request.set_kind(tended::v1::LEASE_KIND_OS_UPGRADE);
    request.set_reason(reason);
    tended::v1::ResumeRolloutResponse response;
    grpc::Status status = stub_->ResumeRollout(&context, request, &response);
    if (!status.ok()) return Fail(status);
    if (!response.cleared().stopped()) {
      std::printf("the OS upgrade rollout was not stopped\n");
    } else {
      std::printf("OS upgrade rollout resumed (it stopped because %s)\n",
                  response.cleared().reason().c_str());
    }
    return 0;
  }

  int Release(const std::string& lease_id, const std::string& reason) {
    grpc::ClientContext context;
    tended::v1::ForceReleaseLeaseRequest request;
    request.set_lease_id(lease_id);
    request.set_reason(reason);
    tended::v1::ForceReleaseLeaseResponse response;
    grpc::Status status = stub_->ForceReleaseLease(&context, request, &response);
    if (!status.ok()) return Fail(status);
    std::printf("released %s (node %s)\n", response.lease().id().c_str(),
                response.lease().node_name().c_str());
    return 0;
  }

  int Remove(const std::string& node, const std::string& reason) {
    grpc::ClientContext context;
    tended::v1::RemoveNodeRequest request;
    request.set_node_name(node);
    request.set_reason(reason);
    tended::v1::RemoveNodeResponse response;
    grpc::Status status = stub_->RemoveNode(&context, request, &response);
    if (!status.ok()) return Fail(status);
    std::printf("removed %s\n", node.c_str());
    return 0;
  }

  // Appends the events after `after` to `out`; pages until caught up.
  grpc::Status FetchEvents(uint64_t after, std::vector<tended::v1::Event>* out) {
    for (int page = 0; page < 10000; ++page) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      tended::v1::ListEventsRequest request;
      request.set_after_sequence(after);
      request.set_limit(1000);
      tended::v1::ListEventsResponse response;
      grpc::Status status = stub_->ListEvents(&context, request, &response);
      if (!status.ok()) return status;
      if (response.events().empty()) return grpc::Status::OK;
      for (const auto& event : response.events()) out->push_back(event);
      after = out->back().sequence();
    }
    return grpc::Status::OK;
  }

  int Events(uint64_t after, bool follow) {
    while (true) {
      std::vector<tended::v1::Event> events;
      grpc::Status status = FetchEvents(after, &events);
      if (!status.ok()) {
        if (!follow) return Fail(status);
      }
      for (const auto& event : events) {
        if (options_.json) {
          PrintJson(event);
        } else {
          std::printf("%s\n", FormatEvent(event).c_str());
        }
        after = event.sequence();
      }
      std::fflush(stdout);
      if (!follow) return 0;
      absl::SleepFor(absl::Milliseconds(250));
    }
  }

  int Audit() {
    std::vector<tended::v1::Event> events;
    grpc::Status status = FetchEvents(0, &events);
    if (!status.ok()) return Fail(status);
    EventAudit audit = AuditEvents(events);
    for (const auto& [node, count] : audit.verified_reboots) {
      std::printf("  %-20s %d verified reboot%s\n", node.c_str(), count, count == 1 ? "" : "s");
    }
    if (!audit.open_leases.empty()) {
      std::printf("  still held: %s\n", absl::StrJoin(audit.open_leases, ", ").c_str());
    }
    for (const auto& anomaly : audit.anomalies) std::printf("  anomaly: %s\n", anomaly.c_str());
    std::printf("  force-releases: %d, fencing rejections: %d\n", audit.force_releases,
                audit.fencing_rejections);
    std::printf("%s\n", SummaryLine(audit).c_str());
    return audit.anomalies.empty() ? 0 : 1;
  }

  int WaitRebooted(int count, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    std::vector<tended::v1::Event> events;
    while (absl::Now() < deadline) {
      uint64_t after = events.empty() ? 0 : events.back().sequence();
      if (FetchEvents(after, &events).ok()) {
        EventAudit audit = AuditEvents(events);
        if (audit.nodes_rebooted() >= count && audit.open_leases.empty()) return 0;
      }
      absl::SleepFor(absl::Milliseconds(250));
    }
    std::fprintf(stderr, "tendedctl: %d nodes did not complete a verified reboot within %s\n",
                 count, absl::FormatDuration(timeout).c_str());
    return 1;
  }

 private:
  const CtlOptions& options_;
  std::unique_ptr<OperatorService::Stub> stub_;
};

int Usage() {
  std::fputs(kUsage, stderr);
  return 2;
}

std::string JoinFrom(const std::vector<std::string>& args, size_t first) {
  std::vector<std::string> rest(args.begin() + std::min(first, args.size()), args.end());
  return absl::StrJoin(rest, " ");
}

}  // namespace

int RunCtl(const CtlOptions& options, const std::vector<std::string>& args) {
  if (args.empty()) return Usage();
  if (!options.insecure) {
    std::fputs("tendedctl: mTLS is not available yet: pass --insecure for plaintext gRPC\n",
               stderr);
    return 2;
  }
  Ctl ctl(options, grpc::CreateChannel(options.address, grpc::InsecureChannelCredentials()));
  const std::string& command = args[0];
  if (command == "nodes") return ctl.Nodes();
  if (command == "leases") return ctl.Leases(options.all);
  if (command == "gates") {
    if (args.size() == 1) return ctl.Gates(tended::v1::LEASE_KIND_UNSPECIFIED);
    if (args[1] == "reboot") return ctl.Gates(tended::v1::LEASE_KIND_REBOOT);
    if (args[1] == "os_upgrade") return ctl.Gates(tended::v1::LEASE_KIND_OS_UPGRADE);
    if (args[1] == "k8s_upgrade") return ctl.Gates(tended::v1::LEASE_KIND_K8S_UPGRADE);
    return Usage();
  }
  if (command == "halt" && args.size() >= 2) return ctl.Halt(JoinFrom(args, 1));
  if (command == "resume") return ctl.Resume();
  if (command == "resume-rollout" && args.size() >= 2) return ctl.ResumeRollout(JoinFrom(args, 1));
  if (command == "release" && args.size() >= 3) return ctl.Release(args[1], JoinFrom(args, 2));
  if (command == "remove" && args.size() >= 3) return ctl.Remove(args[1], JoinFrom(args, 2));
  if (command == "events") return ctl.Events(options.after, options.follow);
  if (command == "audit") return ctl.Audit();
  if (command == "wait-rebooted" && args.size() >= 2) {
    int count = 0;
    absl::Duration timeout = absl::Minutes(10);
    if (!absl::SimpleAtoi(args[1], &count) || count < 0) return Usage();
    if (args.size() >= 3 && !absl::ParseDuration(args[2], &timeout)) return Usage();
    return ctl.WaitRebooted(count, timeout);
  }
  return Usage();
}

}  // namespace tended::ctl
