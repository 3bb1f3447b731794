#include "coordinator/ctl/ctl.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "common/grpc_tls.h"
#include "common/proto_time.h"
#include "coordinator/ctl/certs.h"
#include "coordinator/ctl/event_audit.h"
#include "coordinator/ctl/status_table.h"
#include "tended/v1/operator_service.grpc.pb.h"

namespace tended::ctl {
namespace {

using tended::v1::OperatorService;

constexpr char kUsage[] =
    R"(usage: tendedctl [--address HOST:PORT] [--json] [--cert F --key F --ca F | --insecure] COMMAND

mTLS: --cert/--key (or $TENDED_CERT/$TENDED_KEY) are an operator certificate
(O=tended:operators) and its key; --ca (or $TENDED_CA) the CA bundle the coordinator's
certificate must chain to. --insecure: plaintext, for a coordinator run with --insecure.

The address: --address, else $TENDED_ADDRESS, else `address:` in ~/.config/tended/tendedctl.yaml
or /etc/tended/tendedctl.yaml (the first that exists; `insecure: true` there too), else
127.0.0.1:7443. --json prints every answer as JSON (proto field names).
Exit codes: 0 done, 1 the coordinator refused or the command failed, 2 usage or
configuration error, 3 the coordinator cannot be reached or did not answer within 2 minutes.

commands:
  status                         one table: every node, its state, its lease, what it
                                 waits for and until when
  explain [reboot|os_upgrade|k8s_upgrade]
                                 every gate of each kind, pass or block, and why
  nodes                          every known node and its state
  leases [--all]                 active leases (--all: with released ones)
  gates [reboot|os_upgrade|k8s_upgrade]
                                 every gate: pass or block, why, earliest pass time
  halt REASON... | halt --reason REASON
                                 stop new grants; in-flight steps finish safely
  resume                         allow grants again
  resume-rollout REASON...       clear a stopped OS upgrade rollout (its canary failed)
  release LEASE_ID REASON...     force-release a lease (a node that will not come back)
  remove NODE REASON...          forget a decommissioned node (it holds no lease)
  events [--after N] [--follow]  the event log; --follow keeps printing new events
  audit                          replay the event log: most nodes disrupted at once, reboots
  k8s-rollout start VERSION REASON...   (flags: --kind patch|minor, --dry_run, --stages S,S)
                                 start (or dry-run) a Kubernetes rollout; stages: preflight,
                                 etcd_snapshot, runtime_fix, apt_source, first_control_plane,
                                 other_control_planes, workers, postflight (default: all)
  k8s-rollout get [ID]           one rollout (default: the running or newest): every node,
                                 the etcd snapshot for a restore, the checks
  k8s-rollout list               every rollout kept, oldest first
  k8s-rollout cancel ID REASON...
                                 stop at the next safe point (the node in flight finishes)
  rollout start|status|list|cancel ...
                                 the same as k8s-rollout start|get|list|cancel
  REASON may also be given as --reason for halt, resume-rollout, release, remove and cancel.
  certs --out DIR [--nodes N,...] [--operators NAME[:read|admin],...] [--server_names H,...]
                                 mint a CA, the coordinator's, nodes' and operators'
                                 certificates and keys (0600) into DIR (no connection)
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

nlohmann::json JsonOf(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return nlohmann::json::parse(json, nullptr, false);
}

void PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  std::cout << json;
}

// Every call gives up after this: a coordinator that does not answer is an error, not a hang.
constexpr auto kCallTimeout = std::chrono::minutes(2);

void SetDeadline(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() + kCallTimeout);
}

// 3 when the coordinator cannot be reached, 1 when it answered with an error.
int FailAt(const std::string& address, const std::string& source, const grpc::Status& status) {
  std::string code(absl::StatusCodeToString(FromGrpcStatus(status).code()));
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    std::cerr << "tendedctl: no answer from the coordinator at " << address << " (address from "
              << source << ") within 2 minutes [" << code << "]\n";
    return 3;
  }
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    std::cerr << "tendedctl: cannot reach the coordinator at " << address << " (address from "
              << source << "): " << status.error_message() << " [" << code << "]\n";
    return 3;
  }
  std::cerr << "tendedctl: the coordinator at " << address << " refused: " << status.error_message()
            << " [" << code << "]\n";
  return 1;
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

std::string StageName(int stage) {
  return absl::AsciiStrToLower(
      Trimmed(tended::v1::K8sRolloutStage_Name(static_cast<tended::v1::K8sRolloutStage>(stage)),
              "K8S_ROLLOUT_STAGE_"));
}

std::optional<tended::v1::K8sRolloutStage> ParseStage(const std::string& name) {
  tended::v1::K8sRolloutStage stage;
  if (!tended::v1::K8sRolloutStage_Parse("K8S_ROLLOUT_STAGE_" + absl::AsciiStrToUpper(name),
                                         &stage) ||
      stage == tended::v1::K8S_ROLLOUT_STAGE_UNSPECIFIED) {
    return std::nullopt;
  }
  return stage;
}

void PrintChecks(const char* title,
                 const google::protobuf::RepeatedPtrField<tended::v1::PreflightCheck>& checks) {
  if (checks.empty()) return;
  std::printf("%s:\n", title);
  for (const auto& check : checks) {
    std::printf("  %-4s %-18s %s\n", check.pass() ? "pass" : "FAIL", check.name().c_str(),
                check.reason().c_str());
  }
}

void PrintRollout(const tended::v1::K8sRollout& rollout) {
  std::printf("rollout %s: %s -> %s (%s%s)\n", rollout.id().c_str(),
              rollout.running_version().c_str(), rollout.target_version().c_str(),
              rollout.kind() == tended::v1::K8S_UPGRADE_KIND_MINOR ? "minor" : "patch",
              rollout.dry_run() ? ", dry run" : "");
  std::printf(
      "state    %s at %s since %s\n",
      Trimmed(tended::v1::K8sRolloutState_Name(rollout.state()), "K8S_ROLLOUT_STATE_").c_str(),
      StageName(rollout.stage()).c_str(), Time(rollout.stage_start_time()).c_str());
  std::printf("message  %s\n", rollout.message().c_str());
  std::printf("started  %s by %s\n", Time(rollout.create_time()).c_str(),
              rollout.started_by().c_str());
  if (!rollout.stages().empty()) {
    std::vector<std::string> stages;
    for (int stage : rollout.stages()) stages.push_back(StageName(stage));
    std::printf("stages   %s\n", absl::StrJoin(stages, ", ").c_str());
  }
  if (!rollout.snapshot().path().empty()) {
    std::printf("etcd snapshot  %s:%s  %llu bytes  sha256 %s  taken %s\n",
                rollout.snapshot().node_name().c_str(), rollout.snapshot().path().c_str(),
                static_cast<unsigned long long>(rollout.snapshot().size_bytes()),
                rollout.snapshot().sha256().c_str(), Time(rollout.snapshot().time()).c_str());
  }
  std::printf("%-20s %-20s %-10s %-6s %s\n", "NODE", "ROLE", "PROGRESS", "LEASES", "MESSAGE");
  for (const auto& node : rollout.nodes()) {
    std::printf(
        "%-20s %-20s %-10s %u/%d    %s\n", node.node_name().c_str(),
        absl::AsciiStrToLower(Trimmed(tended::v1::K8sNodeRole_Name(node.role()), "K8S_NODE_ROLE_"))
            .c_str(),
        Trimmed(tended::v1::K8sNodeProgress_Name(node.progress()), "K8S_NODE_PROGRESS_").c_str(),
        node.leases_done(), node.role() == tended::v1::K8S_NODE_ROLE_WORKER ? 1 : 2,
        node.message().c_str());
  }
  PrintChecks("preflight", rollout.preflight());
  PrintChecks("postflight", rollout.postflight());
  if (!rollout.plan().empty()) {
    std::printf("plan:\n");
    for (const auto& line : rollout.plan()) std::printf("  %s\n", line.c_str());
  }
}

class Ctl {
 public:
  int Fail(const grpc::Status& status) {
    return FailAt(options_.address, options_.address_source, status);
  }

  int ShowStatus() {
    tended::v1::ListNodesResponse nodes;
    tended::v1::ListLeasesResponse leases;
    tended::v1::ExplainGatesResponse gates;
    {
      grpc::ClientContext context;
      SetDeadline(&context);
      grpc::Status status = stub_->ListNodes(&context, tended::v1::ListNodesRequest(), &nodes);
      if (!status.ok()) return Fail(status);
    }
    {
      grpc::ClientContext context;
      SetDeadline(&context);
      grpc::Status status = stub_->ListLeases(&context, tended::v1::ListLeasesRequest(), &leases);
      if (!status.ok()) return Fail(status);
    }
    {
      grpc::ClientContext context;
      SetDeadline(&context);
      grpc::Status status =
          stub_->ExplainGates(&context, tended::v1::ExplainGatesRequest(), &gates);
      if (!status.ok()) return Fail(status);
    }
    if (options_.json) {
      nlohmann::json all = nlohmann::json::object();
      all["nodes"] = JsonOf(nodes);
      all["leases"] = JsonOf(leases);
      all["gates"] = JsonOf(gates);
      std::cout << all.dump(2) << "\n";
      return 0;
    }
    std::cout << FormatStatus(nodes, leases, gates, absl::LocalTimeZone());
    return 0;
  }

  // Both `explain` and `gates` print the coordinator's answer to this one call.
  grpc::Status ExplainGates(tended::v1::LeaseKind kind,
                            tended::v1::ExplainGatesResponse* response) {
    grpc::ClientContext context;
    SetDeadline(&context);
    tended::v1::ExplainGatesRequest request;
    request.set_kind(kind);
    return stub_->ExplainGates(&context, request, response);
  }

  int Explain(tended::v1::LeaseKind kind) {
    tended::v1::ExplainGatesResponse response;
    grpc::Status status = ExplainGates(kind, &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) return PrintJson(response), 0;
    std::cout << FormatExplain(response, absl::LocalTimeZone());
    return 0;
  }

  Ctl(const CtlOptions& options, std::shared_ptr<grpc::Channel> channel)
      : options_(options), stub_(OperatorService::NewStub(std::move(channel))) {}

  int Nodes() {
    grpc::ClientContext context;
    SetDeadline(&context);
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
    SetDeadline(&context);
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
    tended::v1::ExplainGatesResponse response;
    grpc::Status status = ExplainGates(kind, &response);
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
    SetDeadline(&context);
    tended::v1::HaltRequest request;
    request.set_reason(reason);
    tended::v1::HaltResponse response;
    grpc::Status status = stub_->Halt(&context, request, &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) return PrintJson(response), 0;
    std::printf("halted: %s\n", response.halt().reason().c_str());
    return 0;
  }

  int Resume() {
    grpc::ClientContext context;
    SetDeadline(&context);
    tended::v1::ResumeResponse response;
    grpc::Status status = stub_->Resume(&context, tended::v1::ResumeRequest(), &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) return PrintJson(response), 0;
    std::printf("resumed\n");
    return 0;
  }

  int ResumeRollout(const std::string& reason) {
    grpc::ClientContext context;
    SetDeadline(&context);
    tended::v1::ResumeRolloutRequest request;
    request.set_kind(tended::v1::LEASE_KIND_OS_UPGRADE);
    request.set_reason(reason);
    tended::v1::ResumeRolloutResponse response;
    grpc::Status status = stub_->ResumeRollout(&context, request, &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) return PrintJson(response), 0;
    if (!response.cleared().stopped()) {
      std::printf("the OS upgrade rollout was not stopped\n");
    } else {
      std::printf("OS upgrade rollout resumed (it stopped because %s)\n",
                  response.cleared().reason().c_str());
    }
    return 0;
  }

  int StartK8sRollout(const std::vector<std::string>& args) {
    tended::v1::StartK8sRolloutRequest request;
    request.set_kind(tended::v1::K8S_UPGRADE_KIND_PATCH);
    request.set_dry_run(options_.k8s_dry_run);
    std::vector<std::string> words;
    if (options_.k8s_kind != "patch") words.push_back("--kind=" + options_.k8s_kind);
    if (!options_.k8s_stages.empty()) words.push_back("--stages=" + options_.k8s_stages);
    words.insert(words.end(), args.begin(), args.end());
    std::vector<std::string> reason;
    for (size_t i = 0; i < words.size(); ++i) {
      const std::vector<std::string>& args = words;
      const std::string& arg = args[i];
      std::string value;
      auto flag = [&](const std::string& name) {
        if (arg == name && i + 1 < args.size()) {
          value = args[++i];
          return true;
        }
        if (arg.rfind(name + "=", 0) == 0) {
          value = arg.substr(name.size() + 1);
          return true;
        }
        return false;
      };
      if (arg == "--dry-run" || arg == "--dry_run") {
        request.set_dry_run(true);
      } else if (flag("--kind")) {
        if (value == "minor") {
          request.set_kind(tended::v1::K8S_UPGRADE_KIND_MINOR);
        } else if (value != "patch") {
          std::fprintf(stderr, "tendedctl: --kind is patch or minor, not %s\n", value.c_str());
          return 2;
        }
      } else if (flag("--stages")) {
        for (absl::string_view name : absl::StrSplit(value, ',', absl::SkipEmpty())) {
          std::optional<tended::v1::K8sRolloutStage> stage = ParseStage(std::string(name));
          if (!stage.has_value()) {
            std::fprintf(stderr, "tendedctl: unknown stage %s\n", std::string(name).c_str());
            return 2;
          }
          request.add_stages(*stage);
        }
      } else if (request.target_version().empty()) {
        request.set_target_version(arg);
      } else {
        reason.push_back(arg);
      }
    }
    if (request.target_version().empty() || reason.empty()) return 2;
    request.set_reason(absl::StrJoin(reason, " "));
    grpc::ClientContext context;
    SetDeadline(&context);
    tended::v1::StartK8sRolloutResponse response;
    grpc::Status status = stub_->StartK8sRollout(&context, request, &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) return PrintJson(response), 0;
    PrintRollout(response.rollout());
    return response.rollout().state() == tended::v1::K8S_ROLLOUT_STATE_FAILED ? 1 : 0;
  }

  int GetK8sRollout(const std::string& id) {
    grpc::ClientContext context;
    SetDeadline(&context);
    tended::v1::GetK8sRolloutRequest request;
    request.set_rollout_id(id);
    tended::v1::GetK8sRolloutResponse response;
    grpc::Status status = stub_->GetK8sRollout(&context, request, &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) return PrintJson(response), 0;
    PrintRollout(response.rollout());
    return 0;
  }

  int ListK8sRollouts() {
    grpc::ClientContext context;
    SetDeadline(&context);
    tended::v1::ListK8sRolloutsResponse response;
    grpc::Status status =
        stub_->ListK8sRollouts(&context, tended::v1::ListK8sRolloutsRequest(), &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) return PrintJson(response), 0;
    std::printf("%-36s %-8s %-8s %-11s %-20s %-19s %s\n", "ID", "TARGET", "KIND", "STATE", "STAGE",
                "STARTED", "MESSAGE");
    for (const auto& rollout : response.rollouts()) {
      std::printf(
          "%-36s %-8s %-8s %-11s %-20s %-19s %s\n", rollout.id().c_str(),
          rollout.target_version().c_str(),
          rollout.dry_run()                                      ? "dry-run"
          : rollout.kind() == tended::v1::K8S_UPGRADE_KIND_MINOR ? "minor"
                                                                 : "patch",
          Trimmed(tended::v1::K8sRolloutState_Name(rollout.state()), "K8S_ROLLOUT_STATE_").c_str(),
          StageName(rollout.stage()).c_str(), Time(rollout.create_time()).c_str(),
          rollout.message().c_str());
    }
    return 0;
  }

  int CancelK8sRollout(const std::string& id, const std::string& reason) {
    grpc::ClientContext context;
    SetDeadline(&context);
    tended::v1::CancelK8sRolloutRequest request;
    request.set_rollout_id(id);
    request.set_reason(reason);
    tended::v1::CancelK8sRolloutResponse response;
    grpc::Status status = stub_->CancelK8sRollout(&context, request, &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) return PrintJson(response), 0;
    PrintRollout(response.rollout());
    return 0;
  }

  int Release(const std::string& lease_id, const std::string& reason) {
    grpc::ClientContext context;
    SetDeadline(&context);
    tended::v1::ForceReleaseLeaseRequest request;
    request.set_lease_id(lease_id);
    request.set_reason(reason);
    tended::v1::ForceReleaseLeaseResponse response;
    grpc::Status status = stub_->ForceReleaseLease(&context, request, &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) return PrintJson(response), 0;
    std::printf("released %s (node %s)\n", response.lease().id().c_str(),
                response.lease().node_name().c_str());
    return 0;
  }

  int Remove(const std::string& node, const std::string& reason) {
    grpc::ClientContext context;
    SetDeadline(&context);
    tended::v1::RemoveNodeRequest request;
    request.set_node_name(node);
    request.set_reason(reason);
    tended::v1::RemoveNodeResponse response;
    grpc::Status status = stub_->RemoveNode(&context, request, &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) return PrintJson(response), 0;
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
    if (options_.json) {
      nlohmann::json out = {{"max_disrupted_at_once", audit.max_disrupted_at_once},
                            {"max_recorded_disrupted", audit.max_recorded_disrupted},
                            {"verified_reboots", audit.verified_reboots},
                            {"force_releases", audit.force_releases},
                            {"fencing_rejections", audit.fencing_rejections},
                            {"open_leases", audit.open_leases},
                            {"anomalies", audit.anomalies},
                            {"summary", SummaryLine(audit)}};
      std::cout << out.dump(2) << "\n";
      return audit.anomalies.empty() ? 0 : 1;
    }
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
        if (audit.nodes_rebooted() >= count && audit.open_leases.empty()) {
          if (options_.json) {
            std::cout << nlohmann::json({{"nodes_rebooted", audit.nodes_rebooted()}}).dump()
                      << "\n";
          }
          return 0;
        }
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

std::optional<tended::v1::LeaseKind> ParseKind(const std::vector<std::string>& args) {
  if (args.size() == 1) return tended::v1::LEASE_KIND_UNSPECIFIED;
  if (args.size() > 2) return std::nullopt;
  if (args[1] == "reboot") return tended::v1::LEASE_KIND_REBOOT;
  if (args[1] == "os_upgrade") return tended::v1::LEASE_KIND_OS_UPGRADE;
  if (args[1] == "k8s_upgrade") return tended::v1::LEASE_KIND_K8S_UPGRADE;
  return std::nullopt;
}

int RunCerts(const CtlOptions& options) {
  CertsRequest request;
  request.out_dir = options.certs_out;
  request.nodes = absl::StrSplit(options.certs_nodes, ',', absl::SkipEmpty());
  request.operators = absl::StrSplit(options.certs_operators, ',', absl::SkipEmpty());
  if (!options.certs_server_names.empty()) {
    request.server_names = absl::StrSplit(options.certs_server_names, ',', absl::SkipEmpty());
  }
  absl::StatusOr<std::vector<std::string>> files = MintCerts(request);
  if (!files.ok()) {
    std::fprintf(stderr, "tendedctl: %s\n", std::string(files.status().message()).c_str());
    return 1;
  }
  for (const std::string& file : *files) std::printf("%s\n", file.c_str());
  return 0;
}

}  // namespace

int RunCtl(const CtlOptions& options, const std::vector<std::string>& raw_args) {
  if (raw_args.empty()) return Usage();
  // --reason TEXT given as words after the command is the trailing REASON.
  std::vector<std::string> args = raw_args;
  if (!options.reason.empty()) args.push_back(options.reason);
  if (args[0] == "rollout" && args.size() >= 2) {
    args[0] = "k8s-rollout";
    if (args[1] == "status") args[1] = "get";
  }
  if (args[0] == "certs") return RunCerts(options);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!options.insecure) {
    if (options.cert_file.empty() || options.key_file.empty() || options.ca_file.empty()) {
      std::fputs(
          "tendedctl: mTLS needs --cert, --key and --ca (or TENDED_CERT, TENDED_KEY, TENDED_CA); "
          "--insecure for a plaintext coordinator\n",
          stderr);
      return 2;
    }
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> tls =
        MakeChannelTlsCredentials(TlsFiles{options.cert_file, options.key_file, options.ca_file});
    if (!tls.ok()) {
      std::fprintf(stderr, "tendedctl: %s\n", std::string(tls.status().message()).c_str());
      return 2;
    }
    credentials = *std::move(tls);
  }
  Ctl ctl(options, grpc::CreateChannel(options.address, credentials));
  const std::string& command = args[0];
  if (command == "status" && args.size() == 1) return ctl.ShowStatus();
  if (command == "explain") {
    std::optional<tended::v1::LeaseKind> kind = ParseKind(args);
    return kind.has_value() ? ctl.Explain(*kind) : Usage();
  }
  if (command == "nodes") return ctl.Nodes();
  if (command == "leases") return ctl.Leases(options.all);
  if (command == "gates") {
    std::optional<tended::v1::LeaseKind> kind = ParseKind(args);
    return kind.has_value() ? ctl.Gates(*kind) : Usage();
  }
  if (command == "halt" && args.size() >= 2) return ctl.Halt(JoinFrom(args, 1));
  if (command == "resume") return ctl.Resume();
  if (command == "resume-rollout" && args.size() >= 2) return ctl.ResumeRollout(JoinFrom(args, 1));
  if (command == "release" && args.size() >= 3) return ctl.Release(args[1], JoinFrom(args, 2));
  if (command == "remove" && args.size() >= 3) return ctl.Remove(args[1], JoinFrom(args, 2));
  if (command == "events") return ctl.Events(options.after, options.follow);
  if (command == "audit") return ctl.Audit();
  if (command == "k8s-rollout" && args.size() >= 2) {
    const std::string& verb = args[1];
    if (verb == "start" && args.size() >= 4) {
      int code = ctl.StartK8sRollout(std::vector<std::string>(args.begin() + 2, args.end()));
      return code == 2 ? Usage() : code;
    }
    if (verb == "get") return ctl.GetK8sRollout(args.size() >= 3 ? args[2] : "");
    if (verb == "list") return ctl.ListK8sRollouts();
    if (verb == "cancel" && args.size() >= 4)
      return ctl.CancelK8sRollout(args[2], JoinFrom(args, 3));
  }
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
