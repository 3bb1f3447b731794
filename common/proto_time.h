// Conversions between absl::Time/Duration and google.protobuf.Timestamp/Duration.
#ifndef TENDED_COMMON_PROTO_TIME_H_
#define TENDED_COMMON_PROTO_TIME_H_

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include "absl/time/time.h"

namespace tended {

google::protobuf::Timestamp ToProtoTimestamp(absl::Time time);
// An unset (all-zero) Timestamp maps to absl::InfinitePast().
absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& timestamp);
google::protobuf::Duration ToProtoDuration(absl::Duration duration);
absl::Duration FromProtoDuration(const google::protobuf::Duration& duration);

}  // namespace tended

#endif  // TENDED_COMMON_PROTO_TIME_H_
