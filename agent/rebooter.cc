#include "agent/rebooter.h"

namespace tended::agent {

Rebooter::~Rebooter() = default;

}  // namespace tended::agent
