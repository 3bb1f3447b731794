#include "coordinator/state_store.h"

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/proto_file.h"
#include "common/status_macros.h"

namespace tended::coordinator {

FileStateStore::FileStateStore(std::string path) : path_(std::move(path)) {}

absl::StatusOr<tended::state::v1::CoordinatorState> FileStateStore::Load() {
  tended::state::v1::CoordinatorState state;
  absl::Status status = ReadProtoJsonFile(path_, &state);
  if (absl::IsNotFound(status)) {
    state.set_format_version(kCoordinatorStateFormatVersion);
    return state;
  }
  RETURN_IF_ERROR(status);
  if (state.format_version() > kCoordinatorStateFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, " was written by a newer tended (format ", state.format_version(),
                     "); refusing to start rather than misread leases"));
  }
  return state;
}

absl::Status FileStateStore::Save(const tended::state::v1::CoordinatorState& state) {
  RETURN_IF_ERROR(MakeDirectories(Dirname(path_), 0700));
  return WriteProtoJsonFile(path_, state);
}

}  // namespace tended::coordinator
