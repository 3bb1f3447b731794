#!/usr/bin/python3
"""Checks the kustomize base in packaging/kubernetes and the container build file.

Every document parses and has the fields its kind needs; selectors match the pod's labels;
ports, the state folder and the Service name agree with the reference configurations; the
RBAC rules grant exactly the Kubernetes calls the coordinator makes, each verb with its
reason; the pod meets the "restricted" Pod Security Standard and its uid is the image's. A
default install speaks only mTLS: no shipped manifest, example, Containerfile or unit asks
for plaintext, and the TLS Secret is mounted where the configuration reads its files.

    /usr/bin/python3 tests/packaging/kubernetes_manifests_test.py SOURCE_DIR
"""
import os
import re
import sys
import unittest
import urllib.parse

import yaml

SOURCE_DIR = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else ".")
BASE = os.path.join(SOURCE_DIR, "packaging", "kubernetes")
NAMESPACED = {"ServiceAccount", "ConfigMap", "Deployment", "Service", "PersistentVolumeClaim",
              "NetworkPolicy", "PodDisruptionBudget", "Role", "RoleBinding"}
API_VERSIONS = {
    "Namespace": "v1", "ServiceAccount": "v1", "ConfigMap": "v1", "Service": "v1",
    "PersistentVolumeClaim": "v1", "Deployment": "apps/v1",
    "NetworkPolicy": "networking.k8s.io/v1", "PodDisruptionBudget": "policy/v1",
    "ClusterRole": "rbac.authorization.k8s.io/v1",
    "ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
    "Role": "rbac.authorization.k8s.io/v1", "RoleBinding": "rbac.authorization.k8s.io/v1",
}
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# Each KubeClient method (coordinator/kube/kube_client.h) as the API request it makes:
# (apiGroup, resource, verb, namespace or None for any/cluster-wide).
KUBE_CALLS = {
    "GetNode": ("", "nodes", "get", None),
    "ListNodes": ("", "nodes", "list", None),
    "WatchNodes": ("", "nodes", "watch", None),
    "PatchNodeMerge": ("", "nodes", "patch", None),
    "ListPods": ("", "pods", "list", None),
    "ListPodsOnNode": ("", "pods", "list", None),
    "GetPod": ("", "pods", "get", None),
    "EvictPod": ("", "pods/eviction", "create", None),
    "DeletePod": ("", "pods", "delete", None),
    "CreateNodeEvent": ("", "events", "create", "default"),
    "GetDaemonSet": ("apps", "daemonsets", "get", None),
}


def read(path):
    with open(path) as f:
        return f.read()


def load_documents():
    with open(os.path.join(BASE, "kustomization.yaml")) as f:
        kustomization = yaml.safe_load(f)
    documents = []
    for resource in kustomization["resources"]:
        with open(os.path.join(BASE, resource)) as f:
            for document in yaml.safe_load_all(f):
                if document is not None:
                    documents.append((resource, document))
    # The generated ConfigMap, as kustomize makes it (its name gets a hash suffix, and the
    # Deployment's reference to it is rewritten to match).
    for generator in kustomization.get("configMapGenerator", []):
        data = {}
        for entry in generator["files"]:
            key, _, path = entry.partition("=")
            path = path or key
            with open(os.path.join(BASE, path)) as f:
                data[os.path.basename(key)] = f.read()
        documents.append(("configMapGenerator", {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": generator["name"], "namespace": generator.get("namespace")},
            "data": data}))
    return kustomization, documents


KUSTOMIZATION, DOCUMENTS = load_documents()


def only(kind, name=None):
    found = [d for _, d in DOCUMENTS if d["kind"] == kind and
             (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


with open(os.path.join(BASE, "coordinator.yaml")) as f:
    COORDINATOR_CONFIG = yaml.safe_load(f)
with open(os.path.join(SOURCE_DIR, "packaging", "examples", "agent.yaml")) as f:
    AGENT_CONFIG = yaml.safe_load(f)
TLS_SECRET = "tended-coordinator-tls"
DEPLOYMENT = only("Deployment")
POD = DEPLOYMENT["spec"]["template"]
POD_LABELS = POD["metadata"]["labels"]
CONTAINER = POD["spec"]["containers"][0]
CONTAINER_PORTS = {p["name"]: p["containerPort"] for p in CONTAINER["ports"]}


class DocumentsTest(unittest.TestCase):
    def test_every_file_in_the_folder_is_used(self):
        used = set(KUSTOMIZATION["resources"]) | {"kustomization.yaml", "coordinator.yaml"}
        self.assertEqual(sorted(set(os.listdir(BASE)) - used), [])

    def test_every_kind_the_issue_names_is_there(self):
        kinds = sorted(d["kind"] for _, d in DOCUMENTS)
        self.assertEqual(kinds, sorted([
            "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
            "RoleBinding", "ConfigMap", "Deployment", "Service", "PersistentVolumeClaim",
            "NetworkPolicy", "PodDisruptionBudget"]))

    def test_identity_fields(self):
        namespace = only("Namespace")["metadata"]["name"]
        for source, d in DOCUMENTS:
            with self.subTest(source=source, kind=d.get("kind")):
                self.assertEqual(d.get("apiVersion"), API_VERSIONS[d["kind"]])
                self.assertRegex(d["metadata"]["name"], DNS1123)
                if d["kind"] in NAMESPACED:
                    # Named in every object: no kustomize namespace transformer moves them.
                    self.assertIn(d["metadata"].get("namespace"), (namespace, "default"))
                else:
                    self.assertNotIn("namespace", d["metadata"])
                if d["kind"] != "ConfigMap":
                    self.assertEqual(d["metadata"]["labels"]["app.kubernetes.io/part-of"],
                                     "tended")
        self.assertNotIn("namespace", KUSTOMIZATION)

    def test_only_the_events_role_lives_outside_the_namespace(self):
        outside = sorted(f'{d["kind"]}/{d["metadata"]["name"]}' for _, d in DOCUMENTS
                         if d["metadata"].get("namespace") == "default")
        self.assertEqual(outside, ["Role/tended-coordinator-events",
                                   "RoleBinding/tended-coordinator-events"])


class DeploymentTest(unittest.TestCase):
    def test_one_replica_recreated(self):
        self.assertEqual(DEPLOYMENT["spec"]["replicas"], 1)
        self.assertEqual(DEPLOYMENT["spec"]["strategy"]["type"], "Recreate")

    def test_selector_matches_the_pod_labels(self):
        self.assertTrue(selects(DEPLOYMENT["spec"]["selector"]["matchLabels"], POD_LABELS))

    def test_service_account(self):
        self.assertEqual(POD["spec"]["serviceAccountName"],
                         only("ServiceAccount")["metadata"]["name"])
        self.assertNotEqual(POD["spec"].get("automountServiceAccountToken"), False)

    def test_ports_agree_with_the_configuration(self):
        self.assertEqual(CONTAINER_PORTS["grpc"], port_of(COORDINATOR_CONFIG["listen"]))
        self.assertEqual(CONTAINER_PORTS["metrics"],
                         port_of(COORDINATOR_CONFIG["metrics_listen"]))

    def test_probes_need_no_client_certificate(self):
        # Kubernetes' gRPC probes speak no TLS: the mTLS port is probed over TCP (it opens
        # once the state is loaded), liveness asks the plain-HTTP /metrics.
        for probe in ("startupProbe", "readinessProbe"):
            with self.subTest(probe=probe):
                self.assertNotIn("grpc", CONTAINER[probe])
                self.assertEqual(CONTAINER[probe]["tcpSocket"]["port"], CONTAINER_PORTS["grpc"])
        liveness = CONTAINER["livenessProbe"]["httpGet"]
        self.assertEqual(liveness["port"], CONTAINER_PORTS["metrics"])
        self.assertEqual(liveness["path"], "/metrics")
        self.assertNotIn("metrics_tls", COORDINATOR_CONFIG)

    def test_resources(self):
        resources = CONTAINER["resources"]
        self.assertIn("cpu", resources["requests"])
        self.assertIn("memory", resources["requests"])
        self.assertIn("memory", resources["limits"])

    def test_restricted_pod_security(self):
        pod_security = POD["spec"]["securityContext"]
        container_security = CONTAINER["securityContext"]
        self.assertTrue(pod_security["runAsNonRoot"])
        self.assertGreater(pod_security["runAsUser"], 0)
        self.assertEqual(pod_security["seccompProfile"]["type"], "RuntimeDefault")
        self.assertFalse(container_security["allowPrivilegeEscalation"])
        self.assertEqual(container_security["capabilities"]["drop"], ["ALL"])
        self.assertTrue(container_security["readOnlyRootFilesystem"])
        self.assertEqual(only("Namespace")["metadata"]["labels"]
                         ["pod-security.kubernetes.io/enforce"], "restricted")

    def test_volumes(self):
        volumes = {v["name"]: v for v in POD["spec"]["volumes"]}
        mounts = {m["name"]: m for m in CONTAINER["volumeMounts"]}
        self.assertEqual(set(volumes), set(mounts))
        config_map = only("ConfigMap")
        config_sources = [s["configMap"] for s in volumes["config"]["projected"]["sources"]
                          if "configMap" in s]
        self.assertEqual([s["name"] for s in config_sources], [config_map["metadata"]["name"]])
        self.assertNotIn("items", config_sources[0])
        config_arg = [a for a in CONTAINER["args"] if a.startswith("--config=")]
        self.assertEqual(len(config_arg), 1)
        config_path = config_arg[0].split("=", 1)[1]
        self.assertEqual(os.path.dirname(config_path), mounts["config"]["mountPath"])
        self.assertIn(os.path.basename(config_path), config_map["data"])
        self.assertTrue(mounts["config"]["readOnly"])
        self.assertEqual(volumes["state"]["persistentVolumeClaim"]["claimName"],
                         only("PersistentVolumeClaim")["metadata"]["name"])
        self.assertEqual(mounts["state"]["mountPath"], COORDINATOR_CONFIG["state_dir"])
        self.assertFalse(mounts["state"].get("readOnly", False))
        self.assertNotIn("--insecure", CONTAINER["args"])

    def test_the_tls_secret_is_mounted_where_the_configuration_reads_it(self):
        volume = {v["name"]: v for v in POD["spec"]["volumes"]}["config"]["projected"]
        mount = {m["name"]: m for m in CONTAINER["volumeMounts"]}["config"]
        secrets = [s["secret"] for s in volume["sources"] if "secret" in s]
        self.assertEqual(len(secrets), 1)
        secret = secrets[0]
        self.assertEqual(secret["name"], TLS_SECRET)
        # Not optional: without the Secret the pod does not start rather than run plaintext.
        self.assertFalse(secret.get("optional", False))
        files = {item["key"]: item for item in secret["items"]}
        self.assertEqual(set(files), {"tls.crt", "tls.key", "ca.crt"})
        tls = COORDINATOR_CONFIG["tls"]
        for config_key, secret_key in (("cert_file", "tls.crt"), ("key_file", "tls.key"),
                                       ("client_ca_file", "ca.crt")):
            with self.subTest(file=config_key):
                self.assertEqual(
                    tls[config_key],
                    os.path.normpath(os.path.join(mount["mountPath"], files[secret_key]["path"])))
        # kubelet makes the projected files root's, group fsGroup: the key must be readable
        # by that group (the coordinator's) and by nobody else, and writable by no group.
        key_mode = files["tls.key"].get("mode", volume.get("defaultMode", 0o644))
        security = POD["spec"]["securityContext"]
        self.assertEqual(security["fsGroup"], security["runAsGroup"])
        self.assertEqual(key_mode & 0o040, 0o040, oct(key_mode))
        self.assertEqual(key_mode & 0o027, 0, oct(key_mode))
        self.assertNotEqual(security["runAsUser"], 0)

    def test_state_claim_has_one_writer(self):
        claim = only("PersistentVolumeClaim")
        self.assertEqual(claim["spec"]["accessModes"], ["ReadWriteOnce"])
        self.assertIn("storage", claim["spec"]["resources"]["requests"])


# Every file a default install ships: the kustomize base, the examples (the packages'
# conffiles), the image's build file, the systemd units and the packages' scripts.
SHIPPED_FILES = sorted(
    os.path.join(folder, name)
    for top in ("packaging", "systemd")
    for folder, _, names in os.walk(os.path.join(SOURCE_DIR, top))
    for name in names)


def without_comments(text):
    """The text with shell/YAML/systemd comments removed (whole lines and trailing ones)."""
    lines = []
    for line in text.splitlines():
        if line.lstrip().startswith(("#", ";")):
            continue
        lines.append(re.sub(r"\s#.*$", "", line))
    return "\n".join(lines)


PLAINTEXT = re.compile(r"--insecure\b|^\s*insecure\s*:\s*(true|yes|on|1)\b|\"insecure\"\s*:\s*true",
                       re.IGNORECASE | re.MULTILINE)


class DefaultInstallIsMtlsTest(unittest.TestCase):
    def test_the_pattern_finds_plaintext(self):
        for text in ("args: [--config=x, --insecure]", "insecure: true", "  insecure: yes",
                     'CMD ["--insecure"]', "ExecStart=/usr/bin/x --insecure", '{"insecure": true}'):
            with self.subTest(text=text):
                self.assertRegex(without_comments(text), PLAINTEXT)
        for text in ("# --insecure for demos", "insecure: false", "x: 1  # insecure: true"):
            with self.subTest(text=text):
                self.assertNotRegex(without_comments(text), PLAINTEXT)

    def test_no_shipped_file_asks_for_plaintext(self):
        self.assertGreater(len(SHIPPED_FILES), 15)
        for path in SHIPPED_FILES:
            with self.subTest(path=os.path.relpath(path, SOURCE_DIR)):
                with open(path, errors="replace") as f:
                    text = without_comments(f.read())
                self.assertNotRegex(text, PLAINTEXT)

    def test_the_configurations_name_their_tls_files(self):
        self.assertNotIn("insecure", AGENT_CONFIG)
        self.assertTrue(AGENT_CONFIG["tls"]["ca_file"].startswith("/"))
        self.assertTrue(AGENT_CONFIG["tls"]["cert_file"].startswith("/"))
        for key in ("cert_file", "key_file", "client_ca_file"):
            with self.subTest(key=key):
                self.assertTrue(COORDINATOR_CONFIG["tls"][key].startswith("/etc/tended/tls/"))

    def test_the_image_command_serves_mtls(self):
        text = read(os.path.join(SOURCE_DIR, "packaging", "container", "Containerfile"))
        command = [line for line in text.splitlines() if line.startswith("CMD ")]
        self.assertEqual(len(command), 1)
        self.assertNotIn("--insecure", command[0])
        self.assertIn("--config=/etc/tended/coordinator.yaml", command[0])


class ServiceTest(unittest.TestCase):
    def test_selector_and_ports(self):
        service = only("Service")
        self.assertTrue(selects(service["spec"]["selector"], POD_LABELS))
        ports = {p["name"]: p for p in service["spec"]["ports"]}
        for name, port in ports.items():
            with self.subTest(port=name):
                self.assertIn(port["targetPort"], CONTAINER_PORTS)
                self.assertEqual(port["port"], CONTAINER_PORTS[port["targetPort"]])

    def test_agents_find_it_by_the_address_in_their_configuration(self):
        service = only("Service")
        host, port = AGENT_CONFIG["coordinator"].rsplit(":", 1)
        self.assertEqual(host, "{}.{}.svc".format(service["metadata"]["name"],
                                                  service["metadata"]["namespace"]))
        self.assertIn(int(port), [p["port"] for p in service["spec"]["ports"]])


class NetworkPolicyTest(unittest.TestCase):
    policy = only("NetworkPolicy")

    def test_selects_the_pod(self):
        self.assertTrue(selects(self.policy["spec"]["podSelector"]["matchLabels"], POD_LABELS))
        self.assertEqual(sorted(self.policy["spec"]["policyTypes"]), ["Egress", "Ingress"])

    def test_ingress_opens_the_configured_ports(self):
        ports = {p["port"] for rule in self.policy["spec"]["ingress"] for p in rule["ports"]}
        self.assertEqual(ports, {port_of(COORDINATOR_CONFIG["listen"]),
                                 port_of(COORDINATOR_CONFIG["metrics_listen"])})

    def test_egress_reaches_prometheus_dns_and_the_api(self):
        ports = {p["port"] for rule in self.policy["spec"]["egress"] for p in rule["ports"]}
        prometheus = urllib.parse.urlparse(COORDINATOR_CONFIG["alerts"]["prometheus_url"])
        self.assertIn(prometheus.port, ports)
        self.assertTrue({53, 443, 6443} <= ports)


class DisruptionBudgetTest(unittest.TestCase):
    def test_selects_the_pod_and_never_blocks_a_drain(self):
        budget = only("PodDisruptionBudget")
        self.assertTrue(selects(budget["spec"]["selector"]["matchLabels"], POD_LABELS))
        # One replica: minAvailable 1 (or maxUnavailable 0) would block every drain of its node.
        self.assertNotIn("minAvailable", budget["spec"])
        self.assertGreaterEqual(budget["spec"]["maxUnavailable"], 1)


class ConfigMapTest(unittest.TestCase):
    def test_is_the_reference_configuration(self):
        with open(os.path.join(SOURCE_DIR, "packaging", "examples", "coordinator.yaml")) as f:
            self.assertEqual(only("ConfigMap")["data"]["coordinator.yaml"], f.read())

    def test_uses_the_in_cluster_service_account(self):
        self.assertTrue(COORDINATOR_CONFIG["kubernetes"]["enabled"])
        self.assertNotIn("kubeconfig", COORDINATOR_CONFIG["kubernetes"])


class RbacTest(unittest.TestCase):
    def granted(self, kind):
        grants = set()
        for _, d in DOCUMENTS:
            if d["kind"] != kind:
                continue
            namespace = d["metadata"].get("namespace")
            for rule in d["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            self.assertNotEqual(verb, "*")
                            self.assertNotEqual(resource, "*")
                            grants.add((group, resource, verb, namespace))
        return grants

    def used_calls(self):
        header = read(os.path.join(SOURCE_DIR, "coordinator", "kube", "kube_client.h"))
        declared = set(re.findall(r"virtual [^;]*?\b(\w+)\(", header)) - {"KubeClient"}
        self.assertTrue(declared <= set(KUBE_CALLS),
                        f"KubeClient methods missing from KUBE_CALLS: {declared - set(KUBE_CALLS)}")
        used = set()
        for folder, _, files in os.walk(os.path.join(SOURCE_DIR, "coordinator")):
            for name in files:
                path = os.path.join(folder, name)
                if not name.endswith(".cc") or name.startswith("http_kube_client"):
                    continue
                text = read(path)
                for method in KUBE_CALLS:
                    if re.search(r"\bclient_?(->|\.)" + method + r"\(", text):
                        used.add(method)
        return used

    def test_grants_exactly_the_calls_the_coordinator_makes(self):
        used = self.used_calls()
        needed_cluster = {KUBE_CALLS[m][:3] for m in used if KUBE_CALLS[m][3] is None}
        needed_default = {KUBE_CALLS[m][:3] for m in used if KUBE_CALLS[m][3] == "default"}
        cluster = {g[:3] for g in self.granted("ClusterRole")}
        default = {g[:3] for g in self.granted("Role") if g[3] == "default"}
        self.assertEqual(cluster, needed_cluster)
        self.assertEqual(default, needed_default)
        # The unused calls stay ungranted (a drain evicts, it never deletes).
        self.assertNotIn(("", "pods", "delete"), cluster)
        self.assertNotIn(("", "nodes", "watch"), cluster)

    def test_every_verb_says_why(self):
        text = read(os.path.join(BASE, "rbac.yaml"))
        verb_lines = [line for line in text.splitlines()
                      if re.match(r"^\s+- (get|list|watch|patch|create|update|delete)\b", line)]
        self.assertGreater(len(verb_lines), 0)
        for line in verb_lines:
            with self.subTest(line=line.strip()):
                self.assertRegex(line, r"#\s+\w+")

    def test_bindings_name_the_service_account(self):
        account = only("ServiceAccount")["metadata"]
        for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
            binding = only(kind)
            with self.subTest(kind=kind):
                self.assertEqual(binding["roleRef"]["kind"], role_kind)
                self.assertEqual(binding["roleRef"]["name"], only(role_kind)["metadata"]["name"])
                self.assertEqual(binding["subjects"], [{
                    "kind": "ServiceAccount", "name": account["name"],
                    "namespace": account["namespace"]}])


class ContainerfileTest(unittest.TestCase):
    text = read(os.path.join(SOURCE_DIR, "packaging", "container", "Containerfile"))
    # Instructions, continuation lines joined.
    instructions = [line.strip() for line in re.sub(r"\\\n", " ", text).splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]

    def instruction(self, name):
        found = [i.split(None, 1)[1] for i in self.instructions if i.split()[0] == name]
        self.assertEqual(len(found), 1, name)
        return found[0]

    def test_debian_12_base(self):
        self.assertRegex(self.instruction("FROM"), r"^(docker\.io/library/)?debian:12(-slim)?$")

    def test_installs_the_package_as_a_fixed_non_root_user(self):
        uid, gid = self.instruction("USER").split(":")
        security = POD["spec"]["securityContext"]
        self.assertEqual(int(uid), security["runAsUser"])
        self.assertEqual(int(gid), security["runAsGroup"])
        self.assertEqual(int(gid), security["fsGroup"])
        self.assertIn(f"--uid {uid}", self.text)
        self.assertIn(f"--gid {gid}", self.text)
        self.assertIn("COPY tended-coordinator_*.deb /tmp/", self.instructions)

    def test_ports_and_command_agree(self):
        self.assertEqual(sorted(int(p) for p in self.instruction("EXPOSE").split()),
                         sorted(CONTAINER_PORTS.values()))
        self.assertEqual(self.instruction("ENTRYPOINT"), '["/usr/bin/tended-coordinator"]')
        self.assertEqual(self.instruction("VOLUME"), f'["{COORDINATOR_CONFIG["state_dir"]}"]')


if __name__ == "__main__":
    unittest.main(verbosity=2)
