#include "common/proto_file.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace tended {

absl::Status ReadProtoJsonFile(const std::string& path, google::protobuf::Message* message) {
  ASSIGN_OR_RETURN(std::string contents, ReadFileToString(path));
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(contents, message, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a valid ", message->GetTypeName(), ": ", status.ToString()));
  }
  return absl::OkStatus();
}

absl::Status WriteProtoJsonFile(const std::string& path, const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("encoding ", path, ": ", status.ToString()));
  }
  return WriteFileAtomically(path, json, 0600);
}

}  // namespace tended
