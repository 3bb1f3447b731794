// fake-kube-apiserver: the tests' FakeKubeApiServer as a program, for scripts/demo.sh
// --kubernetes. It serves the given nodes (Ready, each with a few ReplicaSet pods and a pod
// of the kube-proxy DaemonSet and of each --daemonsets) on 127.0.0.1, writes a kubeconfig
// pointing at itself, and acts as the kubelets of the demo's simulated nodes: when a node
// root's boot id file changes
// (the simulated reboot), that node reports the new bootID and NotReady, then Ready again a
// little later. Every cordon, eviction, reboot and uncordon is printed, one line each, so
// the demo can check their order. --labeled_pods adds pods carrying a label (a pod that
// matches a blocking-pod selector). Test-only: never shipped.
#include <signal.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "tests/fakes/fake_kube_api_server.h"

ABSL_FLAG(std::string, nodes, "", "Comma-separated node names.");
ABSL_FLAG(std::string, node_roots, "",
          "Folder holding <node>/proc/sys/kernel/random/boot_id for each node (optional).");
ABSL_FLAG(std::string, kubeconfig_out, "", "Where to write a kubeconfig for this server.");
ABSL_FLAG(int, pods_per_node, 2, "ReplicaSet pods per node.");
ABSL_FLAG(std::vector<std::string>, labeled_pods, {},
          "Extra ReplicaSet pods, each NODE/NAME/KEY=VALUE (in namespace default, labelled "
          "KEY=VALUE), comma-separated.");
ABSL_FLAG(std::vector<std::string>, daemonsets, {},
          "More DaemonSets besides kube-proxy, each NAMESPACE/NAME (a CNI's, e.g. "
          "calico-system/calico-node), with a ready pod on every node, comma-separated.");
ABSL_FLAG(absl::Duration, not_ready_for, absl::Seconds(1),
          "How long a rebooted node stays NotReady.");

namespace {

using tended::testing::FakeKubeApiServer;
using tended::testing::FakeNodeSpec;
using tended::testing::FakePodSpec;

std::string KubeTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string ReadBootId(const std::string& roots, const std::string& node) {
  if (roots.empty()) return "";
  auto text =
      tended::ReadFileToString(absl::StrCat(roots, "/", node, "/proc/sys/kernel/random/boot_id"));
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text)) : "";
}

// The kubelet's version as the node reports it: <root>/var/lib/kubelet/version ("1.31.1"),
// written when the (demo's) kubelet restarts; empty when absent.
std::string ReadKubeletVersion(const std::string& roots, const std::string& node) {
  if (roots.empty()) return "";
  auto text = tended::ReadFileToString(absl::StrCat(roots, "/", node, "/var/lib/kubelet/version"));
  if (!text.ok()) return "";
  std::string version(absl::StripAsciiWhitespace(*text));
  if (version.empty()) return "";
  return version[0] == 'v' ? version : "v" + version;
}

void Say(const std::string& line) {
  std::printf("fake-kube-apiserver: %s\n", line.c_str());
  std::fflush(stdout);
}

void SetReady(FakeKubeApiServer& server, const std::string& node, bool ready,
              const std::string& boot_id) {
  server.UpdateNode(node, [&](nlohmann::json& json) {
    if (!boot_id.empty()) json["status"]["nodeInfo"]["bootID"] = boot_id;
    for (auto& condition : json["status"]["conditions"]) {
      if (condition["type"] != "Ready") continue;
      condition["status"] = ready ? "True" : "False";
      condition["reason"] = ready ? "KubeletReady" : "KubeletNotReady";
      condition["lastTransitionTime"] = KubeTime(absl::Now());
      condition["lastHeartbeatTime"] = KubeTime(absl::Now());
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::vector<std::string> nodes =
      absl::StrSplit(absl::GetFlag(FLAGS_nodes), ',', absl::SkipEmpty());
  if (nodes.empty()) {
    std::fprintf(stderr, "--nodes is required\n");
    return 2;
  }
  const std::string roots = absl::GetFlag(FLAGS_node_roots);

  // Block the stop signals; wait for them between polls.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  FakeKubeApiServer server(tended::Clock::Real());
  if (absl::Status started = server.Start(); !started.ok()) {
    std::fprintf(stderr, "%s\n", started.ToString().c_str());
    return 1;
  }
  std::vector<std::pair<std::string, std::string>> daemonsets = {{"kube-system", "kube-proxy"}};
  for (const std::string& spec : absl::GetFlag(FLAGS_daemonsets)) {
    std::vector<std::string> parts = absl::StrSplit(spec, absl::MaxSplits('/', 1));
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      std::fprintf(stderr, "--daemonsets: want NAMESPACE/NAME, got %s\n", spec.c_str());
      return 2;
    }
    daemonsets.emplace_back(parts[0], parts[1]);
  }
  for (const auto& [ds_namespace, ds_name] : daemonsets) {
    server.AddDaemonSet(tended::testing::MakeDaemonSetJson(ds_namespace, ds_name,
                                                           static_cast<int64_t>(nodes.size()),
                                                           static_cast<int64_t>(nodes.size())));
  }
  std::map<std::string, std::string> boot_ids;
  std::map<std::string, bool> cordoned;
  std::map<std::string, std::set<std::string>> pods;  // node -> "ns/name"
  std::map<std::string, absl::Time> ready_at;         // NotReady until then.
  std::map<std::string, std::string> kubelet_versions;
  for (const std::string& node : nodes) {
    std::string boot_id = ReadBootId(roots, node);
    boot_ids[node] = boot_id;
    if (boot_id.empty()) boot_id = absl::StrCat("boot-", node);
    FakeNodeSpec spec =
        FakeNodeSpec(node).BootId(boot_id).TransitionAt(absl::Now() - absl::Hours(24));
    kubelet_versions[node] = ReadKubeletVersion(roots, node);
    if (!kubelet_versions[node].empty()) spec.Kubelet(kubelet_versions[node]);
    server.AddNode(tended::testing::MakeNodeJson(spec));
    cordoned[node] = false;
    for (int i = 0; i < absl::GetFlag(FLAGS_pods_per_node); ++i) {
      std::string name = absl::StrCat("web-", node, "-", i);
      server.AddPod(tended::testing::MakePodJson(FakePodSpec(name, node)));
      pods[node].insert("default/" + name);
    }
    for (const auto& [ds_namespace, ds_name] : daemonsets) {
      server.AddPod(tended::testing::MakePodJson(FakePodSpec(absl::StrCat(ds_name, "-", node), node)
                                                     .Namespace(ds_namespace)
                                                     .OwnedBy("DaemonSet", ds_name)));
    }
  }
  for (const std::string& spec : absl::GetFlag(FLAGS_labeled_pods)) {
    std::vector<std::string> parts = absl::StrSplit(spec, absl::MaxSplits('/', 2));
    std::vector<std::string> label = parts.size() == 3
                                         ? absl::StrSplit(parts[2], absl::MaxSplits('=', 1))
                                         : std::vector<std::string>();
    if (label.size() != 2 || parts[0].empty() || parts[1].empty() || label[0].empty()) {
      std::fprintf(stderr, "--labeled_pods: want NODE/NAME/KEY=VALUE, got %s\n", spec.c_str());
      return 2;
    }
    server.AddPod(
        tended::testing::MakePodJson(FakePodSpec(parts[1], parts[0]).Label(label[0], label[1])));
    Say(absl::StrCat("pod default/", parts[1], " on ", parts[0], " labelled ", parts[2]));
  }
  const std::string kubeconfig = absl::GetFlag(FLAGS_kubeconfig_out);
  if (!kubeconfig.empty()) {
    std::string yaml = absl::StrCat(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: ",
        server.url(),
        "\nusers:\n- name: demo\n  user:\n    token: demo\ncontexts:\n- name: fake\n  "
        "context:\n    cluster: fake\n    user: demo\ncurrent-context: fake\n");
    if (absl::Status written = tended::WriteFileAtomically(kubeconfig, yaml); !written.ok()) {
      std::fprintf(stderr, "%s\n", written.ToString().c_str());
      return 1;
    }
  }
  Say(absl::StrCat("serving ", nodes.size(), " nodes on ", server.url()));

  const timespec poll = {0, 100 * 1000 * 1000};
  for (;;) {
    if (sigtimedwait(&stop, nullptr, &poll) > 0) break;
    const absl::Time now = absl::Now();
    for (const std::string& node : nodes) {
      std::optional<nlohmann::json> json = server.GetNode(node);
      if (!json.has_value()) continue;
      const nlohmann::json& spec = (*json)["spec"];
      bool unschedulable = spec.contains("unschedulable") && spec["unschedulable"].get<bool>();
      if (unschedulable != cordoned[node]) {
        cordoned[node] = unschedulable;
        Say(absl::StrCat(node, " ", unschedulable ? "cordoned" : "uncordoned"));
      }
      for (auto it = pods[node].begin(); it != pods[node].end();) {
        std::vector<std::string> parts = absl::StrSplit(*it, '/');
        if (!server.GetPod(parts[0], parts[1]).has_value()) {
          Say(absl::StrCat(node, " pod ", *it, " evicted"));
          it = pods[node].erase(it);
        } else {
          ++it;
        }
      }
      std::string boot_id = ReadBootId(roots, node);
      if (!boot_id.empty() && boot_ids[node].empty()) {
        // The node root appeared after we started: its first boot, not a reboot.
        boot_ids[node] = boot_id;
        server.UpdateNode(
            node, [&](nlohmann::json& json) { json["status"]["nodeInfo"]["bootID"] = boot_id; });
      } else if (!boot_id.empty() && boot_id != boot_ids[node]) {
        boot_ids[node] = boot_id;
        SetReady(server, node, false, boot_id);
        ready_at[node] = now + absl::GetFlag(FLAGS_not_ready_for);
        Say(absl::StrCat(node, " rebooted (bootID ", boot_id, "), NotReady"));
      }
      if (std::string version = ReadKubeletVersion(roots, node);
          !version.empty() && version != kubelet_versions[node]) {
        kubelet_versions[node] = version;
        server.UpdateNode(node, [&](nlohmann::json& json) {
          json["status"]["nodeInfo"]["kubeletVersion"] = version;
        });
        Say(absl::StrCat(node, " kubelet now reports ", version));
      }
      auto due = ready_at.find(node);
      if (due != ready_at.end() && now >= due->second) {
        ready_at.erase(due);
        SetReady(server, node, true, "");
        Say(absl::StrCat(node, " Ready"));
      }
    }
  }
  server.Stop();
  return 0;
}
