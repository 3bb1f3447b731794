// The engine side of the apt engine protocol (engine_protocol.h): `tended-apt-engine serve`
// reads one request, runs it with the libapt-pkg engine and writes the progress and the end
// to the reply descriptor. The agent daemon never loads libapt-pkg's cache itself.
#ifndef TENDED_AGENT_APT_ENGINE_ENGINE_SERVER_H_
#define TENDED_AGENT_APT_ENGINE_ENGINE_SERVER_H_

#include <string>

namespace tended::agent::apt {

// Serves `request_json` and writes the reply lines to `reply_fd`. Returns the process exit
// code: 0 when the end line was written (the call itself may have failed: that is in the
// reply), 1 when the request was malformed or the reply could not be written.
int ServeEngineCall(const std::string& request_json, int reply_fd);

// `tended-apt-engine serve`: the request on stdin, the replies on descriptor kReplyFd.
int RunServeCommand(int argc, char** argv);

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_ENGINE_ENGINE_SERVER_H_
