// A small registry of Prometheus metrics: counters and gauges with fixed label names, and
// collectors (callbacks run at scrape time that produce whole families, e.g. one gauge per
// active lease). Render() writes the text exposition format 0.0.4: one HELP and TYPE per
// family, label values escaped, samples in a stable order, a final newline.
//
// Declaring a metric with a bad name, label or shape is a programming error and aborts.
// Thread-safe. Collectors run without the registry's lock held, so they may take other
// locks (a coordinator's) that code holding those locks also takes to update counters.
#ifndef TENDED_COMMON_METRICS_H_
#define TENDED_COMMON_METRICS_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace tended::metrics {

enum class MetricType { kCounter, kGauge };

using LabelValues = std::vector<std::string>;

struct FamilySpec {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<std::string> label_names;
};

// Label values escaped for the text format: backslash, double quote and newline.
std::string EscapeLabelValue(absl::string_view value);
// HELP text escaped: backslash and newline.
std::string EscapeHelp(absl::string_view help);
// Shortest text that reads back as the same double; NaN, +Inf and -Inf as Prometheus
// spells them.
std::string FormatValue(double value);

// The samples of one family, keyed by label values in the family's label order.
class Family {
 public:
  explicit Family(FamilySpec spec);

  const FamilySpec& spec() const { return spec_; }

 protected:
  friend class Registry;
  void Add(const LabelValues& values, double delta);
  void Put(const LabelValues& values, double value);
  double Get(const LabelValues& values) const;
  void Erase(const LabelValues& values);
  void EraseAll();
  std::map<LabelValues, double> Samples() const;

 private:
  void CheckArity(const LabelValues& values) const;

  const FamilySpec spec_;
  mutable absl::Mutex mutex_;
  std::map<LabelValues, double> samples_ ABSL_GUARDED_BY(mutex_);
};

class Counter : public Family {
 public:
  using Family::Family;
  // `by` must not be negative. Increment(values, 0) makes the series appear at 0.
  void Increment(const LabelValues& values = {}, double by = 1);
  double Value(const LabelValues& values = {}) const { return Get(values); }
};

class Gauge : public Family {
 public:
  using Family::Family;
  void Set(const LabelValues& values, double value) { Put(values, value); }
  void Set(double value) { Put({}, value); }
  void Add(const LabelValues& values, double delta) { Family::Add(values, delta); }
  void Remove(const LabelValues& values) { Erase(values); }
  void Clear() { EraseAll(); }
  double Value(const LabelValues& values = {}) const { return Get(values); }
};

// What a collector fills in: samples of the families it declared.
class Collection {
 public:
  // `family` must be one the collector declared; label values in declared order. A repeated
  // label set overwrites the earlier value.
  void Add(absl::string_view family, const LabelValues& values, double value);

 private:
  friend class Registry;
  explicit Collection(const std::vector<FamilySpec>* specs) : specs_(specs) {}
  const std::vector<FamilySpec>* specs_;
  std::map<std::string, std::map<LabelValues, double>, std::less<>> samples_;
};

class Registry {
 public:
  using Collect = std::function<void(Collection&)>;

  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Counter names end in _total. The references stay valid for the registry's lifetime.
  Counter& AddCounter(std::string name, std::string help,
                      std::vector<std::string> label_names = {});
  Gauge& AddGauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  // Families whose samples `collect` produces at every scrape.
  void AddCollector(std::vector<FamilySpec> families, Collect collect);

  // The text exposition format of every family with at least one sample, in the order
  // the families were added.
  std::string Render() const;

 private:
  struct CollectorEntry {
    std::vector<FamilySpec> families;
    Collect collect;
  };
  void Reserve(const FamilySpec& spec) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  mutable absl::Mutex mutex_;
  // Registration order: a family, or the index of a collector's family.
  struct Slot {
    Family* family = nullptr;
    std::shared_ptr<CollectorEntry> collector;
    size_t collector_family = 0;
  };
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::unique_ptr<Family>> families_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::shared_ptr<CollectorEntry>> collectors_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::string> names_ ABSL_GUARDED_BY(mutex_);
};

// The Content-Type of Render()'s output.
inline constexpr char kTextFormatContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace tended::metrics

#endif  // TENDED_COMMON_METRICS_H_
