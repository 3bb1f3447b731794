#include "agent/apt/engine_protocol.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/json_text.h"
#include "common/status_macros.h"

namespace tended::agent::apt {
namespace {

using nlohmann::json;

constexpr std::pair<EngineCall, const char*> kCallNames[] = {
    {EngineCall::kCheck, "check"},
    {EngineCall::kUpdate, "update"},
    {EngineCall::kPlan, "plan"},
    {EngineCall::kApply, "apply"},
    {EngineCall::kInstallPinned, "install_pinned"},
    {EngineCall::kRepair, "repair"},
    {EngineCall::kHold, "hold"},
    {EngineCall::kUnhold, "unhold"},
    {EngineCall::kHolds, "holds"},
    {EngineCall::kRebootRequired, "reboot_required"},
    {EngineCall::kAvailableVersions, "available_versions"},
};

constexpr std::pair<ApplyProgress::Stage, const char*> kStageNames[] = {
    {ApplyProgress::Stage::kRepairing, "repairing"},
    {ApplyProgress::Stage::kWaitingForLock, "waiting_for_lock"},
    {ApplyProgress::Stage::kDownloading, "downloading"},
    {ApplyProgress::Stage::kInstalling, "installing"},
    {ApplyProgress::Stage::kHolding, "holding"},
};

absl::Status Malformed(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("malformed apt engine message: ", what));
}

// Field readers: a missing or mistyped field is an error naming it.
absl::StatusOr<const json*> Field(const json& object, const char* key) {
  if (!object.is_object())
    return Malformed(absl::StrCat("expected an object around \"", key, "\""));
  auto it = object.find(key);
  if (it == object.end()) return Malformed(absl::StrCat("\"", key, "\" is missing"));
  return &*it;
}

absl::StatusOr<std::string> String(const json& object, const char* key) {
  ASSIGN_OR_RETURN(const json* value, Field(object, key));
  if (!value->is_string()) return Malformed(absl::StrCat("\"", key, "\" is not a string"));
  return value->get<std::string>();
}

absl::StatusOr<bool> Bool(const json& value, absl::string_view key) {
  if (!value.is_boolean()) return Malformed(absl::StrCat("\"", key, "\" is not a boolean"));
  return value.get<bool>();
}

absl::StatusOr<int64_t> Integer(const json& object, const char* key) {
  ASSIGN_OR_RETURN(const json* value, Field(object, key));
  if (!value->is_number_integer()) {
    return Malformed(absl::StrCat("\"", key, "\" is not an integer"));
  }
  return value->get<int64_t>();
}

absl::StatusOr<std::vector<std::string>> Strings(const json& value, absl::string_view key) {
  if (!value.is_array()) return Malformed(absl::StrCat("\"", key, "\" is not an array"));
  std::vector<std::string> out;
  for (const json& item : value) {
    if (!item.is_string()) return Malformed(absl::StrCat("\"", key, "\" holds a non-string"));
    out.push_back(item.get<std::string>());
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> StringsField(const json& object, const char* key) {
  ASSIGN_OR_RETURN(const json* value, Field(object, key));
  return Strings(*value, key);
}

json UpgradesToJson(const std::vector<PackageUpgrade>& upgrades) {
  json out = json::array();
  for (const PackageUpgrade& u : upgrades) {
    out.push_back({{"package", u.package}, {"from", u.from}, {"to", u.to}, {"origin", u.origin}});
  }
  return out;
}

json KeptToJson(const std::vector<KeptPackage>& kept) {
  json out = json::array();
  for (const KeptPackage& k : kept) out.push_back({{"package", k.package}, {"reason", k.reason}});
  return out;
}

// The array at `key`, each element read by `read_item`.
template <typename T, typename ReadItem>
absl::StatusOr<std::vector<T>> ListField(const json& object, const char* key, ReadItem read_item) {
  ASSIGN_OR_RETURN(const json* list, Field(object, key));
  if (!list->is_array()) return Malformed(absl::StrCat("\"", key, "\" is not an array"));
  std::vector<T> out;
  for (const json& item : *list) {
    ASSIGN_OR_RETURN(T value, read_item(item));
    out.push_back(std::move(value));
  }
  return out;
}

absl::StatusOr<std::vector<PackageUpgrade>> UpgradesFromJson(const json& object, const char* key) {
  return ListField<PackageUpgrade>(object, key,
                                   [](const json& item) -> absl::StatusOr<PackageUpgrade> {
                                     PackageUpgrade u;
                                     ASSIGN_OR_RETURN(u.package, String(item, "package"));
                                     ASSIGN_OR_RETURN(u.from, String(item, "from"));
                                     ASSIGN_OR_RETURN(u.to, String(item, "to"));
                                     ASSIGN_OR_RETURN(u.origin, String(item, "origin"));
                                     return u;
                                   });
}

absl::StatusOr<std::vector<KeptPackage>> KeptFromJson(const json& object, const char* key) {
  return ListField<KeptPackage>(object, key, [](const json& item) -> absl::StatusOr<KeptPackage> {
    KeptPackage k;
    ASSIGN_OR_RETURN(k.package, String(item, "package"));
    ASSIGN_OR_RETURN(k.reason, String(item, "reason"));
    return k;
  });
}

json PlanJson(const UpgradePlan& plan) {
  json out = json::object();
  out["upgrade"] = UpgradesToJson(plan.upgrades);
  out["kept"] = KeptToJson(plan.kept);
  return out;
}

absl::StatusOr<UpgradePlan> PlanFromJson(const json& object) {
  UpgradePlan plan;
  ASSIGN_OR_RETURN(plan.upgrades, UpgradesFromJson(object, "upgrade"));
  ASSIGN_OR_RETURN(plan.kept, KeptFromJson(object, "kept"));
  return plan;
}

json RebootJson(const RebootRequirement& reboot) {
  return {{"required", reboot.required}, {"packages", reboot.packages}};
}

absl::StatusOr<RebootRequirement> RebootFromJson(const json& object) {
  RebootRequirement reboot;
  ASSIGN_OR_RETURN(const json* required, Field(object, "required"));
  ASSIGN_OR_RETURN(reboot.required, Bool(*required, "required"));
  ASSIGN_OR_RETURN(reboot.packages, StringsField(object, "packages"));
  return reboot;
}

json ApplyJson(const ApplyResult& result) {
  return {{"installed", UpgradesToJson(result.installed)},
          {"skipped", KeptToJson(result.skipped)},
          {"repaired_dpkg", result.repaired_dpkg},
          {"reheld", result.reheld},
          {"reboot", RebootJson(result.reboot)}};
}

absl::StatusOr<ApplyResult> ApplyFromJson(const json& object) {
  ApplyResult result;
  ASSIGN_OR_RETURN(result.installed, UpgradesFromJson(object, "installed"));
  ASSIGN_OR_RETURN(result.skipped, KeptFromJson(object, "skipped"));
  ASSIGN_OR_RETURN(const json* repaired, Field(object, "repaired_dpkg"));
  ASSIGN_OR_RETURN(result.repaired_dpkg, Bool(*repaired, "repaired_dpkg"));
  ASSIGN_OR_RETURN(result.reheld, StringsField(object, "reheld"));
  ASSIGN_OR_RETURN(const json* reboot, Field(object, "reboot"));
  ASSIGN_OR_RETURN(result.reboot, RebootFromJson(*reboot));
  return result;
}

json PolicyJson(const AptPolicyOverrides& policy) {
  json out = {{"allowed_origins", policy.allowed_origins},
              {"origins_pattern", policy.origins_pattern},
              {"blacklist", policy.blacklist},
              {"whitelist", policy.whitelist},
              {"holds", policy.holds},
              {"replace_apt_config", policy.replace_apt_config}};
  out["whitelist_strict"] =
      policy.whitelist_strict.has_value() ? json(*policy.whitelist_strict) : json(nullptr);
  return out;
}

absl::StatusOr<AptPolicyOverrides> PolicyFromJson(const json& object) {
  AptPolicyOverrides policy;
  ASSIGN_OR_RETURN(policy.allowed_origins, StringsField(object, "allowed_origins"));
  ASSIGN_OR_RETURN(policy.origins_pattern, StringsField(object, "origins_pattern"));
  ASSIGN_OR_RETURN(policy.blacklist, StringsField(object, "blacklist"));
  ASSIGN_OR_RETURN(policy.whitelist, StringsField(object, "whitelist"));
  ASSIGN_OR_RETURN(policy.holds, StringsField(object, "holds"));
  ASSIGN_OR_RETURN(const json* replace, Field(object, "replace_apt_config"));
  ASSIGN_OR_RETURN(policy.replace_apt_config, Bool(*replace, "replace_apt_config"));
  ASSIGN_OR_RETURN(const json* strict, Field(object, "whitelist_strict"));
  if (!strict->is_null()) {
    ASSIGN_OR_RETURN(bool value, Bool(*strict, "whitelist_strict"));
    policy.whitelist_strict = value;
  }
  return policy;
}

absl::StatusOr<json> ParseObject(absl::string_view text) {
  json parsed = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    std::string shown(text.substr(0, 200));
    return Malformed(absl::StrCat("not a JSON object: \"", shown, "\""));
  }
  return parsed;
}

absl::StatusOr<EngineValue> ValueFromJson(EngineCall call, const json& value) {
  switch (call) {
    case EngineCall::kCheck:
    case EngineCall::kUpdate:
    case EngineCall::kHold:
    case EngineCall::kUnhold:
      if (!value.is_null()) return Malformed("a value where none belongs");
      return EngineValue(std::monostate{});
    case EngineCall::kPlan: {
      ASSIGN_OR_RETURN(UpgradePlan plan, PlanFromJson(value));
      return EngineValue(std::move(plan));
    }
    case EngineCall::kApply:
    case EngineCall::kInstallPinned: {
      ASSIGN_OR_RETURN(ApplyResult result, ApplyFromJson(value));
      return EngineValue(std::move(result));
    }
    case EngineCall::kRepair: {
      ASSIGN_OR_RETURN(bool repaired, Bool(value, "result"));
      return EngineValue(repaired);
    }
    case EngineCall::kHolds:
    case EngineCall::kAvailableVersions: {
      ASSIGN_OR_RETURN(std::vector<std::string> names, Strings(value, "result"));
      return EngineValue(std::move(names));
    }
    case EngineCall::kRebootRequired: {
      ASSIGN_OR_RETURN(RebootRequirement reboot, RebootFromJson(value));
      return EngineValue(std::move(reboot));
    }
  }
  return Malformed("unknown call");
}

json ValueToJson(const EngineValue& value) {
  struct Visitor {
    json operator()(std::monostate) const { return nullptr; }
    json operator()(const UpgradePlan& plan) const { return PlanJson(plan); }
    json operator()(const ApplyResult& result) const { return ApplyJson(result); }
    json operator()(bool b) const { return b; }
    json operator()(const std::vector<std::string>& list) const { return list; }
    json operator()(const RebootRequirement& reboot) const { return RebootJson(reboot); }
  };
  return std::visit(Visitor{}, value);
}

}  // namespace

const char* EngineCallName(EngineCall call) {
  for (const auto& [c, name] : kCallNames) {
    if (c == call) return name;
  }
  return "unknown";
}

std::string EncodeEngineRequest(const EngineRequest& request) {
  json out = {
      {"call", EngineCallName(request.call)},
      {"root", request.options.root},
      {"policy", PolicyJson(request.options.policy)},
      {"lock_timeout_ms", absl::ToInt64Milliseconds(request.options.lock_timeout)},
      {"lock_poll_interval_ms", absl::ToInt64Milliseconds(request.options.lock_poll_interval)},
      {"packages", request.packages},
  };
  json pinned = json::array();
  for (const PinnedVersion& p : request.pinned) {
    pinned.push_back({{"package", p.package}, {"version", p.version}});
  }
  out["pinned"] = std::move(pinned);
  out["plan"] = PlanJson(request.plan);
  return ToJsonText(out);
}

absl::StatusOr<EngineRequest> DecodeEngineRequest(absl::string_view text) {
  ASSIGN_OR_RETURN(json object, ParseObject(text));
  EngineRequest request;
  ASSIGN_OR_RETURN(std::string call, String(object, "call"));
  std::optional<EngineCall> found;
  for (const auto& [c, name] : kCallNames) {
    if (call == name) found = c;
  }
  if (!found.has_value()) return Malformed(absl::StrCat("unknown call \"", call, "\""));
  request.call = *found;
  ASSIGN_OR_RETURN(request.options.root, String(object, "root"));
  if (request.options.root.empty() || request.options.root[0] != '/') {
    return Malformed(absl::StrCat("root \"", request.options.root, "\" is not absolute"));
  }
  ASSIGN_OR_RETURN(const json* policy, Field(object, "policy"));
  ASSIGN_OR_RETURN(request.options.policy, PolicyFromJson(*policy));
  ASSIGN_OR_RETURN(int64_t timeout_ms, Integer(object, "lock_timeout_ms"));
  ASSIGN_OR_RETURN(int64_t poll_ms, Integer(object, "lock_poll_interval_ms"));
  if (timeout_ms <= 0 || poll_ms <= 0) return Malformed("lock durations must be positive");
  request.options.lock_timeout = absl::Milliseconds(timeout_ms);
  request.options.lock_poll_interval = absl::Milliseconds(poll_ms);
  ASSIGN_OR_RETURN(request.packages, StringsField(object, "packages"));
  if (request.call == EngineCall::kAvailableVersions && request.packages.size() != 1) {
    return Malformed(absl::StrCat("available_versions names ", request.packages.size(),
                                  " packages instead of one"));
  }
  ASSIGN_OR_RETURN(request.pinned,
                   ListField<PinnedVersion>(object, "pinned",
                                            [](const json& item) -> absl::StatusOr<PinnedVersion> {
                                              PinnedVersion p;
                                              ASSIGN_OR_RETURN(p.package, String(item, "package"));
                                              ASSIGN_OR_RETURN(p.version, String(item, "version"));
                                              return p;
                                            }));
  ASSIGN_OR_RETURN(const json* plan, Field(object, "plan"));
  ASSIGN_OR_RETURN(request.plan, PlanFromJson(*plan));
  return request;
}

std::string EncodeProgressLine(const ApplyProgress& progress) {
  const char* stage = "unknown";
  for (const auto& [s, name] : kStageNames) {
    if (s == progress.stage) stage = name;
  }
  json out = {{"progress",
               {{"stage", stage},
                {"package", progress.package},
                {"percent", progress.percent},
                {"message", progress.message}}}};
  return ToJsonText(out);
}

std::string EncodeEndLine(const absl::StatusOr<EngineValue>& end) {
  json out = json::object();
  if (end.ok()) {
    out["result"] = ValueToJson(*end);
  } else {
    out["error"] = {{"code", static_cast<int>(end.status().code())},
                    {"message", std::string(end.status().message())}};
  }
  return ToJsonText(out);
}

absl::StatusOr<EngineReplyLine> DecodeEngineReplyLine(EngineCall call, absl::string_view line) {
  ASSIGN_OR_RETURN(json object, ParseObject(line));
  EngineReplyLine reply;
  if (auto it = object.find("progress"); it != object.end()) {
    reply.is_progress = true;
    ASSIGN_OR_RETURN(std::string stage, String(*it, "stage"));
    std::optional<ApplyProgress::Stage> found;
    for (const auto& [s, name] : kStageNames) {
      if (stage == name) found = s;
    }
    if (!found.has_value()) return Malformed(absl::StrCat("unknown stage \"", stage, "\""));
    reply.progress.stage = *found;
    ASSIGN_OR_RETURN(reply.progress.package, String(*it, "package"));
    ASSIGN_OR_RETURN(reply.progress.message, String(*it, "message"));
    ASSIGN_OR_RETURN(const json* percent, Field(*it, "percent"));
    if (!percent->is_number()) return Malformed("\"percent\" is not a number");
    reply.progress.percent = percent->get<double>();
    return reply;
  }
  if (auto it = object.find("error"); it != object.end()) {
    ASSIGN_OR_RETURN(int64_t code, Integer(*it, "code"));
    ASSIGN_OR_RETURN(std::string message, String(*it, "message"));
    if (code <= 0 || code > static_cast<int64_t>(absl::StatusCode::kUnauthenticated)) {
      return Malformed(absl::StrCat("error code ", code));
    }
    reply.end = absl::Status(static_cast<absl::StatusCode>(code), message);
    return reply;
  }
  if (auto it = object.find("result"); it != object.end()) {
    reply.end = ValueFromJson(call, *it);
    if (!reply.end.ok()) return reply.end.status();
    return reply;
  }
  return Malformed("neither progress, result nor error");
}

std::string PlanToJson(const UpgradePlan& plan) { return ToJsonText(PlanJson(plan)); }

}  // namespace tended::agent::apt
