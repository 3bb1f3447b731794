// Early-return helpers for absl::Status and absl::StatusOr, used across tended instead of
// exceptions.
#ifndef TENDED_COMMON_STATUS_MACROS_H_
#define TENDED_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TENDED_STATUS_CONCAT_INNER_(a, b) a##b
#define TENDED_STATUS_CONCAT_(a, b) TENDED_STATUS_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status tended_status_ = (expr);            \
    if (!tended_status_.ok()) return tended_status_;   \
  } while (false)

// `ASSIGN_OR_RETURN(auto x, Foo());` declares x from an OK StatusOr, or returns its status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  TENDED_ASSIGN_OR_RETURN_IMPL_(TENDED_STATUS_CONCAT_(tended_statusor_, __LINE__), lhs, expr)

#define TENDED_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return statusor.status();            \
  lhs = std::move(statusor).value()

#endif  // TENDED_COMMON_STATUS_MACROS_H_
