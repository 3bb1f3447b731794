#include "coordinator/kube/http_kube_client.h"

#include <sys/stat.h>

#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kube_api_server.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/coordinator/kube/kube_test_util.h"

namespace tended::kube {
namespace {

using tended::testing::FakeClock;
using tended::testing::FakeKubeApiServer;
using tended::testing::FakeNodeSpec;
using tended::testing::FakePodSpec;
using tended::testing::MakeDaemonSetJson;
using tended::testing::MakeNodeJson;
using tended::testing::MakePodJson;
using tended::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

class HttpKubeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    client_ = testing::ClientFor(server_, clock_);
    ASSERT_NE(client_, nullptr);
  }

  FakeClock clock_;
  FakeKubeApiServer server_{clock_};
  std::unique_ptr<HttpKubeClient> client_;
};

TEST_F(HttpKubeClientTest, GetNodeReadsReadinessBootIdAndKubeletVersion) {
  absl::Time transition = absl::FromUnixSeconds(1767000000);
  server_.AddNode(MakeNodeJson(FakeNodeSpec("k8s-node1")
                                   .Ready("True")
                                   .TransitionAt(transition)
                                   .BootId("b-123")
                                   .Kubelet("v1.30.4")
                                   .Label("role", "worker")
                                   .Annotation("a", "b")));
  server_.UpdateNode("k8s-node1", [](nlohmann::json& node) {
    node["spec"]["taints"] = {{{"key", "k"}, {"value", "v"}, {"effect", "NoSchedule"}}};
  });

  absl::StatusOr<NodeInfo> node = client_->GetNode("k8s-node1");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->name, "k8s-node1");
  EXPECT_EQ(node->ready, ConditionStatus::kTrue);
  EXPECT_EQ(node->ready_last_transition, transition);
  EXPECT_EQ(node->ready_reason, "KubeletReady");
  EXPECT_EQ(node->boot_id, "b-123");
  EXPECT_EQ(node->kubelet_version, "v1.30.4");
  EXPECT_FALSE(node->unschedulable);
  EXPECT_EQ(node->labels.at("role"), "worker");
  EXPECT_EQ(node->annotations.at("a"), "b");
  EXPECT_THAT(node->taints, ElementsAre(Taint{"k", "v", "NoSchedule"}));
  EXPECT_EQ(node->resource_version,
            server_.GetNode("k8s-node1")->at("metadata").at("resourceVersion"));
}

TEST_F(HttpKubeClientTest, NodeWithoutReadyConditionIsUnknown) {
  server_.AddNode(MakeNodeJson(FakeNodeSpec("n").Ready("")));
  absl::StatusOr<NodeInfo> node = client_->GetNode("n");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->ready, ConditionStatus::kUnknown);
  EXPECT_EQ(node->ready_last_transition, absl::InfinitePast());
}

TEST_F(HttpKubeClientTest, MissingNodeIsNotFound) {
  absl::StatusOr<NodeInfo> node = client_->GetNode("ghost");
  EXPECT_EQ(node.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(node.status().message(), HasSubstr("/api/v1/nodes/ghost"));
  EXPECT_THAT(node.status().message(), HasSubstr("404"));
}

TEST_F(HttpKubeClientTest, ListNodesHonoursLabelSelector) {
  server_.AddNode(MakeNodeJson(FakeNodeSpec("cp").Label("tier", "cp")));
  server_.AddNode(MakeNodeJson(FakeNodeSpec("w1").Ready("False").Label("tier", "worker")));
  server_.AddNode(MakeNodeJson(FakeNodeSpec("w2").Label("tier", "worker")));

  absl::StatusOr<KubeClient::NodeList> all = client_->ListNodes("");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->nodes.size(), 3u);
  EXPECT_EQ(all->resource_version, server_.resource_version());

  absl::StatusOr<KubeClient::NodeList> workers = client_->ListNodes("tier=worker");
  ASSERT_TRUE(workers.ok()) << workers.status();
  ASSERT_EQ(workers->nodes.size(), 2u);
  EXPECT_EQ(workers->nodes[0].name, "w1");
  EXPECT_EQ(workers->nodes[0].ready, ConditionStatus::kFalse);
  EXPECT_EQ(workers->nodes[1].name, "w2");

  absl::StatusOr<KubeClient::NodeList> not_cp = client_->ListNodes("tier!=cp");
  ASSERT_TRUE(not_cp.ok());
  EXPECT_EQ(not_cp->nodes.size(), 2u);
}

TEST_F(HttpKubeClientTest, WatchStreamsChangesAfterResourceVersion) {
  server_.AddNode(MakeNodeJson(FakeNodeSpec("w1").BootId("boot-a")));
  absl::StatusOr<KubeClient::NodeList> list = client_->ListNodes("");
  ASSERT_TRUE(list.ok());

  std::vector<NodeWatchEvent> seen;
  std::thread writer([&] {
    server_.UpdateNode("w1", [](nlohmann::json& node) {
      node["status"]["nodeInfo"]["bootID"] = "boot-b";
      node["status"]["conditions"][1]["status"] = "False";
    });
    server_.AddNode(MakeNodeJson(FakeNodeSpec("w2")));
  });
  NodeWatchOptions options;
  options.resource_version = list->resource_version;
  options.timeout = absl::Seconds(20);
  absl::StatusOr<std::string> last = client_->WatchNodes(options, [&](const NodeWatchEvent& e) {
    seen.push_back(e);
    return seen.size() < 2;
  });
  writer.join();
  ASSERT_TRUE(last.ok()) << last.status();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].type, WatchEventType::kModified);
  EXPECT_EQ(seen[0].node.name, "w1");
  EXPECT_EQ(seen[0].node.boot_id, "boot-b");
  EXPECT_EQ(seen[0].node.ready, ConditionStatus::kFalse);
  EXPECT_EQ(seen[1].type, WatchEventType::kAdded);
  EXPECT_EQ(seen[1].node.name, "w2");
  EXPECT_EQ(*last, seen[1].node.resource_version);
}

TEST_F(HttpKubeClientTest, WatchWithoutResourceVersionStartsWithCurrentNodes) {
  server_.AddNode(MakeNodeJson(FakeNodeSpec("a")));
  server_.AddNode(MakeNodeJson(FakeNodeSpec("b")));
  std::vector<std::string> names;
  NodeWatchOptions options;
  options.timeout = absl::Seconds(20);
  absl::StatusOr<std::string> last = client_->WatchNodes(options, [&](const NodeWatchEvent& e) {
    EXPECT_EQ(e.type, WatchEventType::kAdded);
    names.push_back(e.node.name);
    return names.size() < 2;
  });
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_THAT(names, ElementsAre("a", "b"));
}

TEST_F(HttpKubeClientTest, WatchEndsWhenTheServerClosesIt) {
  server_.AddNode(MakeNodeJson(FakeNodeSpec("a")));
  std::string rv = server_.resource_version();
  std::atomic<int> events{0};
  std::thread closer([&] {
    server_.UpdateNode("a", [](nlohmann::json& node) { node["metadata"]["labels"]["x"] = "1"; });
    // Give the watch a moment to deliver the update before closing it.
    for (int i = 0; i < 200 && events.load() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    server_.CloseWatches();
  });
  NodeWatchOptions options;
  options.resource_version = rv;
  options.timeout = absl::Seconds(30);
  absl::StatusOr<std::string> last = client_->WatchNodes(options, [&](const NodeWatchEvent& e) {
    ++events;
    return true;
  });
  closer.join();
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(events.load(), 1);
  EXPECT_EQ(*last, server_.resource_version());
}

TEST_F(HttpKubeClientTest, WatchFromCompactedVersionIsOutOfRange) {
  server_.AddNode(MakeNodeJson(FakeNodeSpec("a")));
  std::string old_rv = server_.resource_version();
  server_.UpdateNode("a", [](nlohmann::json&) {});
  server_.CompactWatchHistory();
  NodeWatchOptions options;
  options.resource_version = old_rv;
  options.timeout = absl::Seconds(20);
  absl::StatusOr<std::string> last =
      client_->WatchNodes(options, [](const NodeWatchEvent&) { return true; });
  EXPECT_EQ(last.status().code(), absl::StatusCode::kOutOfRange) << last.status();
}

TEST_F(HttpKubeClientTest, WatchCancelFlagEndsIt) {
  server_.AddNode(MakeNodeJson(FakeNodeSpec("a")));
  std::atomic<bool> cancel{false};
  NodeWatchOptions options;
  options.resource_version = server_.resource_version();
  options.timeout = absl::Seconds(30);
  options.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancel = true;
  });
  absl::StatusOr<std::string> last =
      client_->WatchNodes(options, [](const NodeWatchEvent&) { return true; });
  canceller.join();
  EXPECT_TRUE(last.ok()) << last.status();
}

TEST_F(HttpKubeClientTest, MergePatchWithStaleResourceVersionIsAborted) {
  server_.AddNode(MakeNodeJson(FakeNodeSpec("w1")));
  absl::StatusOr<NodeInfo> before = client_->GetNode("w1");
  ASSERT_TRUE(before.ok());

  absl::StatusOr<NodeInfo> patched =
      client_->PatchNodeMerge("w1", R"({"spec":{"unschedulable":true}})", before->resource_version);
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_TRUE(patched->unschedulable);
  EXPECT_NE(patched->resource_version, before->resource_version);
  EXPECT_EQ(server_.node_patches().back()["metadata"]["resourceVersion"], before->resource_version);

  absl::StatusOr<NodeInfo> stale = client_->PatchNodeMerge(
      "w1", R"({"spec":{"unschedulable":false}})", before->resource_version);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted) << stale.status();
  EXPECT_THAT(stale.status().message(), HasSubstr("409"));
  EXPECT_EQ(server_.GetNode("w1")->at("spec").at("unschedulable"), true);

  // Without a precondition the patch applies; null deletes an annotation.
  ASSERT_TRUE(
      client_
          ->PatchNodeMerge("w1", R"({"metadata":{"annotations":{"x":"1","y":"2"}}})", std::nullopt)
          .ok());
  absl::StatusOr<NodeInfo> removed =
      client_->PatchNodeMerge("w1", R"({"metadata":{"annotations":{"x":null}}})", std::nullopt);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->annotations.count("x"), 0u);
  EXPECT_EQ(removed->annotations.at("y"), "2");

  EXPECT_EQ(client_->PatchNodeMerge("w1", "[1,2]", std::nullopt).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(HttpKubeClientTest, PodsByNodeWithOwnersVolumesAndMirror) {
  server_.AddPod(MakePodJson(FakePodSpec("web", "w1")));
  server_.AddPod(MakePodJson(FakePodSpec("calico-node-x", "w1")
                                 .Namespace("kube-system")
                                 .OwnedBy("DaemonSet", "calico-node")));
  server_.AddPod(MakePodJson(
      FakePodSpec("etcd-w1", "w1").Namespace("kube-system").OwnedBy("Node", "w1").Mirror()));
  server_.AddPod(MakePodJson(
      FakePodSpec("cache", "w1").Unmanaged().EmptyDir().NotReady().Label("app", "cache")));
  server_.AddPod(MakePodJson(FakePodSpec("elsewhere", "w2")));

  absl::StatusOr<std::vector<PodInfo>> pods = client_->ListPodsOnNode("w1");
  ASSERT_TRUE(pods.ok()) << pods.status();
  ASSERT_EQ(pods->size(), 4u);
  std::map<std::string, PodInfo> by_name;
  for (const PodInfo& pod : *pods) by_name[pod.name] = pod;
  EXPECT_EQ(by_name["web"].controller_kind, "ReplicaSet");
  EXPECT_EQ(by_name["web"].node_name, "w1");
  EXPECT_TRUE(by_name["web"].ready);
  EXPECT_FALSE(by_name["web"].has_empty_dir);
  EXPECT_EQ(by_name["calico-node-x"].controller_kind, "DaemonSet");
  EXPECT_EQ(by_name["calico-node-x"].controller_name, "calico-node");
  EXPECT_EQ(by_name["calico-node-x"].namespace_name, "kube-system");
  EXPECT_TRUE(by_name["etcd-w1"].is_mirror);
  EXPECT_TRUE(by_name["cache"].controller_kind.empty());
  EXPECT_TRUE(by_name["cache"].has_empty_dir);
  EXPECT_FALSE(by_name["cache"].ready);
  EXPECT_EQ(by_name["cache"].labels.at("app"), "cache");
  EXPECT_EQ(by_name["cache"].uid, "uid-default-cache");

  PodListOptions by_label;
  by_label.label_selector = "app=cache";
  absl::StatusOr<std::vector<PodInfo>> cache = client_->ListPods(by_label);
  ASSERT_TRUE(cache.ok());
  ASSERT_EQ(cache->size(), 1u);
  EXPECT_EQ((*cache)[0].name, "cache");

  absl::StatusOr<std::vector<PodInfo>> everything = client_->ListPods(PodListOptions());
  ASSERT_TRUE(everything.ok());
  EXPECT_EQ(everything->size(), 5u);
}

TEST_F(HttpKubeClientTest, EvictionOutcomes) {
  for (const char* name : {"ok", "pdb", "pdb-retry", "two-pdbs", "ns-gone", "nope"}) {
    server_.AddPod(MakePodJson(FakePodSpec(name, "w1")));
  }
  server_.SetEvictionRule("default", "pdb", FakeKubeApiServer::EvictionRule::Block(-1));
  server_.SetEvictionRule("default", "pdb-retry", FakeKubeApiServer::EvictionRule::Block(1, 10));
  server_.SetEvictionRule("default", "two-pdbs", FakeKubeApiServer::EvictionRule::Fixed(500));
  server_.SetEvictionRule("default", "ns-gone",
                          FakeKubeApiServer::EvictionRule::Fixed(403, "NamespaceTerminating"));
  server_.SetEvictionRule("default", "nope", FakeKubeApiServer::EvictionRule::Fixed(403));

  absl::StatusOr<EvictionResult> ok = client_->EvictPod("default", "ok", absl::Seconds(30));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->outcome, EvictionOutcome::kEvicted);
  EXPECT_FALSE(server_.GetPod("default", "ok").has_value());
  nlohmann::json body = server_.eviction_bodies().back();
  EXPECT_EQ(body["kind"], "Eviction");
  EXPECT_EQ(body["apiVersion"], "policy/v1");
  EXPECT_EQ(body["metadata"]["name"], "ok");
  EXPECT_EQ(body["deleteOptions"]["gracePeriodSeconds"], 30);

  absl::StatusOr<EvictionResult> gone = client_->EvictPod("default", "ok", std::nullopt);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->outcome, EvictionOutcome::kNotFound);
  EXPECT_FALSE(server_.eviction_bodies().back().contains("deleteOptions"));

  absl::StatusOr<EvictionResult> pdb = client_->EvictPod("default", "pdb", std::nullopt);
  ASSERT_TRUE(pdb.ok());
  EXPECT_EQ(pdb->outcome, EvictionOutcome::kBlockedByPdb);
  EXPECT_FALSE(pdb->retry_after.has_value());
  EXPECT_THAT(pdb->message, HasSubstr("disruption budget"));

  absl::StatusOr<EvictionResult> retry = client_->EvictPod("default", "pdb-retry", std::nullopt);
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(retry->outcome, EvictionOutcome::kBlockedByPdb);
  EXPECT_EQ(retry->retry_after, absl::Seconds(10));
  retry = client_->EvictPod("default", "pdb-retry", std::nullopt);
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(retry->outcome, EvictionOutcome::kEvicted);

  absl::StatusOr<EvictionResult> two = client_->EvictPod("default", "two-pdbs", std::nullopt);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->outcome, EvictionOutcome::kTooManyPdbs);

  absl::StatusOr<EvictionResult> ns = client_->EvictPod("default", "ns-gone", std::nullopt);
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(ns->outcome, EvictionOutcome::kNamespaceTerminating);

  absl::StatusOr<EvictionResult> forbidden = client_->EvictPod("default", "nope", std::nullopt);
  ASSERT_TRUE(forbidden.ok());
  EXPECT_EQ(forbidden->outcome, EvictionOutcome::kForbidden);
}

TEST_F(HttpKubeClientTest, GetAndDeletePod) {
  server_.AddPod(MakePodJson(FakePodSpec("web", "w1")));
  server_.SetPodDeletionDelay(absl::Seconds(30));
  ASSERT_TRUE(client_->DeletePod("default", "web", absl::Seconds(5)).ok());
  EXPECT_THAT(server_.deleted_pods(), ElementsAre("default/web"));

  absl::StatusOr<PodInfo> deleting = client_->GetPod("default", "web");
  ASSERT_TRUE(deleting.ok()) << deleting.status();
  ASSERT_TRUE(deleting->deletion_timestamp.has_value());
  EXPECT_EQ(*deleting->deletion_timestamp,
            absl::FromUnixSeconds(absl::ToUnixSeconds(clock_.Now())));

  clock_.Advance(absl::Seconds(31));
  EXPECT_EQ(client_->GetPod("default", "web").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->DeletePod("default", "web", std::nullopt).code(), absl::StatusCode::kNotFound);
}

TEST_F(HttpKubeClientTest, EventsAndDaemonSets) {
  clock_.Set(absl::FromUnixSeconds(1767225600));
  ASSERT_TRUE(
      client_->CreateNodeEvent("w1", "TendedDrainStarted", "draining for reboot", "Normal").ok());
  std::vector<nlohmann::json> events = server_.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["involvedObject"]["kind"], "Node");
  EXPECT_EQ(events[0]["involvedObject"]["name"], "w1");
  EXPECT_EQ(events[0]["reason"], "TendedDrainStarted");
  EXPECT_EQ(events[0]["message"], "draining for reboot");
  EXPECT_EQ(events[0]["type"], "Normal");
  EXPECT_EQ(events[0]["firstTimestamp"], "2026-01-01T00:00:00Z");
  EXPECT_EQ(events[0]["metadata"]["namespace"], "default");
  // A second event in the same instant gets its own name.
  ASSERT_TRUE(client_->CreateNodeEvent("w1", "TendedDrainStarted", "again", "Normal").ok());
  ASSERT_EQ(server_.events().size(), 2u);
  EXPECT_NE(server_.events()[1]["metadata"]["name"], events[0]["metadata"]["name"]);

  server_.AddDaemonSet(MakeDaemonSetJson("calico-system", "calico-node", 5, 4));
  absl::StatusOr<DaemonSetInfo> ds = client_->GetDaemonSet("calico-system", "calico-node");
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->desired_number_scheduled, 5);
  EXPECT_EQ(ds->number_ready, 4);
  EXPECT_EQ(client_->GetDaemonSet("calico-system", "missing").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(HttpKubeClientTest, GarbageResponsesAreInvalidArgumentWithTheUrl) {
  server_.AddNode(MakeNodeJson(FakeNodeSpec("w1")));
  server_.SetGarbageResponses(true);
  absl::StatusOr<NodeInfo> node = client_->GetNode("w1");
  EXPECT_EQ(node.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(node.status().message(), HasSubstr("/api/v1/nodes/w1"));
  EXPECT_THAT(node.status().message(), HasSubstr("not JSON"));
  EXPECT_EQ(client_->ListNodes("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->ListPodsOnNode("w1").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(HttpKubeClientTest, WrongShapeIsInvalidArgument) {
  nlohmann::json bad = MakeNodeJson(FakeNodeSpec("w1"));
  bad["status"]["conditions"] = "not a list";
  server_.AddNode(bad);
  absl::StatusOr<NodeInfo> node = client_->GetNode("w1");
  EXPECT_EQ(node.status().code(), absl::StatusCode::kInvalidArgument) << node.status();
  EXPECT_THAT(node.status().message(), HasSubstr("w1"));
}

TEST_F(HttpKubeClientTest, UnreachableServerIsUnavailableWithTheUrl) {
  std::string url = server_.url();
  server_.Stop();
  absl::StatusOr<NodeInfo> node = client_->GetNode("w1");
  EXPECT_EQ(node.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(node.status().message(), HasSubstr(url + "/api/v1/nodes/w1"));
}

TEST_F(HttpKubeClientTest, WrongTokenIsUnauthenticated) {
  server_.SetExpectedToken("secret");
  absl::StatusOr<NodeInfo> node = client_->GetNode("w1");
  EXPECT_EQ(node.status().code(), absl::StatusCode::kUnauthenticated) << node.status();
  EXPECT_EQ(server_.unauthorized_count(), 1);
}

// The service-account token rotates: the client re-reads the file at most once per
// interval, and at once after a 401.
TEST(HttpKubeClientTokenTest, PicksUpARotatedTokenFile) {
  FakeClock clock;
  FakeKubeApiServer server(clock);
  ASSERT_TRUE(server.Start().ok());
  server.AddNode(MakeNodeJson(FakeNodeSpec("w1")));
  TempDir dir;
  std::string token_file = dir.Path("token");
  ASSERT_TRUE(WriteFileAtomically(token_file, "token-1\n").ok());

  KubeConnection connection;
  connection.server = server.url();
  connection.token_file = token_file;
  KubeClientOptions options;
  options.clock = &clock;
  options.token_reread_interval = absl::Minutes(1);
  absl::StatusOr<std::unique_ptr<HttpKubeClient>> client =
      HttpKubeClient::FromConnection(connection, options);
  ASSERT_TRUE(client.ok()) << client.status();

  server.SetExpectedToken("token-1");
  ASSERT_TRUE((*client)->GetNode("w1").ok());
  EXPECT_EQ(server.last_token(), "token-1");

  // Rotated on disk; the old token still works, so nothing forces a re-read yet.
  ASSERT_TRUE(WriteFileAtomically(token_file, "token-2\n").ok());
  server.SetExpectedToken("");
  ASSERT_TRUE((*client)->GetNode("w1").ok());
  EXPECT_EQ(server.last_token(), "token-1");
  clock.Advance(absl::Seconds(61));
  ASSERT_TRUE((*client)->GetNode("w1").ok());
  EXPECT_EQ(server.last_token(), "token-2");

  // The server starts demanding a newer token before the interval passed: the 401 makes
  // the client read the file again and retry once.
  ASSERT_TRUE(WriteFileAtomically(token_file, "token-3\n").ok());
  server.SetExpectedToken("token-3");
  absl::StatusOr<NodeInfo> node = (*client)->GetNode("w1");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(server.last_token(), "token-3");
  EXPECT_EQ(server.unauthorized_count(), 1);
}

TEST(HttpKubeClientTokenTest, MissingTokenFileFailsAtCreation) {
  FakeClock clock;
  TempDir dir;
  KubeConnection connection;
  connection.server = "http://127.0.0.1:1";
  connection.token_file = dir.Path("absent");
  KubeClientOptions options;
  options.clock = &clock;
  EXPECT_EQ(HttpKubeClient::FromConnection(connection, options).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tended::kube
