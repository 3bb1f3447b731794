// Converts between absl::Status and grpc::Status at the RPC boundary (the codes share
// their numbering).
#ifndef TENDED_COMMON_GRPC_STATUS_H_
#define TENDED_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace tended {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace tended

#endif  // TENDED_COMMON_GRPC_STATUS_H_
