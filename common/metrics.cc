#include "common/metrics.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tended::metrics {
namespace {

[[noreturn]] void Fatal(const std::string& message) {
  std::fprintf(stderr, "metrics: %s\n", message.c_str());
  std::abort();
}

bool IsMetricName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name.front())) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != ':') return false;
  }
  return true;
}

bool IsLabelName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name.front()) || absl::StartsWith(name, "__")) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

void CheckSpec(const FamilySpec& spec) {
  if (!IsMetricName(spec.name)) Fatal(absl::StrCat("bad metric name \"", spec.name, "\""));
  if (spec.type == MetricType::kCounter && !absl::EndsWith(spec.name, "_total")) {
    Fatal(absl::StrCat("counter \"", spec.name, "\" must end in _total"));
  }
  if (spec.type == MetricType::kGauge && absl::EndsWith(spec.name, "_total")) {
    Fatal(absl::StrCat("gauge \"", spec.name, "\" must not end in _total"));
  }
  for (size_t i = 0; i < spec.label_names.size(); ++i) {
    if (!IsLabelName(spec.label_names[i])) {
      Fatal(absl::StrCat("bad label name \"", spec.label_names[i], "\" on ", spec.name));
    }
    for (size_t j = 0; j < i; ++j) {
      if (spec.label_names[i] == spec.label_names[j]) {
        Fatal(absl::StrCat("duplicate label \"", spec.label_names[i], "\" on ", spec.name));
      }
    }
  }
}

absl::string_view TypeName(MetricType type) {
  return type == MetricType::kCounter ? "counter" : "gauge";
}

void RenderFamily(const FamilySpec& spec, const std::map<LabelValues, double>& samples,
                  std::string* out) {
  if (samples.empty()) return;
  absl::StrAppend(out, "# HELP ", spec.name, " ", EscapeHelp(spec.help), "\n");
  absl::StrAppend(out, "# TYPE ", spec.name, " ", TypeName(spec.type), "\n");
  for (const auto& [values, value] : samples) {
    absl::StrAppend(out, spec.name);
    if (!values.empty()) {
      out->push_back('{');
      for (size_t i = 0; i < values.size(); ++i) {
        if (i > 0) out->push_back(',');
        absl::StrAppend(out, spec.label_names[i], "=\"", EscapeLabelValue(values[i]), "\"");
      }
      out->push_back('}');
    }
    absl::StrAppend(out, " ", FormatValue(value), "\n");
  }
}

}  // namespace

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (error != std::errc()) return "NaN";
  return std::string(buffer, end);
}

Family::Family(FamilySpec spec) : spec_(std::move(spec)) {}

void Family::CheckArity(const LabelValues& values) const {
  if (values.size() != spec_.label_names.size()) {
    Fatal(absl::StrCat(spec_.name, " takes ", spec_.label_names.size(), " label values (",
                       absl::StrJoin(spec_.label_names, ","), "), got ", values.size()));
  }
}

void Family::Add(const LabelValues& values, double delta) {
  CheckArity(values);
  absl::MutexLock lock(&mutex_);
  samples_[values] += delta;
}

void Family::Put(const LabelValues& values, double value) {
  CheckArity(values);
  absl::MutexLock lock(&mutex_);
  samples_[values] = value;
}

double Family::Get(const LabelValues& values) const {
  absl::MutexLock lock(&mutex_);
  auto it = samples_.find(values);
  return it == samples_.end() ? 0 : it->second;
}

void Family::Erase(const LabelValues& values) {
  absl::MutexLock lock(&mutex_);
  samples_.erase(values);
}

void Family::EraseAll() {
  absl::MutexLock lock(&mutex_);
  samples_.clear();
}

std::map<LabelValues, double> Family::Samples() const {
  absl::MutexLock lock(&mutex_);
  return samples_;
}

void Counter::Increment(const LabelValues& values, double by) {
  if (!(by >= 0)) Fatal(absl::StrCat(spec().name, ": a counter cannot go down"));
  Add(values, by);
}

void Collection::Add(absl::string_view family, const LabelValues& values, double value) {
  for (const FamilySpec& spec : *specs_) {
    if (spec.name != family) continue;
    if (values.size() != spec.label_names.size()) {
      Fatal(absl::StrCat(spec.name, " takes ", spec.label_names.size(), " label values, got ",
                         values.size()));
    }
    samples_[spec.name][values] = value;
    return;
  }
  Fatal(absl::StrCat("the collector did not declare \"", family, "\""));
}

void Registry::Reserve(const FamilySpec& spec) {
  CheckSpec(spec);
  for (const std::string& name : names_) {
    if (name == spec.name) Fatal(absl::StrCat("metric \"", spec.name, "\" registered twice"));
  }
  names_.push_back(spec.name);
}

Counter& Registry::AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names) {
  FamilySpec spec{std::move(name), std::move(help), MetricType::kCounter, std::move(label_names)};
  absl::MutexLock lock(&mutex_);
  Reserve(spec);
  auto counter = std::make_unique<Counter>(std::move(spec));
  Counter& result = *counter;
  slots_.push_back(Slot{counter.get(), nullptr, 0});
  families_.push_back(std::move(counter));
  return result;
}

Gauge& Registry::AddGauge(std::string name, std::string help,
                          std::vector<std::string> label_names) {
  FamilySpec spec{std::move(name), std::move(help), MetricType::kGauge, std::move(label_names)};
  absl::MutexLock lock(&mutex_);
  Reserve(spec);
  auto gauge = std::make_unique<Gauge>(std::move(spec));
  Gauge& result = *gauge;
  slots_.push_back(Slot{gauge.get(), nullptr, 0});
  families_.push_back(std::move(gauge));
  return result;
}

void Registry::AddCollector(std::vector<FamilySpec> families, Collect collect) {
  auto entry = std::make_shared<CollectorEntry>();
  entry->families = std::move(families);
  entry->collect = std::move(collect);
  absl::MutexLock lock(&mutex_);
  for (size_t i = 0; i < entry->families.size(); ++i) {
    Reserve(entry->families[i]);
    slots_.push_back(Slot{nullptr, entry, i});
  }
  collectors_.push_back(std::move(entry));
}

std::string Registry::Render() const {
  std::vector<Slot> slots;
  std::vector<std::shared_ptr<CollectorEntry>> collectors;
  {
    absl::MutexLock lock(&mutex_);
    slots = slots_;
    collectors = collectors_;
  }
  // Collectors run unlocked: they may take locks whose holders update our counters.
  std::map<const CollectorEntry*, Collection> collected;
  for (const auto& entry : collectors) {
    Collection collection(&entry->families);
    entry->collect(collection);
    collected.emplace(entry.get(), std::move(collection));
  }
  std::string out;
  for (const Slot& slot : slots) {
    if (slot.family != nullptr) {
      RenderFamily(slot.family->spec(), slot.family->Samples(), &out);
      continue;
    }
    const FamilySpec& spec = slot.collector->families[slot.collector_family];
    const Collection& collection = collected.at(slot.collector.get());
    auto it = collection.samples_.find(spec.name);
    if (it != collection.samples_.end()) RenderFamily(spec, it->second, &out);
  }
  return out;
}

}  // namespace tended::metrics
