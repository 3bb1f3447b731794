// Loopback TCP ports for tests that start real servers (Prometheus, etcd, ...) which cannot
// be handed an already-bound socket. The port was free a moment ago; a server that fails to
// bind it should be retried on a fresh one.
#ifndef TENDED_TESTS_FAKES_FREE_PORT_H_
#define TENDED_TESTS_FAKES_FREE_PORT_H_

#include "absl/status/statusor.h"

namespace tended::testing {

// Binds 127.0.0.1:0, reads the port the kernel chose and closes the socket again. Nothing
// listens on the port afterwards, so it also serves as a "connection refused" target.
absl::StatusOr<int> PickFreeLoopbackPort();

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_FREE_PORT_H_
