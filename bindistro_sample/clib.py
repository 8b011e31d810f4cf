"""SAMPLE DATA: libhello, a small real C library (gcc -g) in the bindistro-hello recipe, so the ABI gate
has real ELF and DWARF to compare. Split like OE does it: the stripped library with a
.gnu_debuglink, its debug info in `/usr/lib/.debug/` of the -dbg package.

Builds are reproducible (fixed source path, debug prefix map, sha1 build-id) and cached per source.
"""
from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

SONAME = "libhello.so.1"
SRC_DIR = "/usr/src/debug/bindistro-hello"

BASE = """\
#include <stdio.h>
#include <string.h>

struct hello_stats { int calls; int last_len; };
static struct hello_stats stats;

int hello_greet(const char *name, char *out, int len)
{
    stats.calls++;
    stats.last_len = snprintf(out, len, "hello, %s", name);
    return stats.last_len;
}

int hello_count(void)
{
    return stats.calls;
}
"""
ADDITION = """
const char *hello_version(void)
{
    return "@VERSION@";
}
"""
# the injected abi-break: hello_greet is gone, hello_count takes and returns other types
BROKEN = """\
#include <stdio.h>

struct hello_stats { long calls; };
static struct hello_stats stats;

long hello_count(int reset)
{
    long n = stats.calls;
    if (reset)
        stats.calls = 0;
    return n;
}
"""


def source(version_step: int, pkgv: str, broken: bool) -> str:
    if broken:
        return BROKEN
    return BASE + (ADDITION.replace("@VERSION@", pkgv) if version_step >= 1 else "")


def available() -> bool:
    return all(shutil.which(t) for t in ("gcc", "objcopy", "strip"))


@functools.lru_cache(maxsize=32)
def build(src: str, real_name: str) -> tuple[bytes, bytes]:
    """(stripped library with debuglink, separate debug info) for x86-64."""
    with tempfile.TemporaryDirectory() as t:
        d = Path(t)
        (d / "hello.c").write_text(src)
        lib = d / real_name
        subprocess.run(["gcc", "-g", "-O2", "-fPIC", "-shared", f"-fdebug-prefix-map={d}={SRC_DIR}",
                        "-ffile-prefix-map=" + f"{d}={SRC_DIR}", f"-Wl,-soname,{SONAME}", "-Wl,--build-id=sha1",
                        "-o", str(lib), str(d / "hello.c")], check=True, capture_output=True, cwd=d)
        dbg = d / f"{real_name}.debug"
        subprocess.run(["objcopy", "--only-keep-debug", str(lib), str(dbg)], check=True, capture_output=True)
        subprocess.run(["strip", "--strip-debug", "--remove-section=.comment", str(lib)], check=True, capture_output=True)
        subprocess.run(["objcopy", f"--add-gnu-debuglink={dbg.name}", str(lib)], check=True, capture_output=True, cwd=d)
        return lib.read_bytes(), dbg.read_bytes()


def digest(src: str) -> str:
    return hashlib.sha256(src.encode()).hexdigest()[:12]
