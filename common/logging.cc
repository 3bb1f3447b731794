#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>

#include <cstdlib>
#include <mutex>

namespace tended {
namespace {

std::mutex& LoggingMutex() {
  static std::mutex* const kMutex = new std::mutex();
  return *kMutex;
}

spdlog::sink_ptr& SharedSink() {
  static spdlog::sink_ptr* const kSink = new spdlog::sink_ptr();
  return *kSink;
}

spdlog::level::level_enum& SharedLevel() {
  static spdlog::level::level_enum level = spdlog::level::info;
  return level;
}

}  // namespace

LogTarget DetectLogTarget() {
  return std::getenv("JOURNAL_STREAM") != nullptr ? LogTarget::kJournal : LogTarget::kStderr;
}

void InitLogging(LogTarget target, const std::string& level) {
  std::lock_guard<std::mutex> lock(LoggingMutex());
  if (target == LogTarget::kJournal) {
    SharedSink() = std::make_shared<spdlog::sinks::systemd_sink_mt>();
  } else {
    SharedSink() = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  }
  SharedLevel() = spdlog::level::from_str(level);
  spdlog::drop_all();
}

std::shared_ptr<spdlog::logger> Logger(const std::string& component) {
  std::lock_guard<std::mutex> lock(LoggingMutex());
  if (auto existing = spdlog::get(component)) return existing;
  if (!SharedSink()) SharedSink() = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(component, SharedSink());
  logger->set_level(SharedLevel());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  spdlog::register_logger(logger);
  return logger;
}

}  // namespace tended
