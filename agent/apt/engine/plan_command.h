// `tended-agent plan [--root DIR] [--update] [--json] [--config agent.yaml]`: prints the
// upgrades the policy allows and every package kept back with its reason. Reads only; with
// --update it refreshes the package lists first.
#ifndef TENDED_AGENT_APT_ENGINE_PLAN_COMMAND_H_
#define TENDED_AGENT_APT_ENGINE_PLAN_COMMAND_H_

#include <iosfwd>
#include <string>
#include <vector>

#include "agent/apt/package_manager.h"

namespace tended::agent::apt {

// argv[0] is the program, argv[1] is "plan". Returns the process exit code: 0 done,
// 1 failure, 2 usage error.
int RunPlanCommand(int argc, char** argv);

// The same, writing to the given streams (for tests).
int RunPlanCommandForTest(const std::vector<std::string>& args, std::ostream& out,
                          std::ostream& err);

std::string PlanToText(const UpgradePlan& plan);

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_ENGINE_PLAN_COMMAND_H_
