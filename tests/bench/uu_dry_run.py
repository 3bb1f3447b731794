#!/usr/bin/python3
"""Runs a full `unattended-upgrade --dry-run` (its main(), MinimalSteps on) against a root.

Everything it reads and writes is under ROOT: apt configuration, lists, dpkg status, the
downloaded archives, its logs, lock and stamp file. Hooks (DPkg::Pre/Post-Invoke,
Pre-Install-Pkgs, APT::Update::Post-Invoke) from the host's configuration are cleared.
It downloads what it would install into ROOT/var/cache/apt/archives, as the real one does.

usage: uu_dry_run.py ROOT [DISTRO_ID DISTRO_CODENAME]
"""
import importlib.machinery
import importlib.util
import os
import sys

root = os.path.abspath(sys.argv[1])
loader = importlib.machinery.SourceFileLoader("uu", "/usr/bin/unattended-upgrade")
spec = importlib.util.spec_from_loader("uu", loader)
uu = importlib.util.module_from_spec(spec)
loader.exec_module(uu)
if len(sys.argv) >= 4:
    uu.DISTRO_ID, uu.DISTRO_CODENAME = sys.argv[2], sys.argv[3]
uu.LOCK_FILE = os.path.join(root, "run", "unattended-upgrades.lock")

apt_pkg = uu.apt_pkg
for key in ("Unattended-Upgrade", "APT::Default-Release", "DPkg::Pre-Invoke",
            "DPkg::Post-Invoke", "DPkg::Pre-Install-Pkgs", "APT::Update::Post-Invoke"):
    apt_pkg.config.clear(key)
apt_pkg.config.set("Dir", root + "/")
apt_pkg.config.set("Dir::State::status", root + "/var/lib/dpkg/status")
apt_pkg.config.set("Dir::Log", root + "/var/log/apt")
dpkg_link = os.path.join(root, "usr", "bin", "dpkg")
if not os.path.exists(dpkg_link):
    os.makedirs(os.path.dirname(dpkg_link), exist_ok=True)
    os.symlink("/usr/bin/dpkg", dpkg_link)
os.makedirs(os.path.join(root, "run"), exist_ok=True)

opts = uu.Options()
opts.dry_run = True
opts.minimal_upgrade_steps = True
sys.exit(uu.main(opts, rootdir=root))
