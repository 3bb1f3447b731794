// Persists protobuf messages as human-readable JSON files, written atomically.
#ifndef TENDED_COMMON_PROTO_FILE_H_
#define TENDED_COMMON_PROTO_FILE_H_

#include <google/protobuf/message.h>

#include <string>

#include "absl/status/status.h"

namespace tended {

// NOT_FOUND when the file does not exist; INVALID_ARGUMENT naming the file when it does not
// parse. Unknown fields are an error: a state file from a newer tended is not half-read.
absl::Status ReadProtoJsonFile(const std::string& path, google::protobuf::Message* message);

absl::Status WriteProtoJsonFile(const std::string& path, const google::protobuf::Message& message);

}  // namespace tended

#endif  // TENDED_COMMON_PROTO_FILE_H_
