#!/usr/bin/python3
"""Runs a full `unattended-upgrade --dry-run` (its main(), MinimalSteps on) against a root.

Everything it reads and writes is under ROOT: apt configuration, lists, dpkg status, the
downloaded archives, its logs, lock and stamp file. Hooks (DPkg::Pre/Post-Invoke,
Pre-Install-Pkgs, APT::Update::Post-Invoke) from the host's configuration are cleared.
It downloads what it would install into ROOT/var/cache/apt/archives, as the real one does.

usage: uu_dry_run.py ROOT [DISTRO_ID DISTRO_CODENAME]
"""
import os
import sys

sys.dont_write_bytecode = True  # Nothing written beside the sources.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit",
                                "agent", "apt", "testdata"))
import uu_module  # noqa: E402

root = os.path.abspath(sys.argv[1])
uu = uu_module.load(root, sys.argv[2:4], clear=("DPkg::Pre-Invoke", "DPkg::Post-Invoke",
                                                 "DPkg::Pre-Install-Pkgs",
                                                 "APT::Update::Post-Invoke"))
uu.LOCK_FILE = os.path.join(root, "run", "unattended-upgrades.lock")
uu.apt_pkg.config.set("Dir::Log", root + "/var/log/apt")
os.makedirs(os.path.join(root, "run"), exist_ok=True)

opts = uu.Options()
opts.dry_run = True
opts.minimal_upgrade_steps = True
sys.exit(uu.main(opts, rootdir=root))
