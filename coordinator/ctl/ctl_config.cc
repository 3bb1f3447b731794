#include "coordinator/ctl/ctl_config.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/yaml_util.h"

namespace tended::ctl {

absl::StatusOr<CtlFileConfig> ParseCtlConfig(absl::string_view contents, absl::string_view source) {
  absl::StatusOr<YAML::Node> document = ParseYamlDocument(contents, source);
  if (!document.ok()) return document.status();
  YamlCursor root(*document, std::string(source));
  if (absl::Status status = root.ExpectMapWithKeys({"address", "insecure"}); !status.ok()) {
    return status;
  }
  CtlFileConfig config;
  if (absl::Status status = root.Optional("address", &config.address); !status.ok()) {
    return status;
  }
  if (root.Has("insecure")) {
    bool insecure = false;
    if (absl::Status status = root.Optional("insecure", &insecure); !status.ok()) return status;
    config.insecure = insecure;
  }
  return config;
}

std::vector<std::string> DefaultCtlConfigPaths(const char* xdg_config_home, const char* home) {
  std::vector<std::string> paths;
  if (xdg_config_home != nullptr && xdg_config_home[0] == '/') {
    paths.push_back(absl::StrCat(xdg_config_home, "/tended/tendedctl.yaml"));
  } else if (home != nullptr && home[0] != '\0') {
    paths.push_back(absl::StrCat(home, "/.config/tended/tendedctl.yaml"));
  }
  paths.push_back("/etc/tended/tendedctl.yaml");
  return paths;
}

absl::StatusOr<CtlEndpoint> ResolveEndpoint(const std::string& flag_address, bool flag_insecure,
                                            const char* env_address,
                                            const std::vector<std::string>& config_paths) {
  CtlEndpoint endpoint;
  endpoint.insecure = flag_insecure;
  std::optional<CtlFileConfig> file;
  std::string file_path;
  for (const std::string& path : config_paths) {
    struct stat info;
    if (stat(path.c_str(), &info) != 0) continue;
    absl::StatusOr<std::string> contents = ReadFileToString(path);
    if (!contents.ok()) return contents.status();
    absl::StatusOr<CtlFileConfig> parsed = ParseCtlConfig(*contents, path);
    if (!parsed.ok()) return parsed.status();
    file = *parsed;
    file_path = path;
    break;
  }
  if (!flag_address.empty()) {
    endpoint.address = flag_address;
    endpoint.address_source = "--address";
  } else if (env_address != nullptr && env_address[0] != '\0') {
    endpoint.address = env_address;
    endpoint.address_source = "TENDED_ADDRESS";
  } else if (file.has_value() && !file->address.empty()) {
    endpoint.address = file->address;
    endpoint.address_source = file_path;
  } else {
    endpoint.address = kDefaultAddress;
    endpoint.address_source = "default";
  }
  if (!flag_insecure && file.has_value() && file->insecure.value_or(false)) {
    endpoint.insecure = true;
  }
  return endpoint;
}

}  // namespace tended::ctl
