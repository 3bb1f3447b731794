#include "coordinator/notify/notifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/http_metrics_server.h"
#include "common/metrics.h"
#include "common/proto_time.h"
#include "coordinator/core/coordinator.h"
#include "tests/fakes/agent_requests.h"
#include "tests/fakes/capture_http_server.h"
#include "tests/fakes/coordinator_harness.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http_client.h"
#include "tests/fakes/free_port.h"
#include "tests/fakes/http_probe.h"

namespace tended::coordinator {
namespace {

using ::tended::testing::CaptureServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// ---- URL parsing and templates ----

TEST(NotificationUrlTest, SlackForms) {
  auto hook =
      ParseNotificationUrl("slack://hook:T0001-B0002-Xsecret3@webhook", kDefaultSlackApiBase);
  ASSERT_TRUE(hook.ok()) << hook.status();
  EXPECT_EQ(hook->kind, SinkKind::kSlack);
  EXPECT_EQ(hook->endpoint, "https://hooks.slack.com/services/T0001/B0002/Xsecret3");
  EXPECT_EQ(hook->label, "slack");
  EXPECT_EQ(hook->slack_username, "");

  auto legacy = ParseNotificationUrl("slack://T0001/B0002/Xsecret3", "http://127.0.0.1:9/");
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  EXPECT_EQ(legacy->endpoint, "http://127.0.0.1:9/services/T0001/B0002/Xsecret3");

  auto named = ParseNotificationUrl("slack://tended@T0001/B0002/Xsecret3", kDefaultSlackApiBase);
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->endpoint, "https://hooks.slack.com/services/T0001/B0002/Xsecret3");
  EXPECT_EQ(named->slack_username, "tended");
}

TEST(NotificationUrlTest, GenericForms) {
  auto https = ParseNotificationUrl("generic+https://user:pw@hooks.example.com:8443/in/x?a=b",
                                    kDefaultSlackApiBase);
  ASSERT_TRUE(https.ok()) << https.status();
  EXPECT_EQ(https->kind, SinkKind::kGeneric);
  EXPECT_EQ(https->endpoint, "https://user:pw@hooks.example.com:8443/in/x?a=b");
  EXPECT_EQ(https->label, "generic+https://hooks.example.com:8443");
  auto http = ParseNotificationUrl("generic+http://10.0.0.5/hook", kDefaultSlackApiBase);
  ASSERT_TRUE(http.ok()) << http.status();
  EXPECT_EQ(http->endpoint, "http://10.0.0.5/hook");
  EXPECT_EQ(http->label, "generic+http://10.0.0.5");
}

TEST(NotificationUrlTest, RefusesWhatItCannotDeliver) {
  struct Case {
    const char* url;
    const char* says;
  };
  for (const Case& c : {
           Case{"teams://group@tenant/altId/groupOwner", "unsupported notification service"},
           Case{"smtp://user:pass@host:25/?to=a@b", "unsupported notification service"},
           Case{"slack://xoxb:123-456@C0123", "bot tokens"},
           Case{"slack://hook:T1-B2@webhook", "three parts"},
           Case{"slack://hook:T1-B2-X3@elsewhere", "expected slack://hook"},
           Case{"slack://T1/B2", "expected slack://T"},
           Case{"slack://T1/B2/X3?channel=ops", "no query"},
           Case{"slack://T1/B-2/X3", "letters and digits"},
           Case{"https://hooks.slack.com/services/T1/B2/X3", "slack://T"},
           Case{"https://example.com/hook", "generic+https://example.com/hook"},
           Case{"generic+https:///path", "missing host"},
           Case{"no scheme at all", "spaces"},
           Case{"example.com/hook", "not a URL"},
           Case{"", "empty"},
       }) {
    auto sink = ParseNotificationUrl(c.url, kDefaultSlackApiBase);
    EXPECT_TRUE(absl::IsInvalidArgument(sink.status())) << c.url;
    EXPECT_THAT(sink.status().message(), HasSubstr(c.says)) << c.url;
  }
}

TEST(NotificationTemplateTest, CheckAndExpand) {
  EXPECT_EQ(TemplateProblem("Draining {node} ({kind}) {{literal}}"), "");
  EXPECT_THAT(TemplateProblem("Draining {nodes}"), HasSubstr("unknown placeholder {nodes}"));
  EXPECT_THAT(TemplateProblem("Draining {node"), HasSubstr("without its"));
  EXPECT_THAT(TemplateProblem("Draining node}"), HasSubstr("lone"));
  EXPECT_EQ(ExpandTemplate("Draining {node} ({kind}) {{x}} {lease}",
                           {{"node", "n1"}, {"kind", "reboot"}}),
            "Draining n1 (reboot) {x} ");
  for (Transition transition : kAllTransitions) {
    EXPECT_EQ(TemplateProblem(DefaultTemplate(transition)), "") << TransitionName(transition);
    EXPECT_EQ(TransitionFromName(TransitionName(transition)), transition);
  }
  EXPECT_FALSE(TransitionFromName("drained").has_value());
}

TEST(NotificationPayloadTest, ExactBodies) {
  Notification notification;
  notification.transition = Transition::kVerified;
  notification.text = "Node \"n1\" is back";
  notification.node = "n1";
  notification.lease = "lease-7";
  notification.kind = "reboot";
  notification.detail = "verified and released: ok";
  notification.time = absl::FromUnixSeconds(1767225600);
  notification.sequence = 12;
  notification.fencing_token = 7;
  NotificationSink slack;
  EXPECT_EQ(SlackPayload(notification, slack), R"({"text":"Node \"n1\" is back"})");
  slack.slack_username = "tended";
  EXPECT_EQ(SlackPayload(notification, slack),
            R"({"text":"Node \"n1\" is back","username":"tended"})");
  EXPECT_EQ(GenericPayload(notification),
            R"({"detail":"verified and released: ok","event":"verified","fencing_token":7,)"
            R"("kind":"reboot","lease":"lease-7","message":"Node \"n1\" is back","node":"n1",)"
            R"("sequence":12,"time":"2026-01-01T00:00:00Z"})");
}

// ---- Delivery, against a real coordinator ----

class NotifierTest : public ::testing::Test {
 protected:
  static CoordinatorConfig Config() {
    CoordinatorConfig config;
    config.fleet.report_deadline = absl::Minutes(2);
    config.fleet.report_interval = absl::Seconds(30);
    LeasePolicy reboot;
    reboot.soak = absl::ZeroDuration();
    config.leases[tended::v1::LEASE_KIND_REBOOT] = reboot;
    return config;
  }

  NotifierTest() : harness_(Config()) {}

  void SetUp() override {
    ASSERT_TRUE(harness_.Start().ok());
    coordinator_ = harness_.get();
    // A first start grants nothing until every agent could report: node-a and node-b do.
    for (const char* node : {"node-a", "node-b"}) Report(node, "boot-1", false);
    clock_.Advance(Config().fleet.report_deadline + absl::Seconds(1));
    for (const char* node : {"node-a", "node-b"}) Report(node, "boot-1", false);
    coordinator_->Tick();
  }
  void TearDown() override {
    coordinator_->SetEventListener(nullptr);
    if (notifier_ != nullptr) notifier_->Stop();
  }

  void StartNotifier(const NotificationsConfig& notifications, Notifier::Options options = {}) {
    options.retry_backoff = absl::Milliseconds(10);
    options.check_interval = absl::Hours(1);  // Tests call CheckBlocked themselves.
    auto notifier =
        Notifier::Create(notifications, clock_, coordinator_, &registry_, std::move(options));
    ASSERT_TRUE(notifier.ok()) << notifier.status();
    notifier_ = *std::move(notifier);
    coordinator_->SetEventListener(
        [raw = notifier_.get()](const tended::v1::Event& event) { raw->OnEvent(event); });
    notifier_->Start();
  }

  void Report(const std::string& node, const std::string& boot_id, bool reboot_required = true) {
    ASSERT_TRUE(
        coordinator_->ReportFacts(testing::FactsReport(node, boot_id, reboot_required)).ok());
  }

  tended::v1::AcquireLeaseResponse Ask(const std::string& node) {
    auto response =
        coordinator_->AcquireLease(testing::RebootLeaseRequest(node, "reboot-required"));
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : tended::v1::AcquireLeaseResponse();
  }

  // A whole reboot of `node`: granted, disrupting, back with a new boot id, verified.
  tended::v1::Lease RebootCycle(const std::string& node) {
    Report(node, "boot-1");
    tended::v1::AcquireLeaseResponse granted = Ask(node);
    EXPECT_TRUE(granted.has_lease());
    EXPECT_TRUE(
        coordinator_->BeginDisruption(testing::BeginRequest(granted.lease(), "reboot")).ok());
    clock_.Advance(absl::Minutes(3));
    Report(node, "boot-2", /*reboot_required=*/false);
    coordinator_->Tick();
    return granted.lease();
  }

  double Counter(const std::string& family, const std::string& sink) {
    std::string text = registry_.Render();
    std::string needle = absl::StrCat(family, "{sink=\"", sink, "\"} ");
    size_t at = text.find(needle);
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + needle.size()));
  }

  testing::CoordinatorHarness harness_;
  testing::FakeClock& clock_ = harness_.clock();
  Coordinator* coordinator_ = nullptr;
  metrics::Registry registry_;
  std::unique_ptr<Notifier> notifier_;
};

TEST_F(NotifierTest, SlackAndGenericWebhooksGetEveryTransition) {
  CaptureServer slack, generic;
  NotificationsConfig notifications;
  notifications.slack_api_base = slack.Base();
  notifications.urls = {
      "slack://hook:T0001-B0002-Xsecret3@webhook",
      absl::StrCat("generic+http://127.0.0.1:", generic.port(), "/hook?team=ops")};
  notifications.templates["rebooted"] = "{node} rebooted ({kind}, token {token})";
  StartNotifier(notifications);

  tended::v1::Lease lease = RebootCycle("node-a");
  ASSERT_TRUE(notifier_->WaitIdleForTest(absl::Seconds(20)));

  std::vector<std::string> slack_bodies;
  for (const HttpRequest& request : slack.requests()) {
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.target, "/services/T0001/B0002/Xsecret3");
    EXPECT_EQ(request.headers.at("content-type"), "application/json");
    slack_bodies.push_back(request.body);
  }
  const std::string token = absl::StrCat(lease.fencing_token());
  auto slack_text = [](const std::string& text) {
    return absl::StrCat("{\"text\":\"", text, "\"}");
  };
  EXPECT_THAT(
      slack_bodies,
      ElementsAre(slack_text(absl::StrCat("Taking node node-a out for reboot: reboot (lease ",
                                          lease.id(), ")")),
                  slack_text(absl::StrCat("node-a rebooted (reboot, token ", token, ")")),
                  slack_text(absl::StrCat("Node node-a is back and verified after reboot; "
                                          "lease ",
                                          lease.id(), " released"))));

  std::vector<HttpRequest> generic_requests = generic.requests();
  ASSERT_EQ(generic_requests.size(), 3u);
  EXPECT_EQ(generic_requests[0].target, "/hook?team=ops");
  std::vector<std::string> events;
  for (const HttpRequest& request : generic_requests) {
    nlohmann::json body = nlohmann::json::parse(request.body);
    events.push_back(body["event"]);
    EXPECT_EQ(body["node"], "node-a");
    EXPECT_EQ(body["lease"], lease.id());
    EXPECT_EQ(body["kind"], "reboot");
    EXPECT_EQ(body["fencing_token"], lease.fencing_token());
    EXPECT_GT(body["sequence"].get<uint64_t>(), 0u);
    EXPECT_TRUE(body["time"].get<std::string>().starts_with("2026-01-01T00:"));
  }
  EXPECT_THAT(events, ElementsAre("disrupting", "rebooted", "verified"));
  nlohmann::json verified = nlohmann::json::parse(generic_requests[2].body);
  EXPECT_THAT(verified["detail"].get<std::string>(), HasSubstr("verified and released"));
  EXPECT_EQ(verified["message"], nlohmann::json::parse(slack_bodies[2])["text"]);

  EXPECT_EQ(Counter("tended_notifications_sent_total", "slack"), 3);
  EXPECT_EQ(Counter("tended_notifications_sent_total",
                    absl::StrCat("generic+http://127.0.0.1:", generic.port())),
            3);
  EXPECT_EQ(Counter("tended_notifications_failed_total", "slack"), 0);
}

TEST_F(NotifierTest, AFailingEndpointIsRetriedCountedAndNeverBlocksTheFlow) {
  CaptureServer broken;
  broken.Answer(500);
  auto unreachable = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(unreachable.ok());
  NotificationsConfig notifications;
  notifications.slack_api_base = broken.Base();
  notifications.urls = {"slack://T1/B2/X3",
                        absl::StrCat("generic+http://127.0.0.1:", *unreachable, "/hook")};
  notifications.timeout = absl::Seconds(2);
  notifications.templates["disrupting"] = "";  // Silenced: only "rebooted" and "verified".
  StartNotifier(notifications);

  RebootCycle("node-a");
  ASSERT_TRUE(notifier_->WaitIdleForTest(absl::Seconds(30)));
  // Two messages, three attempts each.
  EXPECT_EQ(broken.requests().size(), 6u);
  EXPECT_EQ(Counter("tended_notifications_failed_total", "slack"), 2);
  EXPECT_EQ(Counter("tended_notifications_sent_total", "slack"), 0);
  std::string unreachable_sink = absl::StrCat("generic+http://127.0.0.1:", *unreachable);
  EXPECT_EQ(Counter("tended_notifications_failed_total", unreachable_sink), 2);
  // The lease flow went on regardless: released after verification.
  auto leases = coordinator_->ListLeases({});
  EXPECT_EQ(leases.leases_size(), 0);
}

TEST_F(NotifierTest, ASlowEndpointTimesOutWhileTheCoordinatorCarriesOn) {
  CaptureServer slow;
  slow.Hold();
  NotificationsConfig notifications;
  notifications.slack_api_base = slow.Base();
  notifications.urls = {"slack://T1/B2/X3"};
  notifications.timeout = absl::Milliseconds(300);
  Notifier::Options options;
  options.max_attempts = 1;
  StartNotifier(notifications, options);

  // The whole cycle completes while the webhook has not answered the first message.
  RebootCycle("node-a");
  ASSERT_TRUE(slow.WaitForRequests(1));
  EXPECT_EQ(coordinator_->ListLeases({}).leases_size(), 0);
  auto events = coordinator_->ListEvents({});
  ASSERT_TRUE(events.ok());
  // The held request times out on our side and counts as failed while still held.
  EXPECT_TRUE(testing::PollUntil(
                  [&]() -> absl::StatusOr<bool> {
                    return Counter("tended_notifications_failed_total", "slack") >= 1;
                  },
                  absl::Seconds(20), "the slow webhook to count as failed")
                  .ok());
  EXPECT_EQ(Counter("tended_notifications_sent_total", "slack"), 0);
  slow.Release();
  ASSERT_TRUE(notifier_->WaitIdleForTest(absl::Seconds(30)));
}

// The Slack "text" of every request the fake client got.
std::vector<std::string> Texts(const testing::FakeHttpClient& http) {
  std::vector<std::string> out;
  for (const HttpClient::Request& request : http.requests()) {
    out.push_back(nlohmann::json::parse(request.body)["text"]);
  }
  return out;
}

tended::v1::Event HaltEvent(uint64_t sequence, const std::string& reason) {
  tended::v1::Event event;
  event.set_sequence(sequence);
  event.set_type(tended::v1::EVENT_TYPE_HALTED);
  event.set_message(reason);
  *event.mutable_time() = ToProtoTimestamp(absl::FromUnixSeconds(1767225600));
  return event;
}

TEST_F(NotifierTest, RetriesTransientFailuresButNotRefusals) {
  auto http = std::make_shared<testing::FakeHttpClient>();
  NotificationsConfig notifications;
  notifications.urls = {"slack://T1/B2/X3"};
  Notifier::Options options;
  options.http = http;
  StartNotifier(notifications, options);
  http->Script(notifier_->sinks()[0].endpoint,
               {testing::FakeHttpClient::Answer(503), absl::DeadlineExceededError("timed out"),
                testing::FakeHttpClient::Answer(200, "ok"),
                testing::FakeHttpClient::Answer(400, "invalid_payload")});
  notifier_->OnEvent(HaltEvent(1, "first"));
  notifier_->OnEvent(HaltEvent(2, "second"));
  ASSERT_TRUE(notifier_->WaitIdleForTest(absl::Seconds(20)));
  EXPECT_THAT(Texts(*http), ElementsAre("Disruptions halted: first", "Disruptions halted: first",
                                        "Disruptions halted: first", "Disruptions halted: second"));
  for (const HttpClient::Request& request : http->requests()) {
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.url, "https://hooks.slack.com/services/T1/B2/X3");
    EXPECT_EQ(request.url_for_messages, "slack");
  }
  EXPECT_EQ(Counter("tended_notifications_sent_total", "slack"), 1);
  EXPECT_EQ(Counter("tended_notifications_failed_total", "slack"), 1);
}

TEST_F(NotifierTest, AFullQueueDropsTheOldestAndCountsIt) {
  auto http = std::make_shared<testing::FakeHttpClient>();
  http->Hold(true);
  NotificationsConfig notifications;
  notifications.urls = {"slack://T1/B2/X3"};
  Notifier::Options options;
  options.http = http;
  options.max_queue = 2;
  StartNotifier(notifications, options);
  notifier_->OnEvent(HaltEvent(1, "in flight"));
  ASSERT_TRUE(http->WaitForRequests(1));
  for (int i = 2; i <= 5; ++i) notifier_->OnEvent(HaltEvent(i, absl::StrCat("queued ", i)));
  http->Hold(false);
  ASSERT_TRUE(notifier_->WaitIdleForTest(absl::Seconds(20)));
  EXPECT_THAT(Texts(*http),
              ElementsAre("Disruptions halted: in flight", "Disruptions halted: queued 4",
                          "Disruptions halted: queued 5"));
  EXPECT_THAT(registry_.Render(), HasSubstr("tended_notifications_dropped_total 2\n"));
}

TEST_F(NotifierTest, BlockedLongerThanTheThresholdIsAnnouncedOncePerEpisode) {
  auto http = std::make_shared<testing::FakeHttpClient>();
  NotificationsConfig notifications;
  notifications.urls = {"slack://T1/B2/X3"};
  notifications.blocked_threshold = absl::Hours(1);
  notifications.templates["halted"] = "";
  notifications.templates["resumed"] = "";
  Notifier::Options options;
  options.http = http;
  StartNotifier(notifications, options);

  Report("node-a", "boot-1");
  tended::v1::HaltRequest halt;
  halt.set_reason("change freeze");
  ASSERT_TRUE(coordinator_->Halt(halt).ok());
  EXPECT_FALSE(Ask("node-a").has_lease());

  clock_.Advance(absl::Minutes(59));
  Report("node-a", "boot-1");
  notifier_->CheckBlocked();
  clock_.Advance(absl::Minutes(2));
  Report("node-a", "boot-1");
  notifier_->CheckBlocked();
  clock_.Advance(absl::Minutes(30));
  Report("node-a", "boot-1");
  notifier_->CheckBlocked();  // Same episode: nothing new.
  ASSERT_TRUE(notifier_->WaitIdleForTest(absl::Seconds(20)));
  std::vector<std::string> texts = Texts(*http);
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_THAT(texts[0], HasSubstr("Node node-a has waited 1h1m for a reboot lease: halt: "));
  EXPECT_THAT(texts[0], HasSubstr("change freeze"));

  // Resumed: granted, so the episode ends. A new wait starts a new episode.
  ASSERT_TRUE(coordinator_->Resume().ok());
  coordinator_->Tick();
  notifier_->CheckBlocked();
  Report("node-b", "boot-1");
  EXPECT_FALSE(Ask("node-b").has_lease());  // node-a holds the only slot.
  clock_.Advance(absl::Minutes(90));
  Report("node-b", "boot-1");
  notifier_->CheckBlocked();
  ASSERT_TRUE(notifier_->WaitIdleForTest(absl::Seconds(20)));
  texts = Texts(*http);
  ASSERT_EQ(texts.size(), 2u);
  EXPECT_THAT(texts[1], HasSubstr("Node node-b has waited 1h30m for a reboot lease: concurrency"));
}

TEST_F(NotifierTest, KubernetesStepsAndRolloutStops) {
  auto http = std::make_shared<testing::FakeHttpClient>();
  NotificationsConfig notifications;
  notifications.urls = {"slack://T1/B2/X3"};
  Notifier::Options options;
  options.http = http;
  StartNotifier(notifications, options);
  tended::v1::Event drain;
  drain.set_sequence(1);
  drain.set_type(tended::v1::EVENT_TYPE_KUBERNETES_STEP);
  drain.set_node_name("k8s-node2");
  drain.set_lease_id("lease-3");
  drain.set_lease_kind(tended::v1::LEASE_KIND_REBOOT);
  drain.set_message("the node is cordoned and drained before it may reboot");
  notifier_->OnEvent(drain);
  tended::v1::Event stopped;
  stopped.set_sequence(2);
  stopped.set_type(tended::v1::EVENT_TYPE_ROLLOUT_STOPPED);
  stopped.set_node_name("k8s-node4");
  stopped.set_message("os_upgrade rollout stopped: dpkg failed");
  notifier_->OnEvent(stopped);
  ASSERT_TRUE(notifier_->WaitIdleForTest(absl::Seconds(20)));
  EXPECT_THAT(Texts(*http),
              ElementsAre("Node k8s-node2 (reboot, lease lease-3): the node is cordoned and "
                          "drained before it may reboot",
                          "OS upgrades stopped at node k8s-node4: os_upgrade rollout stopped: "
                          "dpkg failed"));
}

TEST_F(NotifierTest, AKubernetesUpgradeFoundByDetectionIsAnnounced) {
  auto http = std::make_shared<testing::FakeHttpClient>();
  NotificationsConfig notifications;
  notifications.urls = {"slack://T1/B2/X3"};
  Notifier::Options options;
  options.http = http;
  StartNotifier(notifications, options);
  tended::v1::Event available;
  available.set_sequence(1);
  available.set_type(tended::v1::EVENT_TYPE_K8S_UPGRADE_AVAILABLE);
  available.set_message("Kubernetes 1.30.5 is available (patch; the cluster runs 1.30.2)");
  notifier_->OnEvent(available);
  ASSERT_TRUE(notifier_->WaitIdleForTest(absl::Seconds(20)));
  EXPECT_THAT(Texts(*http),
              ElementsAre("Kubernetes 1.30.5 is available (patch; the cluster runs 1.30.2)"));
}

TEST_F(NotifierTest, NoUrlsMeansNothingQueued) {
  NotificationsConfig notifications;
  StartNotifier(notifications);
  RebootCycle("node-a");
  notifier_->CheckBlocked();
  EXPECT_TRUE(notifier_->WaitIdleForTest(absl::Seconds(5)));
  EXPECT_THAT(notifier_->sinks(), IsEmpty());
  EXPECT_THAT(registry_.Render(), HasSubstr("tended_notifications_dropped_total 0\n"));
}

TEST(NotifierCreateTest, RefusesABadConfiguration) {
  testing::FakeClock clock;
  metrics::Registry registry;
  NotificationsConfig notifications;
  notifications.urls = {"discord://token@id"};
  auto notifier = Notifier::Create(notifications, clock, nullptr, &registry, {});
  EXPECT_TRUE(absl::IsInvalidArgument(notifier.status()));
  EXPECT_THAT(notifier.status().message(), HasSubstr("notifications.urls[0]"));
  notifications.urls = {"slack://T1/B2/X3"};
  notifications.templates["draining"] = "x";
  EXPECT_FALSE(Notifier::Create(notifications, clock, nullptr, &registry, {}).ok());
}

}  // namespace
}  // namespace tended::coordinator
