#include "coordinator/kube/node_marks.h"

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
using tended::testing::MakeNodeJson;

class NodeMarkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    client_ = testing::ClientFor(server_, clock_);
    ASSERT_NE(client_, nullptr);
    server_.AddNode(MakeNodeJson(FakeNodeSpec("w1").Label("keep", "me").Annotation("keep", "me")));
  }

  nlohmann::json Metadata() { return server_.GetNode("w1")->at("metadata"); }

  FakeClock clock_{absl::FromUnixSeconds(1767225600)};  // 2026-01-01T00:00:00Z
  FakeKubeApiServer server_{clock_};
  std::unique_ptr<HttpKubeClient> client_;
};

TEST_F(NodeMarkerTest, MarksWhileDisruptedAndRemovesThemAfter) {
  NodeMarkOptions options;
  options.annotations = {{"example.com/maintenance", "tended"}};
  options.labels = {{"tended.io/disrupted", "true"}};
  NodeMarker marker(*client_, clock_, options);

  ASSERT_TRUE(marker.Mark("w1", "REBOOT lease 7").ok());
  nlohmann::json metadata = Metadata();
  EXPECT_EQ(metadata["annotations"]["example.com/maintenance"], "tended");
  EXPECT_EQ(metadata["annotations"][kDisruptedSinceAnnotation], "2026-01-01T00:00:00Z");
  EXPECT_EQ(metadata["annotations"][std::string(kDisruptedSinceAnnotation) + "-reason"],
            "REBOOT lease 7");
  EXPECT_EQ(metadata["labels"]["tended.io/disrupted"], "true");
  EXPECT_FALSE(metadata["annotations"].contains(kKuredRebootInProgressAnnotation));

  ASSERT_TRUE(marker.Clear("w1").ok());
  metadata = Metadata();
  EXPECT_FALSE(metadata["annotations"].contains("example.com/maintenance"));
  EXPECT_FALSE(metadata["annotations"].contains(kDisruptedSinceAnnotation));
  EXPECT_FALSE(metadata["labels"].contains("tended.io/disrupted"));
  // What we did not set stays.
  EXPECT_EQ(metadata["annotations"]["keep"], "me");
  EXPECT_EQ(metadata["labels"]["keep"], "me");
  // Merge patches with null, not read-modify-write.
  nlohmann::json clear = server_.node_patches().back();
  EXPECT_TRUE(clear["metadata"]["labels"]["tended.io/disrupted"].is_null());
}

TEST_F(NodeMarkerTest, KuredAnnotationNames) {
  NodeMarkOptions options;
  options.since_annotation.clear();
  options.kured_annotations = true;
  NodeMarker marker(*client_, clock_, options);
  ASSERT_TRUE(marker.Mark("w1").ok());
  nlohmann::json metadata = Metadata();
  EXPECT_EQ(metadata["annotations"][kKuredRebootInProgressAnnotation], "2026-01-01T00:00:00Z");
  EXPECT_EQ(metadata["annotations"][kKuredMostRecentRebootNeededAnnotation],
            "2026-01-01T00:00:00Z");
  EXPECT_FALSE(metadata["annotations"].contains(kDisruptedSinceAnnotation));

  clock_.Advance(absl::Hours(1));
  ASSERT_TRUE(marker.Clear("w1").ok());
  metadata = Metadata();
  EXPECT_FALSE(metadata["annotations"].contains(kKuredRebootInProgressAnnotation));
  EXPECT_EQ(metadata["annotations"][kKuredMostRecentRebootNeededAnnotation],
            "2026-01-01T00:00:00Z");
}

TEST_F(NodeMarkerTest, EventsOnTheNode) {
  NodeMarker marker(*client_, clock_, NodeMarkOptions());
  ASSERT_TRUE(marker.Event("w1", "TendedDrainFailed", "PDB blocked db-0", /*warning=*/true).ok());
  ASSERT_EQ(server_.events().size(), 1u);
  EXPECT_EQ(server_.events()[0]["type"], "Warning");
  EXPECT_EQ(server_.events()[0]["reason"], "TendedDrainFailed");
  EXPECT_EQ(server_.events()[0]["involvedObject"]["name"], "w1");

  server_.Stop();
  EXPECT_EQ(marker.Event("w1", "TendedRebooting", "x").code(), absl::StatusCode::kUnavailable);
}

TEST_F(NodeMarkerTest, MarkingAMissingNodeIsNotFound) {
  NodeMarker marker(*client_, clock_, NodeMarkOptions());
  EXPECT_EQ(marker.Mark("ghost").code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tended::kube
