"""The Vagrant lab's files are valid: `vagrant validate` (Debian's vagrant
package) and shellcheck on the provisioning and demo scripts. Each check is
skipped, saying why, where its tool is not installed (`make vagrant-check`
installs both when it can)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers", ["1", "3"])
def test_vagrantfile_validates(workers: str) -> None:
    if not shutil.which("vagrant"):
        pytest.skip("vagrant is not installed (apt-get install vagrant, or `make vagrant-check`)")
    env = {**os.environ, "PK_WORKERS": workers, "VAGRANT_CHECKPOINT_DISABLE": "1"}
    r = subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=ROOT / "vagrant", env=env,
                       capture_output=True, text=True, timeout=110)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "validated successfully" in r.stdout


def test_vagrantfile_refuses_bad_settings() -> None:
    if not shutil.which("vagrant"):
        pytest.skip("vagrant is not installed (apt-get install vagrant, or `make vagrant-check`)")
    env = {**os.environ, "PK_WORKERS": "0", "VAGRANT_CHECKPOINT_DISABLE": "1"}
    r = subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=ROOT / "vagrant", env=env,
                       capture_output=True, text=True, timeout=110)
    assert r.returncode != 0 and "PK_WORKERS must be between 1 and 50" in r.stdout + r.stderr


def test_scripts_pass_shellcheck() -> None:
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (apt-get install shellcheck, or `make vagrant-check`)")
    r = subprocess.run(["shellcheck", "vagrant/provision.sh", "scripts/demo.sh"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
