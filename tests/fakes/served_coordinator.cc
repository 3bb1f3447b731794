#include "tests/fakes/served_coordinator.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/clock.h"

namespace tended::testing {

absl::StatusOr<std::unique_ptr<ServedCoordinator>> ServedCoordinator::Start(
    const coordinator::CoordinatorConfig& config, Options options) {
  std::unique_ptr<ServedCoordinator> served(new ServedCoordinator());
  coordinator::state::EmbeddedLedger::Options ledger_options;
  ledger_options.dir = config.state_dir;
  ledger_options.holder_description = "a test's served coordinator";
  ledger_options.event_limit = static_cast<size_t>(config.history_limit);
  ledger_options.legacy_state_file = config.legacy_state_file;
  auto ledger = coordinator::state::EmbeddedLedger::Open(std::move(ledger_options));
  if (!ledger.ok()) return ledger.status();
  served->ledger_ = *std::move(ledger);
  if (served->ledger_->recovered_empty() && served->ledger_->previously_used() &&
      !options.recover_state) {
    return absl::FailedPreconditionError(
        "the state is empty but the folder was used before: start with recover_state");
  }
  coordinator::Coordinator::Options coordinator_options;
  coordinator_options.alerts = std::move(options.alerts);
  coordinator_options.recover_state = options.recover_state;
  auto created = coordinator::Coordinator::Create(config, Clock::Real(), served->ledger_.get(),
                                                  std::move(coordinator_options));
  if (!created.ok()) return created.status();
  served->coordinator_ = *std::move(created);
  if (options.before_serving) options.before_serving(*served->coordinator_);
  auto server = coordinator::CoordinatorServer::Start(
      *served->coordinator_, absl::StrCat("127.0.0.1:", options.port),
      options.credentials != nullptr ? options.credentials : grpc::InsecureServerCredentials(),
      options.server);
  if (!server.ok()) return server.status();
  served->server_ = *std::move(server);
  return served;
}

ServedCoordinator::~ServedCoordinator() {
  if (server_ != nullptr) server_->Shutdown();
  server_.reset();
  coordinator_.reset();
  ledger_.reset();
}

std::string ServedCoordinator::address() const { return absl::StrCat("127.0.0.1:", port()); }

std::shared_ptr<grpc::Channel> ServedCoordinator::NewChannel() const {
  return grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
}

coordinator::CoordinatorConfig LoopbackCoordinatorConfig(const std::string& state_dir,
                                                         absl::Duration soak) {
  coordinator::CoordinatorConfig config;
  config.listen_address = "127.0.0.1:0";
  config.state_dir = state_dir;
  config.legacy_state_file = state_dir + "/state.json";
  config.fleet.report_deadline = absl::Seconds(2);
  config.fleet.report_interval = absl::Milliseconds(200);
  coordinator::LeasePolicy reboot;
  reboot.concurrency = 1;
  reboot.soak = soak;
  reboot.expected_duration = absl::Seconds(5);
  reboot.renew_deadline = absl::Seconds(30);
  reboot.return_deadline = absl::Seconds(30);
  config.leases[tended::v1::LEASE_KIND_REBOOT] = reboot;
  return config;
}

}  // namespace tended::testing
