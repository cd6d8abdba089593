"""prkd's glibc allocator settings (prkd/utils/allocator.py): they really keep large blocks off mmap in a
process started with them, the export line the launch scripts eval is right, the advice says how to enable
them, and no code of prkd or of the benchmarks replaces a running process to apply them."""

import ast
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO
from prkd.utils.allocator import TUNABLES, advice, allocator_env

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="glibc's malloc tunables")

#: runs in a child: malloc a block of argv[1] bytes, free it; prints from mallinfo2 the growth of mmap'd bytes
#: (hblkhd) and of heap bytes in use (uordblks) while the block is held, and the heap's free bytes (fordblks)
#: once it is freed
_MALLOC_AND_FREE = textwrap.dedent("""
    import ctypes, ctypes.util, sys
    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                    "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.mallinfo2.restype = Mallinfo2
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    before = libc.mallinfo2()
    block = libc.malloc(int(sys.argv[1]))
    assert block, "malloc failed"
    held = libc.mallinfo2()
    libc.free(block)
    freed = libc.mallinfo2()
    print(held.hblkhd - before.hblkhd, held.uordblks - before.uordblks, freed.fordblks)
""")


def _python_env(**extra: str) -> dict[str, str]:
    """This process's environment without any allocator setting, plus ``extra``."""
    clean = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "PRKD_ALLOCATOR")}
    return clean | extra


def _malloc_and_free(size: int, env: dict[str, str]) -> tuple[int, int, int]:
    result = subprocess.run([sys.executable, "-c", _MALLOC_AND_FREE, str(size)],
                            capture_output=True, text=True,
                            env=env)
    if "mallinfo2" in result.stderr:
        pytest.skip("this glibc has no mallinfo2 (glibc < 2.33)")
    assert result.returncode == 0, result.stderr[-2000:]
    mmapped, from_heap, heap_free = map(int, result.stdout.split())
    return mmapped, from_heap, heap_free


@needs_glibc
def test_a_process_started_with_the_settings_keeps_a_large_block_off_mmap_and_in_the_heap():
    # larger than the settings' 256 MiB top pad, so that the heap's padding cannot serve it: only mmap_max=0
    # keeps it off mmap (the block is never touched, so it costs address space, not memory)
    block = 512 << 20
    mmapped, from_heap, _ = _malloc_and_free(block, _python_env())
    assert mmapped >= block and from_heap < block  # glibc's defaults: a fresh mmap
    mmapped, from_heap, heap_free = _malloc_and_free(block, _python_env(**allocator_env({})))
    assert mmapped == 0 and from_heap >= block  # the settings: no mmap, the block comes from the heap
    assert heap_free >= block  # and once freed it stays in the process, free for the next step


def _module_prints(env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-m", "prkd.utils.allocator"], capture_output=True,
                            text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_the_module_prints_the_export_line_only_when_it_is_needed():
    assert _module_prints(_python_env()) == (f"export GLIBC_TUNABLES={TUNABLES}" if GLIBC else "")
    assert _module_prints(_python_env(GLIBC_TUNABLES="glibc.malloc.mmap_max=0")) == ""
    assert _module_prints(_python_env(PRKD_ALLOCATOR="default")) == ""


@needs_glibc
def test_evaluating_the_export_line_gives_later_processes_the_settings():
    script = f'eval "$({sys.executable} -m prkd.utils.allocator)"; {sys.executable} -c ' \
             '"import os; print(os.environ[\'GLIBC_TUNABLES\'])"'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=_python_env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == TUNABLES


def test_the_settings_are_offered_once_and_can_be_turned_off():
    assert allocator_env({}) == ({"GLIBC_TUNABLES": TUNABLES} if GLIBC else {})
    assert allocator_env({"GLIBC_TUNABLES": "x"}) == {}
    assert allocator_env({"PRKD_ALLOCATOR": "default"}) == {}
    assert advice({"GLIBC_TUNABLES": TUNABLES}) is None and advice({"PRKD_ALLOCATOR": "default"}) is None
    note = advice({})
    if GLIBC:
        assert "\n" not in note and "python -m prkd.utils.allocator" in note
        assert "PRKD_ALLOCATOR=default" in note
    else:
        assert note is None


_REPLACES_A_PROCESS = ("exec", "spawn", "posix_spawn", "fork")


def _process_replacements(source: str) -> list[str]:
    """Calls of ``os.exec*`` / ``os.spawn*`` / ``os.posix_spawn*`` / ``os.fork*`` and names imported from
    os."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Name) and node.func.value.id == "os" and \
                node.func.attr.startswith(_REPLACES_A_PROCESS):
            found.append(f"line {node.lineno}: os.{node.func.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [f"line {node.lineno}: from os import {a.name}" for a in node.names
                      if a.name.startswith(_REPLACES_A_PROCESS)]
    return found


def test_the_scan_finds_a_process_replacement():
    assert _process_replacements("import os\nos.execv(a, b)\n") == ["line 2: os.execv"]
    assert _process_replacements("from os import execve, path\n") == ["line 1: from os import execve"]
    assert _process_replacements("import os, subprocess\nsubprocess.run(['x'], env=dict(os.environ))\n") == []


@pytest.mark.parametrize("folder", ["prkd", "benchmarks"])
def test_no_module_replaces_or_forks_its_process(folder):
    sources = sorted((REPO / folder).rglob("*.py"))
    assert sources
    found = {str(p.relative_to(REPO)): hits for p in sources
             if (hits := _process_replacements(p.read_text()))}
    assert found == {}, "start a child process (subprocess) with the environment it needs instead"
