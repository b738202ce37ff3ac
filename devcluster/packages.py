"""The Debian packages the cluster needs, installed on first `up`: one list shared with
scripts/setup (scripts/debian-packages.txt), so a fresh machine needs only `up`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .proc import die, say
from .settings import PACKAGES_FILE


def needed_files() -> dict[str, str]:
    """FILE -> the package that provides it, for the packages the cluster needs."""
    needed: dict[str, str] = {}
    for line in PACKAGES_FILE.read_text().splitlines():
        pkg, *files = line.split("#", 1)[0].split() or [""]
        needed.update(dict.fromkeys(files, pkg))
    return needed


def ensure_packages() -> None:
    missing = sorted({pkg for path, pkg in needed_files().items() if not os.path.exists(path)})
    if not missing:
        return
    if not shutil.which("apt-get"):
        die(f"missing packages {missing} and no apt-get to install them")
    say(f"installing {' '.join(missing)} (apt-get, --no-install-recommends)")
    # Package scripts must not start system-wide daemons (munged, mariadb) on install:
    # a policy-rc.d that says "no" does that; we only add it when there is none.
    policy = Path("/usr/sbin/policy-rc.d")
    added = False
    if not policy.exists():
        policy.write_text(
            "#!/bin/sh\n# added by olmoctl scripts/dev-cluster during apt-get\nexit 101\n"
        )
        policy.chmod(0o755)
        added = True
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        for argv in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
        ):
            p = subprocess.run(argv, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                sys.stderr.write(p.stdout[-3000:] + p.stderr[-3000:])
                die(f"{' '.join(argv)} failed")
    finally:
        if added:
            policy.unlink()
