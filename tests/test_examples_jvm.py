"""ffi-examples/kotlin: the Kotlin/JVM host compiled with Debian's kotlinc and run through JNA
against the shared libbetanet the package ships (jna.library.path = its directory, where
JNA finds the versioned libbetanet.so.1 itself).

The toolchain is opt-in (Debian's kotlin package is ~340 MB installed): `make test-jvm`
installs it as root and runs this file; without it these tests skip and say so.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import betanet
from conftest import ROOT, run

EXAMPLE = ROOT / "ffi-examples" / "kotlin" / "BetanetExample.kt"
JNA_JAR = Path(os.environ.get("JNA_JAR", "/usr/share/java/jna.jar"))


def _missing() -> list[str]:
    missing = [tool for tool in ("java", "kotlinc") if not shutil.which(tool)]
    if not JNA_JAR.exists():
        missing.append(str(JNA_JAR))
    return missing


@pytest.fixture(scope="module")
def example_jar(tmp_path_factory) -> Path:
    if missing := _missing():
        pytest.skip(f"JVM toolchain not installed ({', '.join(missing)}): run `make test-jvm` as root")
    jar = tmp_path_factory.mktemp("jvm") / "betanet-example.jar"
    # -include-runtime bundles the Kotlin stdlib, so `java -cp jar:jna.jar` is all it needs
    run(["kotlinc", str(EXAMPLE), "-cp", str(JNA_JAR), "-include-runtime", "-d", str(jar)])
    return jar


def run_example(jar: Path, *jvm_flags: str, **env: str) -> str:
    return run(["java", *jvm_flags, "-cp", f"{jar}{os.pathsep}{JNA_JAR}", "BetanetExampleKt"],
               env=dict(os.environ, **env)).stdout


def test_kotlin_jna_example(example_jar):
    libdir = Path(betanet.get_library()).parent
    out = run_example(example_jar, f"-Djna.library.path={libdir}")
    assert out.startswith(f"libbetanet {betanet.__version__}\n")
    assert "reconstruct: rebuilt shards 1 and 5 from the other 4" in out
    assert "vrf: RFC 9381 example 16 proved and verified; tampered proof rejected " \
           "(authentication failed)" in out
    assert out.rstrip().endswith("through JNA")


def test_kotlin_jna_example_absolute_library_path(example_jar):
    # BETANET_LIBRARY names the library file itself (as a host bundling it would), with no
    # jna.library.path at all
    out = run_example(example_jar, BETANET_LIBRARY=str(betanet.get_library()))
    assert "ok: libbetanet" in out
