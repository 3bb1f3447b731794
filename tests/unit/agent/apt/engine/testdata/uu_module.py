"""unattended-upgrades (/usr/bin/unattended-upgrade) loaded as a module and confined to a
throwaway root: python-apt's configuration points at the root's apt and dpkg files, the
host's Unattended-Upgrade settings and the given hooks are cleared, and the root gets the
<root>/usr/bin/dpkg that python-apt's rootdir mode runs. Shared by uu_oracle.py and
tests/bench/uu_dry_run.py."""
import importlib.machinery
import importlib.util
import os


def load(root, argv_distro, clear=()):
    """Returns the module. argv_distro: [DISTRO_ID, DISTRO_CODENAME] or []."""
    loader = importlib.machinery.SourceFileLoader("uu", "/usr/bin/unattended-upgrade")
    spec = importlib.util.spec_from_loader("uu", loader)
    uu = importlib.util.module_from_spec(spec)
    loader.exec_module(uu)
    if len(argv_distro) >= 2:
        uu.DISTRO_ID, uu.DISTRO_CODENAME = argv_distro[0], argv_distro[1]
    apt_pkg = uu.apt_pkg
    for key in ("Unattended-Upgrade", "APT::Default-Release") + tuple(clear):
        apt_pkg.config.clear(key)
    apt_pkg.config.set("Dir", root + "/")
    apt_pkg.config.set("Dir::State::status", root + "/var/lib/dpkg/status")
    dpkg_link = os.path.join(root, "usr", "bin", "dpkg")
    if not os.path.exists(dpkg_link):
        os.makedirs(os.path.dirname(dpkg_link), exist_ok=True)
        os.symlink("/usr/bin/dpkg", dpkg_link)
    return uu
