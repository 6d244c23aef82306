"""Shared pieces of the Ansible collection's suite (plugins/ansible/ansible_collections/vmrepl/replication).

Run by ctest as ansible.* (tests/ansible/CMakeLists.txt), which sets VMREPL_LIBRARY to the
library of the build tree and, when the build has vmrepld, VMREPLD to its binary. By hand:

    VMREPL_LIBRARY=build/capi/libvmrepl.so [VMREPLD=build/tools/vmrepld/vmrepld] \\
        /usr/bin/python3 -m pytest -q tests/ansible
"""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Iterator

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
BINDING = REPO / "bindings" / "python"
COLLECTIONS = REPO / "plugins" / "ansible"
COLLECTION = COLLECTIONS / "ansible_collections" / "vmrepl" / "replication"
MODULES = ["vmrepl_info", "vmrepl_server", "vmrepl_relationship", "vmrepl_failover", "vmrepl_reverse"]
EXAMPLES = REPO / "examples" / "ansible"
GEN_IMAGE = REPO / "bench" / "gen_image.py"
MiB = 1 << 20

# The modules import module_utils as ansible_collections.vmrepl.replication...; the in-process
# tests import them the same way.
for p in (str(BINDING), str(COLLECTIONS)):
    if p not in sys.path:
        sys.path.insert(0, p)


def ansible_env(**extra: str) -> dict:
    """The environment of ansible-playbook / ansible-doc runs: this collection, the binding of
    the source tree and the library of the build tree, no user configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_CONFIG=str(HERE / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_HOST_KEY_CHECKING="false",
        ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3",
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        PYTHONPATH=str(BINDING),
        LC_ALL="C.UTF-8",
    )
    env.update(extra)
    return env


@pytest.fixture(scope="session", autouse=True)
def ansible_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    """A HOME of the session for the ansible tools (~/.ansible/tmp, ~/.ansible/test,
    galaxy_cache...), so the suite leaves nothing in the user's home."""
    home = tmp_path_factory.mktemp("home")
    old = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    yield home
    if old is None:
        del os.environ["HOME"]
    else:
        os.environ["HOME"] = old


@pytest.fixture(scope="session")
def library() -> str:
    lib = os.environ.get("VMREPL_LIBRARY", "")
    if not lib:
        pytest.skip("VMREPL_LIBRARY is not set (run through ctest)")
    return lib
