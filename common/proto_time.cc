#include "common/proto_time.h"

namespace tended {

google::protobuf::Timestamp ToProtoTimestamp(absl::Time time) {
  google::protobuf::Timestamp result;
  if (time == absl::InfinitePast()) return result;
  timespec ts = absl::ToTimespec(time);
  result.set_seconds(ts.tv_sec);
  result.set_nanos(static_cast<int32_t>(ts.tv_nsec));
  return result;
}

absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& timestamp) {
  if (timestamp.seconds() == 0 && timestamp.nanos() == 0) return absl::InfinitePast();
  return absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
}

google::protobuf::Duration ToProtoDuration(absl::Duration duration) {
  google::protobuf::Duration result;
  int64_t seconds = absl::IDivDuration(duration, absl::Seconds(1), &duration);
  result.set_seconds(seconds);
  result.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(duration)));
  return result;
}

absl::Duration FromProtoDuration(const google::protobuf::Duration& duration) {
  return absl::Seconds(duration.seconds()) + absl::Nanoseconds(duration.nanos());
}

}  // namespace tended
