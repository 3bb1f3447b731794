// The coordinator's `notifications:` configuration section: where to send a message at each
// transition (Slack incoming webhooks and generic JSON webhooks, written as shoutrrr-style
// URLs as kured's --notify-url takes them), the message templates, and when a waiting
// request counts as blocked for too long. URL and template mistakes are found here, at
// configuration time, with the key and line.
#ifndef TENDED_COORDINATOR_CONFIG_NOTIFICATIONS_CONFIG_H_
#define TENDED_COORDINATOR_CONFIG_NOTIFICATIONS_CONFIG_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/yaml_util.h"

namespace tended::coordinator {

inline constexpr char kDefaultSlackApiBase[] = "https://hooks.slack.com";

struct NotificationsConfig {
  // slack://hook:T-B-X@webhook, slack://[botname@]T/B/X, generic+https://host/path,
  // generic+http://host/path. Empty: no notifications.
  std::vector<std::string> urls;
  // A lease request the gates have kept waiting longer than this is announced, once per
  // blocking episode. Zero turns that notification off.
  absl::Duration blocked_threshold = absl::Hours(1);
  // Each delivery attempt must finish within this.
  absl::Duration timeout = absl::Seconds(5);
  // Overrides the default message of a transition (keys: TransitionName); an empty
  // template silences that transition.
  std::map<std::string, std::string> templates;
  // Where slack:// URLs point; only tests change it.
  std::string slack_api_base = kDefaultSlackApiBase;
};

// The transitions a message is sent for.
enum class Transition {
  kDisrupting,          // A lease's disruption began (drain, reboot, upgrade).
  kRebooted,            // A node holding a lease came back with a new boot id.
  kVerified,            // Back, verified and released.
  kBlocked,             // A request waited longer than blocked_threshold.
  kOverdue,             // A lease passed its deadline (holder silent, node not back).
  kVerificationFailed,  // A returned node does not check out (yet).
  kForceReleased,       // An operator released a lease without verification.
  kHalted,
  kResumed,
  kKubernetes,      // A step of the Kubernetes side: cordon and drain begun, drained,
                    // drain failed, uncordoned after verification.
  kRolloutStopped,  // The OS upgrade rollout stopped (its canary failed).
  kRolloutResumed,
  kK8sUpgradeAvailable,  // A version check found a new Kubernetes target (once per target).
};

inline constexpr Transition kAllTransitions[] = {
    Transition::kDisrupting,    Transition::kRebooted,       Transition::kVerified,
    Transition::kBlocked,       Transition::kOverdue,        Transition::kVerificationFailed,
    Transition::kForceReleased, Transition::kHalted,         Transition::kResumed,
    Transition::kKubernetes,    Transition::kRolloutStopped, Transition::kRolloutResumed,
    Transition::kK8sUpgradeAvailable};

// "disrupting", "rebooted", "verified", "blocked", "overdue", "verification_failed",
// "force_released", "halted", "resumed", "kubernetes", "rollout_stopped", "rollout_resumed",
// "k8s_upgrade_available".
absl::string_view TransitionName(Transition transition);
std::optional<Transition> TransitionFromName(absl::string_view name);
absl::string_view DefaultTemplate(Transition transition);

// The placeholders a template may use: {node} {lease} {kind} {message} {step} {event}
// {time} {token} {blocked_for} {gates}. "{{" and "}}" are literal braces.
// Empty when `text` is a valid template, else what is wrong.
std::string TemplateProblem(absl::string_view text);
// Fills in a template TemplateProblem accepted; missing values are empty.
std::string ExpandTemplate(absl::string_view text,
                           const std::map<std::string, std::string>& values);

enum class SinkKind { kSlack, kGeneric };

// Where one URL delivers.
struct NotificationSink {
  SinkKind kind = SinkKind::kGeneric;
  // The https:// (or http://) endpoint to POST to. Holds the webhook's secret: never log.
  std::string endpoint;
  // Names the sink in logs and metrics, without secrets: "slack",
  // "generic+https://host:port".
  std::string label;
  // Legacy slack://botname@T/B/X: the "username" to post as.
  std::string slack_username;
};

// Parses one notification URL. INVALID_ARGUMENT naming the problem otherwise (other
// shoutrrr services, Slack bot tokens, malformed tokens, query parameters on slack://).
absl::StatusOr<NotificationSink> ParseNotificationUrl(absl::string_view url,
                                                      absl::string_view slack_api_base);

// Reads the `notifications:` mapping (null or absent leaves the defaults: none).
absl::Status ParseNotificationsConfig(const YamlCursor& cursor, NotificationsConfig* config);
// The same rules, for a configuration built in code.
absl::Status ValidateNotificationsConfig(const NotificationsConfig& config);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_CONFIG_NOTIFICATIONS_CONFIG_H_
