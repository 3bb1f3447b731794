#include "coordinator/kube/drainer.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kube_api_server.h"
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
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using Rule = FakeKubeApiServer::EvictionRule;

class DrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    client_ = testing::ClientFor(server_, clock_);
    ASSERT_NE(client_, nullptr);
    server_.AddNode(MakeNodeJson(FakeNodeSpec("w1")));
  }

  Drainer MakeDrainer(DrainOptions options = DrainOptions()) {
    return Drainer(*client_, clock_, sleeper_, std::move(options));
  }

  bool Unschedulable(const std::string& node) {
    nlohmann::json spec = server_.GetNode(node)->at("spec");
    return spec.contains("unschedulable") && spec["unschedulable"].get<bool>();
  }

  FakeClock clock_;
  testing::ClockAdvancingSleeper sleeper_{clock_};
  FakeKubeApiServer server_{clock_};
  std::unique_ptr<HttpKubeClient> client_;
};

TEST_F(DrainerTest, CordonPatchesWithResourceVersionPrecondition) {
  std::string rv = server_.GetNode("w1")->at("metadata").at("resourceVersion");
  Drainer drainer = MakeDrainer();
  absl::StatusOr<CordonResult> result = drainer.Cordon("w1");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->was_already_cordoned);
  EXPECT_TRUE(result->node.unschedulable);
  EXPECT_TRUE(Unschedulable("w1"));
  ASSERT_EQ(server_.node_patches().size(), 1u);
  nlohmann::json patch = server_.node_patches()[0];
  EXPECT_EQ(patch["spec"]["unschedulable"], true);
  EXPECT_EQ(patch["metadata"]["resourceVersion"], rv);

  ASSERT_TRUE(drainer.Uncordon("w1").ok());
  EXPECT_FALSE(Unschedulable("w1"));
  EXPECT_EQ(server_.node_patches().back()["spec"]["unschedulable"], false);
}

TEST_F(DrainerTest, CordonRetriesConflicts) {
  // Something else writes the node twice between our read and our patch.
  for (int i = 0; i < 2; ++i) {
    server_.BeforeNextNodePatch("w1", [i](nlohmann::json& node) {
      node["metadata"]["labels"]["touched"] = std::to_string(i);
    });
  }
  absl::StatusOr<CordonResult> result = MakeDrainer().Cordon("w1");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->was_already_cordoned);
  EXPECT_TRUE(Unschedulable("w1"));
  EXPECT_EQ(server_.node_patches().size(), 3u);
  EXPECT_EQ(server_.GetNode("w1")->at("metadata").at("labels").at("touched"), "1");
}

TEST_F(DrainerTest, CordonGivesUpAfterBoundedConflicts) {
  for (int i = 0; i < 10; ++i) {
    server_.BeforeNextNodePatch("w1", [](nlohmann::json& node) {});
  }
  DrainOptions options;
  options.conflict_retries = 2;
  absl::StatusOr<CordonResult> result = MakeDrainer(options).Cordon("w1");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kAborted) << result.status();
  EXPECT_EQ(server_.node_patches().size(), 3u);
  EXPECT_FALSE(Unschedulable("w1"));
}

TEST_F(DrainerTest, OperatorCordonIsReportedAndNotPatched) {
  server_.AddNode(MakeNodeJson(FakeNodeSpec("w2").Cordoned()));
  absl::StatusOr<CordonResult> result = MakeDrainer().Cordon("w2");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->was_already_cordoned);
  EXPECT_THAT(server_.node_patches(), IsEmpty());
}

TEST_F(DrainerTest, OperatorCordoningInBetweenCountsAsTheirs) {
  server_.BeforeNextNodePatch("w1",
                              [](nlohmann::json& node) { node["spec"]["unschedulable"] = true; });
  absl::StatusOr<CordonResult> result = MakeDrainer().Cordon("w1");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->was_already_cordoned);
  EXPECT_TRUE(Unschedulable("w1"));
}

TEST_F(DrainerTest, FullDrainFiltersLikeKubectl) {
  server_.AddDaemonSet(MakeDaemonSetJson("kube-system", "calico-node", 1, 1));
  server_.AddPod(MakePodJson(FakePodSpec("web-1", "w1")));
  server_.AddPod(MakePodJson(FakePodSpec("web-2", "w1").Namespace("shop")));
  server_.AddPod(MakePodJson(FakePodSpec("calico-node-a", "w1")
                                 .Namespace("kube-system")
                                 .OwnedBy("DaemonSet", "calico-node")));
  server_.AddPod(MakePodJson(
      FakePodSpec("kube-proxy-w1", "w1").Namespace("kube-system").OwnedBy("Node", "w1").Mirror()));
  server_.AddPod(MakePodJson(FakePodSpec("debug", "w1").Unmanaged()));
  server_.AddPod(MakePodJson(FakePodSpec("cache", "w1").EmptyDir()));
  server_.AddPod(MakePodJson(FakePodSpec("done", "w1").Unmanaged().Phase("Succeeded")));
  server_.AddPod(MakePodJson(FakePodSpec("other-node", "w2")));

  // Without the options the unmanaged and the emptyDir pod refuse the drain, and nothing
  // is evicted.
  absl::StatusOr<DrainReport> refused = MakeDrainer().Drain("w1");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("default/debug"));
  EXPECT_THAT(refused.status().message(), HasSubstr("default/cache"));
  EXPECT_THAT(refused.status().message(), HasSubstr("force_unmanaged"));
  EXPECT_THAT(refused.status().message(), HasSubstr("delete_emptydir_data"));
  EXPECT_THAT(server_.eviction_requests(), IsEmpty());

  DrainOptions options;
  options.force_unmanaged = true;
  options.delete_emptydir_data = true;
  options.grace_period = absl::Seconds(45);
  absl::StatusOr<DrainReport> report = MakeDrainer(options).Drain("w1");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->evicted, UnorderedElementsAre("default/web-1", "shop/web-2", "default/debug",
                                                    "default/cache", "default/done"));
  EXPECT_THAT(report->skipped, UnorderedElementsAre("kube-system/calico-node-a (DaemonSet)",
                                                    "kube-system/kube-proxy-w1 (mirror pod)"));
  EXPECT_THAT(server_.eviction_requests(),
              UnorderedElementsAre("default/web-1", "shop/web-2", "default/debug", "default/cache",
                                   "default/done"));
  for (const nlohmann::json& body : server_.eviction_bodies()) {
    EXPECT_EQ(body["deleteOptions"]["gracePeriodSeconds"], 45);
  }
  EXPECT_TRUE(server_.GetPod("kube-system", "calico-node-a").has_value());
  EXPECT_TRUE(server_.GetPod("kube-system", "kube-proxy-w1").has_value());
  EXPECT_TRUE(server_.GetPod("default", "other-node").has_value());
  EXPECT_FALSE(server_.GetPod("default", "web-1").has_value());
  EXPECT_THAT(sleeper_.sleeps(), IsEmpty());
}

TEST_F(DrainerTest, PodOfAMissingDaemonSetNeedsForce) {
  server_.AddPod(MakePodJson(FakePodSpec("orphan", "w1").OwnedBy("DaemonSet", "gone")));
  absl::StatusOr<DrainReport> refused = MakeDrainer().Drain("w1");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("default/orphan"));

  DrainOptions options;
  options.force_unmanaged = true;
  absl::StatusOr<DrainReport> report = MakeDrainer(options).Drain("w1");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->evicted, ElementsAre("default/orphan"));
}

TEST_F(DrainerTest, PdbBlockedDrainSucceedsAfterRetries) {
  server_.AddPod(MakePodJson(FakePodSpec("db-0", "w1")));
  server_.AddPod(MakePodJson(FakePodSpec("web", "w1")));
  server_.SetEvictionRule("default", "db-0", Rule::Block(3, /*retry_after_seconds=*/10));
  absl::Time start = clock_.Now();

  absl::StatusOr<DrainReport> report = MakeDrainer().Drain("w1");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->evicted, UnorderedElementsAre("default/db-0", "default/web"));
  EXPECT_EQ(report->pdb_refusals, 3);
  std::vector<std::string> attempts = server_.eviction_requests();
  EXPECT_EQ(std::count(attempts.begin(), attempts.end(), "default/db-0"), 4);
  EXPECT_EQ(std::count(attempts.begin(), attempts.end(), "default/web"), 1);
  // retryAfterSeconds was honoured: three waits of 10 s.
  EXPECT_THAT(sleeper_.sleeps(),
              ElementsAre(absl::Seconds(10), absl::Seconds(10), absl::Seconds(10)));
  EXPECT_EQ(clock_.Now() - start, absl::Seconds(30));
}

TEST_F(DrainerTest, PdbWithoutRetryAfterWaitsTheDefault) {
  server_.AddPod(MakePodJson(FakePodSpec("db-0", "w1")));
  server_.SetEvictionRule("default", "db-0", Rule::Block(2));
  absl::StatusOr<DrainReport> report = MakeDrainer().Drain("w1");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(sleeper_.sleeps(), ElementsAre(absl::Seconds(5), absl::Seconds(5)));
}

TEST_F(DrainerTest, PdbBlockedForeverTimesOut) {
  server_.AddPod(MakePodJson(FakePodSpec("db-0", "w1")));
  server_.AddPod(MakePodJson(FakePodSpec("web", "w1")));
  server_.SetEvictionRule("default", "db-0", Rule::Block(-1));
  DrainOptions options;
  options.timeout = absl::Minutes(2);
  absl::Time start = clock_.Now();

  absl::StatusOr<DrainReport> report = MakeDrainer(options).Drain("w1");
  EXPECT_EQ(report.status().code(), absl::StatusCode::kDeadlineExceeded) << report.status();
  EXPECT_THAT(report.status().message(), HasSubstr("default/db-0"));
  EXPECT_THAT(report.status().message(), HasSubstr("disruption budget"));
  EXPECT_THAT(report.status().message(), ::testing::Not(HasSubstr("default/web")));
  EXPECT_EQ(clock_.Now() - start, absl::Minutes(2));
  std::vector<std::string> attempts = server_.eviction_requests();
  // One attempt at 0 s and every 5 s after, up to (not at) the deadline.
  EXPECT_EQ(std::count(attempts.begin(), attempts.end(), "default/db-0"), 24);
  EXPECT_TRUE(server_.GetPod("default", "db-0").has_value());
}

TEST_F(DrainerTest, WaitsUntilEvictedPodsAreGone) {
  server_.SetPodDeletionDelay(absl::Seconds(20));
  server_.AddPod(MakePodJson(FakePodSpec("web", "w1")));
  absl::Time start = clock_.Now();
  absl::StatusOr<DrainReport> report = MakeDrainer().Drain("w1");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->evicted, ElementsAre("default/web"));
  EXPECT_EQ(clock_.Now() - start, absl::Seconds(20));
  EXPECT_FALSE(server_.GetPod("default", "web").has_value());
}

TEST_F(DrainerTest, PodsThatNeverGoTimeOut) {
  server_.SetPodDeletionDelay(absl::Hours(1));
  server_.AddPod(MakePodJson(FakePodSpec("stuck", "w1")));
  DrainOptions options;
  options.timeout = absl::Seconds(90);
  absl::StatusOr<DrainReport> report = MakeDrainer(options).Drain("w1");
  EXPECT_EQ(report.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(report.status().message(), HasSubstr("waiting for evicted pods"));
  EXPECT_THAT(report.status().message(), HasSubstr("default/stuck"));
  EXPECT_LE(sleeper_.total(), absl::Seconds(90));
}

TEST_F(DrainerTest, ARecreatedPodWithANewUidCountsAsGone) {
  server_.SetPodDeletionDelay(absl::Hours(1));
  server_.AddPod(MakePodJson(FakePodSpec("db-0", "w1").OwnedBy("StatefulSet", "db")));
  // The StatefulSet controller replaces the pod under the same name (on another node).
  auto replaced = MakePodJson(FakePodSpec("db-0", "w2").OwnedBy("StatefulSet", "db"));
  replaced["metadata"]["uid"] = "uid-new";
  DrainOptions options;
  options.timeout = absl::Minutes(5);
  // The first GET still sees the old pod; replace it once the drainer has slept once.
  class ReplacingSleeper : public Sleeper {
   public:
    ReplacingSleeper(FakeClock& clock, FakeKubeApiServer& server, nlohmann::json pod)
        : clock_(clock), server_(server), pod_(std::move(pod)) {}
    void Sleep(absl::Duration d) override {
      clock_.Advance(d);
      server_.RemovePod("default", "db-0");
      server_.AddPod(pod_);
    }
    FakeClock& clock_;
    FakeKubeApiServer& server_;
    nlohmann::json pod_;
  } sleeper(clock_, server_, replaced);
  Drainer replacing(*client_, clock_, sleeper, options);
  absl::StatusOr<DrainReport> report = replacing.Drain("w1");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->evicted, ElementsAre("default/db-0"));
  EXPECT_EQ(server_.GetPod("default", "db-0")->at("metadata").at("uid"), "uid-new");
}

TEST_F(DrainerTest, TooManyPdbsFailsAtOnce) {
  server_.AddPod(MakePodJson(FakePodSpec("db-0", "w1")));
  server_.SetEvictionRule("default", "db-0", Rule::Fixed(500));
  absl::StatusOr<DrainReport> report = MakeDrainer().Drain("w1");
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(report.status().message(), HasSubstr("more than one PodDisruptionBudget"));
  EXPECT_THAT(sleeper_.sleeps(), IsEmpty());
}

TEST_F(DrainerTest, SkipsPodsDeletingForLongerThanTheSkipTimeout) {
  server_.SetPodDeletionDelay(absl::Hours(2));
  server_.AddPod(MakePodJson(FakePodSpec("old", "w1")));
  ASSERT_TRUE(client_->DeletePod("default", "old", std::nullopt).ok());
  clock_.Advance(absl::Minutes(10));
  DrainOptions options;
  options.skip_wait_for_delete_timeout = absl::Minutes(5);
  absl::StatusOr<DrainReport> report = MakeDrainer(options).Drain("w1");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->skipped, ElementsAre("default/old (already being deleted)"));
  EXPECT_THAT(server_.eviction_requests(), IsEmpty());
}

TEST_F(DrainerTest, BlockingPodStopsTheDrainBeforeTheCordon) {
  server_.AddPod(MakePodJson(FakePodSpec("backup", "w1").Label("app", "backup")));
  server_.AddPod(MakePodJson(FakePodSpec("web", "w1").Label("app", "web")));
  DrainOptions options;
  options.blocking_pod_selectors = {{{"app", "backup"}}};
  Drainer::CordonAndDrainResult result = MakeDrainer(options).CordonAndDrain("w1");
  EXPECT_EQ(result.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status.message(), HasSubstr("default/backup"));
  EXPECT_FALSE(result.cordoned_by_us);
  EXPECT_FALSE(Unschedulable("w1"));
  EXPECT_THAT(server_.eviction_requests(), IsEmpty());

  // A finished backup pod does not block.
  server_.RemovePod("default", "backup");
  server_.AddPod(
      MakePodJson(FakePodSpec("backup", "w1").Label("app", "backup").Phase("Succeeded")));
  result = MakeDrainer(options).CordonAndDrain("w1");
  EXPECT_TRUE(result.status.ok()) << result.status;
  EXPECT_TRUE(result.cordoned_by_us);
  EXPECT_TRUE(Unschedulable("w1"));
}

TEST_F(DrainerTest, FailedDrainOfOperatorCordonedNodeSaysItWasNotOurs) {
  server_.AddNode(MakeNodeJson(FakeNodeSpec("w2").Cordoned()));
  server_.AddPod(MakePodJson(FakePodSpec("db-0", "w2")));
  server_.SetEvictionRule("default", "db-0", Rule::Block(-1));
  DrainOptions options;
  options.timeout = absl::Seconds(30);
  Drainer::CordonAndDrainResult result = MakeDrainer(options).CordonAndDrain("w2");
  EXPECT_EQ(result.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(result.was_already_cordoned);
  EXPECT_FALSE(result.cordoned_by_us);
  EXPECT_TRUE(Unschedulable("w2"));
}

TEST_F(DrainerTest, CordonAndDrainOfOurOwnCordon) {
  server_.AddPod(MakePodJson(FakePodSpec("web", "w1")));
  Drainer::CordonAndDrainResult result = MakeDrainer().CordonAndDrain("w1");
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_TRUE(result.cordoned_by_us);
  EXPECT_FALSE(result.was_already_cordoned);
  EXPECT_THAT(result.report.evicted, ElementsAre("default/web"));
  EXPECT_TRUE(Unschedulable("w1"));
}

TEST(ClassifyPodTest, KubectlFilterOrder) {
  absl::Time now = absl::FromUnixSeconds(1767225600);
  DrainOptions options;
  PodInfo pod;
  pod.namespace_name = "default";
  pod.name = "p";
  pod.phase = "Running";
  pod.controller_kind = "ReplicaSet";
  EXPECT_EQ(ClassifyPod(pod, options, now, false), PodDisposition::kEvict);

  PodInfo ds = pod;
  ds.controller_kind = "DaemonSet";
  EXPECT_EQ(ClassifyPod(ds, options, now, true), PodDisposition::kSkipDaemonSet);
  EXPECT_EQ(ClassifyPod(ds, options, now, false), PodDisposition::kRefuseOrphanedDaemonSet);
  ds.phase = "Failed";
  EXPECT_EQ(ClassifyPod(ds, options, now, true), PodDisposition::kEvict);

  PodInfo mirror = pod;
  mirror.controller_kind = "Node";
  mirror.is_mirror = true;
  mirror.has_empty_dir = true;
  EXPECT_EQ(ClassifyPod(mirror, options, now, false), PodDisposition::kSkipMirror);

  PodInfo empty_dir = pod;
  empty_dir.has_empty_dir = true;
  EXPECT_EQ(ClassifyPod(empty_dir, options, now, false), PodDisposition::kRefuseEmptyDir);
  empty_dir.phase = "Succeeded";
  EXPECT_EQ(ClassifyPod(empty_dir, options, now, false), PodDisposition::kEvict);

  PodInfo bare = pod;
  bare.controller_kind.clear();
  EXPECT_EQ(ClassifyPod(bare, options, now, false), PodDisposition::kRefuseUnmanaged);
  options.force_unmanaged = true;
  EXPECT_EQ(ClassifyPod(bare, options, now, false), PodDisposition::kEvict);

  PodInfo deleting = pod;
  deleting.deletion_timestamp = now - absl::Minutes(10);
  EXPECT_EQ(ClassifyPod(deleting, options, now, false), PodDisposition::kEvict);
  options.skip_wait_for_delete_timeout = absl::Minutes(5);
  EXPECT_EQ(ClassifyPod(deleting, options, now, false), PodDisposition::kSkipDeleting);
}

}  // namespace
}  // namespace tended::kube
