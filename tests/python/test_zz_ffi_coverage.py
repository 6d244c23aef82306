"""Every function of the public header is declared once in _ffi, matching its C prototype, and
the suite calls every one of them through the binding (runs last: file order)."""

from __future__ import annotations

import pathlib
import re
from typing import Counter, Dict, Tuple

import pytest

from conftest import REPO
from vmrepl import _ffi

HEADER = REPO / "capi" / "include" / "vmrepl" / "vmrepl.h"


def header_functions() -> Dict[str, Tuple[str, int]]:
    """name -> (return type, number of parameters) of every VMR_EXTERN function."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    out = {}
    for m in re.finditer(r"VMR_EXTERN\s+([^;]*?)\b(vmr_\w+)\s*\(([^)]*)\)\s*;", text):
        ret, name, params = m.group(1).strip(), m.group(2), m.group(3).strip()
        n = 0 if params in ("", "void") else params.count(",") + 1
        out[name] = (ret, n)
    return out


def test_every_c_function_has_one_prototype() -> None:
    funcs = header_functions()
    assert len(funcs) >= 40
    assert sorted(_ffi.PROTOTYPES) == sorted(funcs)
    for name, (ret, n) in funcs.items():
        argtypes, restype = _ffi.PROTOTYPES[name]
        assert len(argtypes) == n, name
        assert (restype is None) == (ret == "void"), name
        if ret == "vmr_status":
            assert restype is _ffi.vmr_status, name
        if ret.startswith("const char"):
            assert restype is _ffi.c_char_p, name


def test_every_c_function_was_called(request: pytest.FixtureRequest, ffi_calls: Counter) -> None:
    session = request.session
    here = pathlib.Path(__file__).parent
    modules = {pathlib.Path(str(item.fspath)).name for item in session.items}
    expected = {p.name for p in here.glob("test_*.py")}
    if modules != expected or len(session.items) != session.testscollected:
        pytest.skip("only meaningful when the whole suite runs")
    missing = sorted(set(_ffi.PROTOTYPES) - set(ffi_calls))
    assert missing == [], f"C functions the suite never called through the binding: {missing}"
