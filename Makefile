# The README's two commands: `make demo` and `make test`. Each does its own set-up on a
# fresh Debian machine (as root): system packages, a .venv, the package built from source.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# CMake build tree reused between installs, so a rebuild only recompiles what changed.
BUILD_DIR := build/py

.PHONY: demo test install sysdeps venv bench clean c-install jvm-deps test-jvm swift-deps test-swift \
	bench-deps bench-smoke abi-baseline fuzz isal-current

demo: install
	$(VENV)/bin/betanet demo

test: install
	$(PY) -m pytest

# System packages: only what is missing, only through apt-get, only as root.
sysdeps:
	@missing=""; \
	pkg-config --exists libsodium 2>/dev/null || missing="$$missing libsodium-dev pkg-config"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing build-essential"; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	command -v abidiff >/dev/null 2>&1 || missing="$$missing abigail-tools"; \
	$(PYTHON) -c "import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" 2>/dev/null || missing="$$missing python3-dev"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || missing="$$missing iproute2"; \
	command -v dbus-daemon >/dev/null 2>&1 || missing="$$missing dbus"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing system packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "please install:$$missing" >&2; exit 1; \
	  fi; \
	fi

$(PY): | sysdeps
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "scikit-build-core>=0.10" "cython>=3.1" "numpy>=1.26" cmake ninja

venv: sysdeps $(PY)

install: venv
	$(PIP) install -q --no-build-isolation -Cbuild-dir=$(BUILD_DIR) ".[test]"

# Optional: the peers the benchmarks compare against. System packages through apt as root
# (ISA-L for fec_bench; OpenSSL headers for petlib, which sphinxmix builds on); without them
# the benchmarks still run and name the missing peer. sphinxmix and creedsolo build from
# source without build isolation, so wheel and setuptools go into the venv first.
bench-deps: install
	@missing=""; \
	[ -e /usr/include/isa-l.h ] || missing="$$missing libisal-dev"; \
	[ -e /usr/include/openssl/ssl.h ] || missing="$$missing libssl-dev"; \
	( $(APT_MISSING) ) || echo "continuing without:$$missing (the benchmarks say which peer is missing)"
	$(PIP) install -q wheel setuptools
	$(PIP) install -q --no-build-isolation -Cbuild-dir=$(BUILD_DIR) ".[bench]"
	-@$(PY) -c "import creedsolo" 2>/dev/null || $(PIP) install -q --no-binary reedsolo --force-reinstall \
	  --no-deps --no-build-isolation --config-settings=--build-option=--cythonize reedsolo  # compiled creedsolo for fec_bench

bench: bench-deps
	for b in bench/*_bench.py; do $(PY) $$b || exit 1; done

# Every benchmark with tiny sizes (seconds, not minutes): CI runs it so a benchmark that
# breaks fails there. The numbers are meaningless.
bench-smoke: bench-deps
	for b in bench/*_bench.py; do $(PY) $$b --smoke || exit 1; done

# Opt-in toolchains for the Kotlin and Swift host examples (ffi-examples/), too large for
# sysdeps: Debian's kotlin is ~340 MB installed (a JRE ~190 MB more where none is present),
# clang ~110 MB. Without them tests/test_examples_{jvm,swift}.py skip.
APT_MISSING = if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing system packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "please install:$$missing" >&2; exit 1; fi; \
	fi

jvm-deps:
	@missing=""; \
	command -v java >/dev/null 2>&1 || missing="$$missing default-jre-headless"; \
	[ -e /usr/share/java/jna.jar ] || missing="$$missing libjna-java"; \
	command -v kotlinc >/dev/null 2>&1 || missing="$$missing kotlin"; \
	$(APT_MISSING)

test-jvm: install jvm-deps
	$(PY) -m pytest tests/test_examples_jvm.py

swift-deps:
	@missing=""; command -v clang >/dev/null 2>&1 || missing="$$missing clang"; $(APT_MISSING)

test-swift: install swift-deps
	$(PY) -m pytest tests/test_examples_swift.py

# Standalone C build and install (no Python packaging), into build/c-prefix.
c-install: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cmake -S . -B build/c -G Ninja -DPython_EXECUTABLE=$(CURDIR)/$(PY)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cmake --build build/c
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cmake --install build/c --prefix build/c-prefix

clean:
	rm -rf build $(VENV) .pytest_cache .hypothesis

# Rewrite the committed ABI baseline (abi/) from the current sources: only for a deliberate
# ABI change (docs/abi.md). tests/test_abi.py compares every build against it.
abi-baseline: install
	$(PY) tools/abi.py baseline

# ---- cross builds (docs/porting.md) --------------------------------------------------
# Debian's cross compilers, libsodium and the Python headers (the Cython C includes them;
# nothing links Python) from the multiarch archive, and qemu-user to run the results.
.PHONY: cross-deps cross test-cross
CROSS_TRIPLETS := aarch64-linux-gnu arm-linux-gnueabihf
cross-deps:
	@missing=""; \
	command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing="$$missing gcc-aarch64-linux-gnu"; \
	command -v arm-linux-gnueabihf-gcc >/dev/null 2>&1 || missing="$$missing gcc-arm-linux-gnueabihf"; \
	command -v qemu-aarch64 >/dev/null 2>&1 && command -v qemu-arm >/dev/null 2>&1 || missing="$$missing qemu-user"; \
	for a in arm64:aarch64-linux-gnu armhf:arm-linux-gnueabihf; do \
	  [ -e /usr/lib/$${a#*:}/pkgconfig/libsodium.pc ] || missing="$$missing libsodium-dev:$${a%%:*}"; \
	  [ -e /usr/include/$${a#*:}/python3.11/pyconfig.h ] || missing="$$missing libpython3.11-dev:$${a%%:*}"; \
	done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ]; then \
	  dpkg --add-architecture arm64 && dpkg --add-architecture armhf; \
	  missing="--no-install-recommends$$missing"; \
	fi; \
	$(APT_MISSING)

cross: venv cross-deps
	for t in $(CROSS_TRIPLETS); do \
	  PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cmake -S . -B build/cross-$$t -G Ninja \
	    -DCMAKE_TOOLCHAIN_FILE=cmake/$$t.cmake -DPython_EXECUTABLE=$(CURDIR)/$(PY) && \
	  PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cmake --build build/cross-$$t || exit 1; \
	done

test-cross: install cross-deps
	$(PY) tools/test_cross.py $(CROSS_TRIPLETS)

# Bytes per capability (text/data/bss) of the firmware build for x86-64, aarch64 and armhf,
# written into docs/architecture.md (tools/size_report.py).
.PHONY: size-report
size-report: venv cross-deps
	$(PY) tools/size_report.py
# Coverage-guided fuzzing campaign (clang's libFuzzer, ASan + UBSan), FUZZ_MINUTES per harness,
# niced; corpora merged and minimised back into tests/fuzz/corpus/<harness>/, every run added
# to the ledger tests/fuzz/campaigns.json (docs/fuzzing.md). FUZZ_ONLY=htx_parser,noise_read
# picks harnesses; FUZZ_UNTIL=HH:MM (UTC) runs rounds of FUZZ_MINUTES until then, the harness
# furthest from 10 M executions first; FUZZ_JOBS=2 runs two fuzzer processes of the harness at
# once (one merge after them). `make fuzz-table` prints the cumulative totals.
FUZZ_MINUTES ?= 1
FUZZ_ONLY ?=
FUZZ_UNTIL ?=
FUZZ_JOBS ?= 1
fuzz: install swift-deps
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) tools/fuzz.py campaign --minutes $(FUZZ_MINUTES) --only "$(FUZZ_ONLY)" $(if $(FUZZ_UNTIL),--until $(FUZZ_UNTIL)) --jobs $(FUZZ_JOBS)
.PHONY: fuzz-table
fuzz-table: venv
	$(PY) tools/fuzz.py table

# Opt-in: the current ISA-L (>= 2.31, with its GFNI erasure-code kernels) as a second peer for
# bench/fec_bench.py, built into build/isal-current from a source tree: ISAL_SRC=/path/to/isa-l,
# or by default the copy vendored in python-isal's PyPI sdist (ISA-L 2.32.1 in isal 1.9.1).
# Needs nasm (apt). Debian's libisal 2.30 stays the default peer.
ISAL_SDIST ?= isal==1.9.1
ISAL_SRC ?=
isal-current: venv
	@missing=""; command -v nasm >/dev/null 2>&1 || missing="$$missing nasm"; $(APT_MISSING)
	rm -rf build/isal-current && mkdir -p build/isal-current/lib
	set -e; src="$(ISAL_SRC)"; \
	if [ -z "$$src" ]; then \
	  $(PIP) download -q --no-deps --no-binary :all: -d build/isal-current/sdist "$(ISAL_SDIST)"; \
	  tar -xzf build/isal-current/sdist/*.tar.gz -C build/isal-current/sdist; \
	  src=$$(ls -d build/isal-current/sdist/*/src/isal/isa-l); \
	fi; \
	[ -f "$$src/erasure_code/ec_base.c" ] || { echo "no ISA-L erasure_code sources in $$src" >&2; exit 1; }; \
	cp -r "$$src" build/isal-current/src; \
	$(MAKE) -C build/isal-current/src -f Makefile.unx lib >/dev/null; \
	cp build/isal-current/src/bin/isa-l.a build/isal-current/lib/libisal.a; \
	sed -n '/AC_INIT/,/)/p' build/isal-current/src/configure.ac | grep -o '[0-9][0-9.]*[0-9]' | head -1 > build/isal-current/VERSION; \
	echo "ISA-L $$(cat build/isal-current/VERSION) in build/isal-current (bench/fec_bench.py uses it)"

# Opt-in (chromium is large, so not a dependency of `make test`): capture the raw ClientHello
# real headless Chromium sends for a page load and for a page's WebSocket into
# tests/vectors/chrome<major>/ (tools/chrome_capture.py; docs/stealth.md, "Fingerprints").
.PHONY: chrome-capture
chrome-capture: install
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; $(APT_MISSING)
	$(PY) tools/chrome_capture.py --out tests/vectors/chrome$$(chromium --version 2>/dev/null | grep -o '[0-9][0-9]*\.' | head -1 | tr -d .)
