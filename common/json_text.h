// JSON text for the wire: nlohmann::json::dump throws on invalid UTF-8, and such bytes come
// from outside (dpkg's output, a file name, a template in a config file). Here they become
// U+FFFD instead, so no exception crosses our APIs.
#ifndef TENDED_COMMON_JSON_TEXT_H_
#define TENDED_COMMON_JSON_TEXT_H_

#include <nlohmann/json.hpp>
#include <string>

namespace tended {

inline std::string ToJsonText(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace tended

#endif  // TENDED_COMMON_JSON_TEXT_H_
