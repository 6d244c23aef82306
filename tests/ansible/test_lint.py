"""Documentation and offline lint of the collection (no daemon, no libvmrepl needed).

* ``ansible-doc -t module vmrepl.replication.<m>`` renders every module, with nothing on stderr
  (no warning), and ``ansible-doc --list`` finds exactly the five modules.
* ``ansible-test sanity`` with the tests that run offline. The others (validate-modules,
  ansible-doc, import, pep8, yamllint, runtime-metadata, pylint) need a virtual environment
  that ansible-test fills from PyPI; this suite checks the same things itself (SANITY_OFFLINE
  below, then the tests after it):
  - DOCUMENTATION / EXAMPLES / RETURN of each module parse as YAML (safe_load, as
    validate-modules and yamllint read them), with the keys validate-modules requires;
  - each module's argument_spec (captured by running main() until AnsibleModule is built)
    matches its documented options, doc fragment merged, as ansible-doc --json shows them:
    names, types, defaults, choices, required, aliases, elements, suboptions;
  - every option used in EXAMPLES exists;
  - every Python file compiles (py_compile), has no print() call and no sys.exit() (modules
    exit through exit_json / fail_json), the modules start with #!/usr/bin/python;
  - meta/runtime.yml and galaxy.yml parse and say what ansible-galaxy needs, and
    ``ansible-galaxy collection build`` makes the tarball without warnings;
  - the example playbooks pass ansible-playbook --syntax-check.
"""

from __future__ import annotations

import ast
import importlib
import json
import py_compile
import shutil
import subprocess
import sys
import tarfile
from typing import Any, Dict

import pytest
import yaml

from conftest import COLLECTION, EXAMPLES, MODULES, ansible_env

#: ansible-test sanity tests that need no virtual environment (Debian 12's ansible-core 2.14).
SANITY_OFFLINE = [
    "action-plugin-docs", "changelog", "compile", "empty-init", "future-import-boilerplate",
    "ignores", "line-endings", "metaclass-boilerplate", "no-assert", "no-basestring",
    "no-dict-iteritems", "no-dict-iterkeys", "no-dict-itervalues", "no-get-exception",
    "no-illegal-filenames", "no-main-display", "no-smart-quotes", "no-unicode-literals",
    "replace-urlopen", "shebang", "symlinks", "use-argspec-type-path", "use-compat-six",
]


def run(*cmd: str, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, env=ansible_env(), timeout=600, **kw)


# ---- ansible-doc ----------------------------------------------------------------------------------


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_without_warnings(module: str) -> None:
    p = run("ansible-doc", "-t", "module", f"vmrepl.replication.{module}")
    assert p.returncode == 0, p.stderr
    assert p.stderr == "", p.stderr
    for section in ("OPTIONS", "ATTRIBUTES", "EXAMPLES", "RETURN VALUES", "REQUIREMENTS"):
        assert section in p.stdout, section
    assert f"VMREPL.REPLICATION.{module.upper()}" in p.stdout
    for common in ("- uri", "- timeout", "- service_options"):
        assert common in p.stdout, common


def test_ansible_doc_lists_the_five_modules() -> None:
    p = run("ansible-doc", "-t", "module", "--list", "--json", "vmrepl.replication")
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert sorted(json.loads(p.stdout)) == sorted(f"vmrepl.replication.{m}" for m in MODULES)


# ---- ansible-test sanity, the offline part --------------------------------------------------------


def test_ansible_test_sanity_offline(tmp_path) -> None:
    # ansible-test writes tests/output into the collection: run it on a copy.
    copy = tmp_path / "ansible_collections" / "vmrepl" / "replication"
    shutil.copytree(COLLECTION, copy, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    args = ["ansible-test", "sanity", "--python", f"{sys.version_info.major}.{sys.version_info.minor}"]
    for t in SANITY_OFFLINE:
        args += ["--test", t]
    p = run(*args, cwd=copy)
    assert p.returncode == 0, p.stdout + p.stderr
    for t in SANITY_OFFLINE:
        assert f'Running sanity test "{t}"' in p.stdout, (t, p.stdout)
    assert "ERROR" not in p.stdout + p.stderr, p.stdout + p.stderr


# ---- what validate-modules / yamllint / import / pep8 would check ----------------------------------


def module_path(module: str):
    return COLLECTION / "plugins" / "modules" / f"{module}.py"


def doc_strings(module: str) -> Dict[str, str]:
    tree = ast.parse(module_path(module).read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
                out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


class Captured(Exception):
    def __init__(self, kwargs: Dict[str, Any]) -> None:
        super().__init__("captured")
        self.kwargs = kwargs


def argument_spec(module: str, monkeypatch: pytest.MonkeyPatch) -> Dict[str, Any]:
    """The keyword arguments the module gives AnsibleModule (argument_spec, required_if...)."""
    common = importlib.import_module("ansible_collections.vmrepl.replication.plugins.module_utils.vmrepl_common")

    def capture(**kwargs: Any) -> None:
        raise Captured(kwargs)

    monkeypatch.setattr(common, "AnsibleModule", capture)
    mod = importlib.import_module(f"ansible_collections.vmrepl.replication.plugins.modules.{module}")
    with pytest.raises(Captured) as ei:
        mod.main()
    return ei.value.kwargs


@pytest.fixture(scope="module")
def docs() -> Dict[str, Any]:
    """ansible-doc --json of every module: the documentation with the doc fragment merged."""
    p = run("ansible-doc", "-t", "module", "--json", *(f"vmrepl.replication.{m}" for m in MODULES))
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return {k.rsplit(".", 1)[1]: v for k, v in json.loads(p.stdout).items()}


@pytest.mark.parametrize("module", MODULES)
def test_documentation_examples_return_parse(module: str) -> None:
    d = doc_strings(module)
    assert set(d) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    doc = yaml.safe_load(d["DOCUMENTATION"])
    for key in ("module", "short_description", "description", "options", "author", "version_added"):
        assert key in doc, key
    assert doc["module"] == module
    assert doc["short_description"][0].isupper() and not doc["short_description"].endswith(".")
    for name, opt in doc["options"].items():
        assert opt.get("description"), name
        assert opt.get("type"), name
    examples = yaml.safe_load(d["EXAMPLES"])
    assert isinstance(examples, list) and examples
    ret = yaml.safe_load(d["RETURN"])
    for name, r in ret.items():
        for key in ("description", "returned", "type"):
            assert key in r, (name, key)
    assert "changed" in ret and "elapsed" in ret and "code" in ret and "error_description" in ret


def compare_options(where: str, spec: Dict[str, Any], documented: Dict[str, Any]) -> None:
    assert sorted(spec) == sorted(documented), (where, sorted(spec), sorted(documented))
    for name, s in spec.items():
        d = documented[name]
        here = f"{where}.{name}"
        assert s.get("type", "str") == d.get("type", "str"), here
        assert s.get("default") == d.get("default"), (here, s.get("default"), d.get("default"))
        assert bool(s.get("required", False)) == bool(d.get("required", False)), here
        assert s.get("choices") == d.get("choices"), here
        assert sorted(s.get("aliases", [])) == sorted(d.get("aliases", [])), here
        assert s.get("elements") == d.get("elements"), here
        if "options" in s or "suboptions" in d:
            compare_options(here, s.get("options", {}), d.get("suboptions", {}))


@pytest.mark.parametrize("module", MODULES)
def test_argument_spec_matches_documentation(module: str, docs: Dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs = argument_spec(module, monkeypatch)
    assert kwargs.get("supports_check_mode") is True
    spec = kwargs["argument_spec"]
    compare_options(module, spec, docs[module]["doc"]["options"])
    for rule in kwargs.get("required_if", []):
        key, value, needed = rule[0], rule[1], rule[2]
        assert key in spec and all(n in spec for n in needed), rule
        if spec[key].get("choices"):
            assert value in spec[key]["choices"], rule


@pytest.mark.parametrize("module", MODULES)
def test_examples_use_documented_options(module: str, docs: Dict[str, Any]) -> None:
    options = docs[module]["doc"]["options"]
    names = set(options) | {a for o in options.values() for a in o.get("aliases", [])}
    used = 0
    for task in yaml.safe_load(doc_strings(module)["EXAMPLES"]):
        for key, args in task.items():
            if key.startswith("vmrepl.replication."):
                used += 1
                assert set(args) <= names | set(
                    docs.get(key.rsplit(".", 1)[1], {}).get("doc", {}).get("options", {})
                ), (task["name"], set(args) - names)
    assert used > 0


def python_files():
    return sorted(COLLECTION.rglob("*.py"))


def test_python_files_compile_and_do_not_print(tmp_path) -> None:
    files = python_files()
    assert len(files) >= len(MODULES) + 2
    for f in files:
        py_compile.compile(str(f), cfile=str(tmp_path / (f.name + "c")), doraise=True)
        tree = ast.parse(f.read_text(), str(f))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fn = node.func
                assert not (isinstance(fn, ast.Name) and fn.id == "print"), f"{f}:{node.lineno}: print()"
                assert not (isinstance(fn, ast.Attribute) and fn.attr == "exit" and isinstance(fn.value, ast.Name)
                            and fn.value.id == "sys"), f"{f}:{node.lineno}: sys.exit()"
        text = f.read_text()
        assert "from __future__ import absolute_import, division, print_function" in text, f
        assert "__metaclass__ = type" in text, f
        assert "\t" not in text and "\r" not in text, f
        assert all(len(line) <= 160 for line in text.splitlines()), f  # ansible-test's pep8 limit
    for m in MODULES:
        assert module_path(m).read_text().startswith("#!/usr/bin/python\n"), m


def test_collection_metadata() -> None:
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("vmrepl", "replication")
    for key in ("version", "readme", "authors", "description"):
        assert galaxy.get(key), key
    assert (COLLECTION / galaxy["readme"]).is_file()
    runtime = yaml.safe_load((COLLECTION / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"].startswith(">=2.14")
    assert (COLLECTION / "plugins" / "module_utils" / "vmrepl_common.py").is_file()
    assert any((COLLECTION / "docs").iterdir())


@pytest.mark.parametrize("playbook", ["replication.yml", "planned.yml", "unplanned.yml"])
def test_example_playbooks_pass_syntax_check(playbook: str) -> None:
    p = run("ansible-playbook", "--syntax-check", "-i", str(EXAMPLES / "inventory.yml"), str(EXAMPLES / playbook))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "WARNING" not in p.stderr, p.stderr


def test_missing_binding_gives_a_clean_failure(tmp_path) -> None:
    """A module run by an interpreter without the binding fails with one clear message."""
    env = ansible_env(PYTHONPATH="", ANSIBLE_LOCAL_TEMP=str(tmp_path / "t"), ANSIBLE_HOME=str(tmp_path / "h"))
    p = subprocess.run(
        ["ansible", "localhost", "-c", "local", "-m", "vmrepl.replication.vmrepl_info", "-a", "uri=unix:/nowhere"],
        capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "the vmrepl Python binding is not installed" in p.stdout, p.stdout


def test_ansible_galaxy_builds_the_collection(tmp_path) -> None:
    p = run("ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), str(COLLECTION))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "WARNING" not in p.stdout + p.stderr, p.stdout + p.stderr
    tarball = tmp_path / "vmrepl-replication-0.1.0.tar.gz"
    with tarfile.open(tarball) as t:
        names = set(t.getnames())
    for m in MODULES:
        assert f"plugins/modules/{m}.py" in names
    assert "plugins/module_utils/vmrepl_common.py" in names and "meta/runtime.yml" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
