#!/usr/bin/python3
"""Differential oracle: which installed packages unattended-upgrades would upgrade.

Loads /usr/bin/unattended-upgrade as a module and runs only its own planning code
(UnattendedUpgradesCache + calculate_upgradable_pkgs) against a throwaway root: no
download, no dpkg, no lock, no hook. Prints a JSON list of package names.

usage: uu_oracle.py ROOT [DISTRO_ID DISTRO_CODENAME]
"""
import json
import logging
import os
import sys

sys.dont_write_bytecode = True  # Nothing written beside the sources.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import uu_module  # noqa: E402

root = os.path.abspath(sys.argv[1])
logging.basicConfig(level=logging.ERROR)
uu = uu_module.load(root, sys.argv[2:4])
# Plans are built in memory, as the engine builds them: no pkgcache.bin is read or written.
uu.apt_pkg.config.set("Dir::Cache::pkgcache", "")
uu.apt_pkg.config.set("Dir::Cache::srcpkgcache", "")
uu._setup_alternative_rootdir(root)
cache = uu.UnattendedUpgradesCache(rootdir=root)
pkgs = uu.calculate_upgradable_pkgs(cache, uu.Options())
print(json.dumps(sorted(p.name for p in pkgs)))
