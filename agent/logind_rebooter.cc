#include "agent/logind_rebooter.h"

#include <systemd/sd-bus.h>

#include <cctype>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/posix_status.h"

namespace tended::agent {
namespace {

constexpr char kSystemBusSocket[] = "/run/dbus/system_bus_socket";

// D-Bus addresses escape every byte outside [-0-9A-Za-z_/.\*] as %XX.
std::string EscapeBusAddressValue(absl::string_view value) {
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '/' || c == '.' || c == '\\' || c == '*') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

absl::Status BusStatus(absl::string_view what, int negative_errno) {
  return PosixErrorToStatus(what, -negative_errno);
}

struct BusUnref {
  void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};
using BusPtr = std::unique_ptr<sd_bus, BusUnref>;

absl::StatusOr<BusPtr> OpenBus(const std::string& address) {
  sd_bus* bus = nullptr;
  if (address.empty()) {
    int r = sd_bus_open_system(&bus);
    if (r < 0) return BusStatus("connect to the system bus", r);
    return BusPtr(bus);
  }
  int r = sd_bus_new(&bus);
  if (r < 0) return BusStatus("sd_bus_new", r);
  BusPtr owned(bus);
  if ((r = sd_bus_set_address(bus, address.c_str())) < 0) {
    return BusStatus(absl::StrCat("bus address ", address), r);
  }
  if ((r = sd_bus_set_bus_client(bus, 1)) < 0) return BusStatus("sd_bus_set_bus_client", r);
  if ((r = sd_bus_start(bus)) < 0) return BusStatus(absl::StrCat("connect to ", address), r);
  return owned;
}

}  // namespace

LogindRebooter::LogindRebooter(const RootPath& root) {
  if (!root.is_host_root()) {
    bus_address_ =
        absl::StrCat("unix:path=", EscapeBusAddressValue(root.Resolve(kSystemBusSocket)));
  }
}

absl::Status LogindRebooter::Reboot(absl::string_view reason) {
  auto log = Logger("reboot");
  log->warn("asking logind to reboot{}: {}",
            bus_address_.empty() ? "" : absl::StrCat(" via ", bus_address_), std::string(reason));
  auto bus = OpenBus(bus_address_);
  if (!bus.ok()) return bus.status();

  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus->get(), "org.freedesktop.login1", "/org/freedesktop/login1",
                             "org.freedesktop.login1.Manager", "Reboot", &error, &reply, "b",
                             0 /* interactive */);
  absl::Status status;
  if (r < 0) {
    std::string message =
        error.name != nullptr
            ? absl::StrCat("logind Reboot: ", error.name, ": ",
                           error.message != nullptr ? error.message : "(no message)")
            : std::string(BusStatus("logind Reboot", r).message());
    status = absl::Status(BusStatus("", r).code(), message);
    log->error("{}", status.ToString());
  }
  sd_bus_error_free(&error);
  sd_bus_message_unref(reply);
  return status;
}

}  // namespace tended::agent
