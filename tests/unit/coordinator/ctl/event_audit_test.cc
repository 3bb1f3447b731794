#include "coordinator/ctl/event_audit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tended::ctl {
namespace {

using tended::v1::Event;

class EventLog {
 public:
  EventLog& Add(tended::v1::EventType type, const std::string& node, const std::string& lease,
                uint32_t disrupted, tended::v1::LeaseKind kind = tended::v1::LEASE_KIND_REBOOT) {
    Event event;
    event.set_sequence(++sequence_);
    event.set_type(type);
    event.set_node_name(node);
    event.set_lease_id(lease);
    event.set_lease_kind(kind);
    event.set_disrupted_nodes(disrupted);
    events_.push_back(event);
    return *this;
  }
  EventLog& Skip(uint64_t count) {
    sequence_ += count;
    return *this;
  }
  const std::vector<Event>& events() const { return events_; }

 private:
  uint64_t sequence_ = 0;
  std::vector<Event> events_;
};

TEST(EventAuditTest, RollingRebootOneAtATime) {
  EventLog log;
  for (const std::string node : {"a", "b", "c"}) {
    log.Add(tended::v1::EVENT_TYPE_LEASE_GRANTED, node, "reboot-" + node, 1)
        .Add(tended::v1::EVENT_TYPE_NODE_REBOOTED, node, "", 1)
        .Add(tended::v1::EVENT_TYPE_LEASE_RELEASED, node, "reboot-" + node, 0);
  }
  EventAudit audit = AuditEvents(log.events());
  EXPECT_EQ(audit.max_disrupted_at_once, 1);
  EXPECT_EQ(audit.nodes_rebooted(), 3);
  EXPECT_TRUE(audit.open_leases.empty());
  EXPECT_TRUE(audit.anomalies.empty());
  EXPECT_EQ(SummaryLine(audit), "3 nodes rebooted, at most 1 disrupted at once");
}

TEST(EventAuditTest, OverlapIsSeenFromTheReplayEvenIfTheRecordedCountsLie) {
  EventLog log;
  log.Add(tended::v1::EVENT_TYPE_LEASE_GRANTED, "a", "reboot-a", 1)
      .Add(tended::v1::EVENT_TYPE_LEASE_GRANTED, "b", "reboot-b", 1)
      .Add(tended::v1::EVENT_TYPE_LEASE_RELEASED, "a", "reboot-a", 0)
      .Add(tended::v1::EVENT_TYPE_LEASE_RELEASED, "b", "reboot-b", 0);
  EventAudit audit = AuditEvents(log.events());
  EXPECT_EQ(audit.max_disrupted_at_once, 2);
  EXPECT_EQ(audit.max_recorded_disrupted, 1);
  EXPECT_EQ(SummaryLine(audit), "2 nodes rebooted, at most 2 disrupted at once");
}

TEST(EventAuditTest, ReturnedAndForceReleasedLeasesAreNotReboots) {
  EventLog log;
  log.Add(tended::v1::EVENT_TYPE_LEASE_GRANTED, "a", "reboot-a", 1)
      .Add(tended::v1::EVENT_TYPE_LEASE_RETURNED, "a", "reboot-a", 0)
      .Add(tended::v1::EVENT_TYPE_LEASE_GRANTED, "b", "reboot-b", 1)
      .Add(tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED, "b", "reboot-b", 0)
      .Add(tended::v1::EVENT_TYPE_LEASE_GRANTED, "c", "os_upgrade-c", 1,
           tended::v1::LEASE_KIND_OS_UPGRADE)
      .Add(tended::v1::EVENT_TYPE_LEASE_RELEASED, "c", "os_upgrade-c", 0,
           tended::v1::LEASE_KIND_OS_UPGRADE)
      .Add(tended::v1::EVENT_TYPE_LEASE_GRANTED, "d", "reboot-d", 1);
  EventAudit audit = AuditEvents(log.events());
  EXPECT_EQ(audit.nodes_rebooted(), 0);
  EXPECT_EQ(audit.force_releases, 1);
  EXPECT_THAT(audit.open_leases, ::testing::ElementsAre("reboot-d"));
}

TEST(EventAuditTest, GapsAndDoubleGrantsAreAnomalies) {
  EventLog log;
  log.Add(tended::v1::EVENT_TYPE_LEASE_GRANTED, "a", "reboot-a", 1)
      .Skip(3)
      .Add(tended::v1::EVENT_TYPE_LEASE_GRANTED, "a", "reboot-a2", 2);
  EventAudit audit = AuditEvents(log.events());
  ASSERT_EQ(audit.anomalies.size(), 2u);
  EXPECT_THAT(audit.anomalies[0], ::testing::HasSubstr("missing"));
  EXPECT_THAT(audit.anomalies[1], ::testing::HasSubstr("still held reboot-a"));
}

}  // namespace
}  // namespace tended::ctl
