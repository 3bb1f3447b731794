#!/usr/bin/python3
"""Differential oracle: which installed packages unattended-upgrades would upgrade.

Loads /usr/bin/unattended-upgrade as a module and runs only its own planning code
(UnattendedUpgradesCache + calculate_upgradable_pkgs) against a throwaway root: no
download, no dpkg, no lock, no hook. Prints a JSON list of package names.

usage: uu_oracle.py ROOT [DISTRO_ID DISTRO_CODENAME]
"""
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys

root = os.path.abspath(sys.argv[1])
logging.basicConfig(level=logging.ERROR)

loader = importlib.machinery.SourceFileLoader("uu", "/usr/bin/unattended-upgrade")
spec = importlib.util.spec_from_loader("uu", loader)
uu = importlib.util.module_from_spec(spec)
loader.exec_module(uu)
if len(sys.argv) >= 4:
    uu.DISTRO_ID, uu.DISTRO_CODENAME = sys.argv[2], sys.argv[3]

apt_pkg = uu.apt_pkg
# python-apt read the host's apt configuration on import; keep only what cannot matter for
# a plan, and point every directory at the root before the cache is opened.
for key in ("Unattended-Upgrade", "APT::Default-Release"):
    apt_pkg.config.clear(key)
apt_pkg.config.set("Dir", root + "/")
apt_pkg.config.set("Dir::State::status", root + "/var/lib/dpkg/status")
apt_pkg.config.set("Dir::Cache::pkgcache", "")
apt_pkg.config.set("Dir::Cache::srcpkgcache", "")
# python-apt's rootdir mode calls <root>/usr/bin/dpkg --print-foreign-architectures.
dpkg_link = os.path.join(root, "usr", "bin", "dpkg")
if not os.path.exists(dpkg_link):
    os.makedirs(os.path.dirname(dpkg_link), exist_ok=True)
    os.symlink("/usr/bin/dpkg", dpkg_link)

uu._setup_alternative_rootdir(root)
cache = uu.UnattendedUpgradesCache(rootdir=root)
pkgs = uu.calculate_upgradable_pkgs(cache, uu.Options())
print(json.dumps(sorted(p.name for p in pkgs)))
