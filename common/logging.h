// spdlog behind one header: a named logger per component, writing to the journal when
// running under systemd and to stderr otherwise.
#ifndef TENDED_COMMON_LOGGING_H_
#define TENDED_COMMON_LOGGING_H_

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

// Lets loggers format absl::string_view (Debian's Abseil does not alias std::string_view).
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view text, FormatContext& context) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(text.data(), text.size()),
                                                    context);
  }
};

namespace tended {

enum class LogTarget { kStderr, kJournal };

// Picks the journal when stderr is connected to it (JOURNAL_STREAM is set by systemd).
LogTarget DetectLogTarget();

// Call once from main(). `level` is spdlog's name: trace, debug, info, warn, error.
void InitLogging(LogTarget target, const std::string& level = "info");

// The logger for a component ("lease", "gates", "agent", ...). Thread-safe.
std::shared_ptr<spdlog::logger> Logger(const std::string& component);

}  // namespace tended

#endif  // TENDED_COMMON_LOGGING_H_
