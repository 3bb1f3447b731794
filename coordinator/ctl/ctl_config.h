// Where tendedctl finds the coordinator: the --address flag, else TENDED_ADDRESS, else the
// first config file that exists (~/.config/tended/tendedctl.yaml, /etc/tended/tendedctl.yaml),
// else 127.0.0.1:7443.
#ifndef TENDED_COORDINATOR_CTL_CTL_CONFIG_H_
#define TENDED_COORDINATOR_CTL_CTL_CONFIG_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tended::ctl {

inline constexpr char kDefaultAddress[] = "127.0.0.1:7443";

// tendedctl.yaml: `address: HOST:PORT` and `insecure: true|false`; any other key is an error.
struct CtlFileConfig {
  std::string address;
  std::optional<bool> insecure;
};
absl::StatusOr<CtlFileConfig> ParseCtlConfig(absl::string_view contents, absl::string_view source);

// $XDG_CONFIG_HOME/tended/tendedctl.yaml (or $HOME/.config/...), then /etc/tended/tendedctl.yaml.
// Null arguments are unset variables.
std::vector<std::string> DefaultCtlConfigPaths(const char* xdg_config_home, const char* home);

struct CtlEndpoint {
  std::string address;
  bool insecure = false;
  // Where the address came from: "--address", "TENDED_ADDRESS", a file's path, "default".
  std::string address_source;
};

// `flag_address` empty: not given. `env_address` null or empty: unset. A config file that
// exists but does not parse is an error; missing files are skipped.
absl::StatusOr<CtlEndpoint> ResolveEndpoint(const std::string& flag_address, bool flag_insecure,
                                            const char* env_address,
                                            const std::vector<std::string>& config_paths);

}  // namespace tended::ctl

#endif  // TENDED_COORDINATOR_CTL_CTL_CONFIG_H_
