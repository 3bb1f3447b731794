// tended-apt-engine: the agent's libapt-pkg engine as a program of its own. `plan` is what
// `tended-agent plan` runs; `serve` answers one call from the agent daemon (engine_client.h).
#include <iostream>
#include <string>

#include "agent/apt/engine/engine_server.h"
#include "agent/apt/engine/plan_command.h"

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "plan") return tended::agent::apt::RunPlanCommand(argc, argv);
  if (command == "serve") return tended::agent::apt::RunServeCommand(argc, argv);
  std::cerr
      << "usage: tended-apt-engine plan [--root DIR] [--update] [--json] [--config FILE.yaml]\n"
         "       tended-apt-engine serve   (used by tended-agent)\n";
  return 2;
}
