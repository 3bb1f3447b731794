// spdlog behind one header: a named logger per component, writing to the journal when
// running under systemd and to stderr otherwise.
#ifndef TENDED_COMMON_LOGGING_H_
#define TENDED_COMMON_LOGGING_H_

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

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
