import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's")
def test_freed_memory_is_kept_on_glibc_unless_the_system_allocator_is_asked_for():
    code = "import cgt.allocator as a; print(a.keep_freed_memory())"
    for env, took in (({}, "True"), ({"CGT_MALLOC": "system"}, "False")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={"PATH": "", **env}, check=True).stdout.split()
        assert out == [took], env
