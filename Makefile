# Hull — top-level build.  One folder per module; each becomes a static library (or a binary),
# so adding a .c file to a module folder is all a module needs to be built.
#
#   make            build hulld, hull-oci, hull-conmon (in build/)
#   make test       every phase of $(TEST_PHASES), each reported with its time, under ASan/UBSan
#                   (build/asan); fails at the end when any phase failed
#   make unit-tests / integration-tests   one phase alone (on $(BUILD); PYTEST_ARGS=... for pytest)
#   make vm-test    tests/integration/test_cgroup_v2.py in a pure cgroup v2 qemu guest (tests/vm/)
#   make vm-checkpoint-test  tests/integration/test_checkpoint.py (CRIU) in the same guest
#   make vm-cgroup-stats-test  tests/unit/test_cgroup_stats (the cgroup usage readers) there too
#   make fuzz       replay each fuzz corpus, then fuzz briefly (FUZZ_SECONDS each); make
#                   fuzz-libfuzzer: the same targets under clang's libFuzzer with the corpus
#   make asan       just the sanitizer build
#   make run        build and run hulld in the foreground with embedded defaults
#   make conformance  the critest v1.37 suite (serial and parallel, hull-oci and runc handlers)
#   make crictl     crictl v1.37.0 into $(HULL_TOOLS)/bin (outside the tree)
#   make install    install binaries (PREFIX=/usr/local) and contrib files
#   make format     clang-format every C file;  make format-check  fails on unformatted files
#   make check-layout  fails on any include or call loop between files or folders (docs/architecture.md)
#   make clean

SHELL := /bin/bash
PREFIX ?= /usr/local
BUILD ?= build
SAN ?=
PYTHON ?= /usr/bin/python3
PYTEST_ARGS ?=

PKGS := grpc libprotobuf-c yajl libcurl libarchive libseccomp libcap openssl libsystemd
CC ?= gcc
WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2
CFLAGS ?= -O2 -g
# `linux` is a predefined macro in GNU modes and CRI messages have fields named linux.
HULL_CFLAGS := -std=gnu11 -Ulinux -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(WARN) -I. -I$(BUILD)/gen \
	-fno-strict-aliasing -fstack-protector-strong $(SAN)
HULL_LDFLAGS := -Wl,--as-needed $(SAN)

# The sanitizers: ASAN_FLAGS for the sanitizer build (build/asan: `make asan`, `make test`),
# SAN_COMMON also for the libFuzzer build; ASAN_ARGS are make's arguments for build/asan.
SAN_COMMON := -fsanitize=address,undefined -fno-omit-frame-pointer
ASAN_FLAGS := $(SAN_COMMON) -fno-sanitize-recover=undefined
ASAN_ARGS = --no-print-directory BUILD=build/asan SAN="$(ASAN_FLAGS)" CFLAGS="-O1 -g"
export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=0:exitcode=66
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS ?= suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0

# What the Python tests and tools need to find a build's binaries ($(call hull_build,DIR)) and
# also the generated CRI module and the integration helpers ($(call test_env,DIR)).
hull_build = HULL_BUILD=$(CURDIR)/$(1)
test_env = $(call hull_build,$(1)) PYTHONPATH=$(CURDIR)/$(1)/gen/py:$(CURDIR)/tests/integration
TEST_ENV = $(call test_env,$(BUILD))

# Every link line: $(call link,OBJECTS AND LIBRARIES,EXTRA FLAGS).
link = @mkdir -p $(dir $@); echo "  LD      $@"; $(CC) $(HULL_LDFLAGS) $(2) -o $@ $(1)

DEPS_STAMP := build/.deps-ok
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lz

all: $(BUILD)/hulld $(BUILD)/hull-oci $(BUILD)/hull-conmon $(BUILD)/hull-pause

# ---- dependencies -----------------------------------------------------------------------
$(DEPS_STAMP): contrib/install-deps.sh
	@mkdir -p build
	@contrib/install-deps.sh --check >/dev/null 2>&1 || contrib/install-deps.sh
	@touch $@

# ---- generated protobuf code ---------------------------------------------------------------
PROTO := proto/runtime/v1/api.proto
GEN_C := $(BUILD)/gen/runtime/v1/api.pb-c.c
GEN_H := $(BUILD)/gen/runtime/v1/api.pb-c.h
GEN_PY := $(BUILD)/gen/py/runtime/v1/api_pb2.py

$(GEN_H): $(GEN_C)
$(GEN_C): $(PROTO) | $(DEPS_STAMP)
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Iproto $(PROTO)

# NRI (nri/): the vendored containerd/nri v0.12.2 api.proto and the ttrpc envelope
NRI_PROTO := proto/nri/api.proto proto/nri/ttrpc.proto
NRI_GEN_C := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(NRI_PROTO))
NRI_GEN_H := $(NRI_GEN_C:.c=.h)
$(NRI_GEN_H): %.h: %.c
$(BUILD)/gen/nri/%.pb-c.c: proto/nri/%.proto | $(DEPS_STAMP)
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Iproto $<

$(GEN_PY): $(PROTO) | $(DEPS_STAMP)
	@mkdir -p $(BUILD)/gen/py
	$(PYTHON) -m grpc_tools.protoc -Iproto --python_out=$(BUILD)/gen/py \
		--grpc_python_out=$(BUILD)/gen/py $(PROTO)

# ---- modules ---------------------------------------------------------------------------------
obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

COMMON_SRC := $(wildcard common/*.c)
IMAGE_SRC := $(wildcard image/*.c)
CNI_SRC := $(wildcard cni/*.c)
STREAM_SRC := $(wildcard stream/*.c)
OCI_LIB_SRC := $(filter-out oci/main.c,$(wildcard oci/*.c))
SERVER_LIB_SRC := $(filter-out server/daemon/main.c,$(wildcard server/*.c server/*/*.c))
NRI_SRC := $(wildcard nri/*.c)
CONMON_SRC := $(wildcard conmon/*.c)
PAUSE_SRC := $(wildcard pause/*.c)

$(BUILD)/libhullcommon.a: $(call obj,$(COMMON_SRC))
$(BUILD)/libhullproto.a: $(BUILD)/obj/gen/api.pb-c.o
$(BUILD)/libhullnri.a: $(call obj,$(NRI_SRC)) $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(NRI_GEN_C))
$(BUILD)/libhullimage.a: $(call obj,$(IMAGE_SRC))
$(BUILD)/libhullcni.a: $(call obj,$(CNI_SRC))
$(BUILD)/libhullstream.a: $(call obj,$(STREAM_SRC))
$(BUILD)/libhulloci.a: $(call obj,$(OCI_LIB_SRC))
$(BUILD)/libhullserver.a: $(call obj,$(SERVER_LIB_SRC))

$(BUILD)/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	@echo "  AR      $@"
	@ar rcs $@ $^

# Link order: dependants first.  hulld uses nothing of oci/ (the runtime is its own binary,
# hull-oci); unit tests and fuzz targets link every library.
HULLD_LIBS := $(BUILD)/libhullserver.a $(BUILD)/libhullnri.a $(BUILD)/libhullstream.a $(BUILD)/libhullimage.a \
	$(BUILD)/libhullcni.a $(BUILD)/libhullproto.a $(BUILD)/libhullcommon.a
LIBS := $(BUILD)/libhullserver.a $(BUILD)/libhullnri.a $(BUILD)/libhullstream.a $(BUILD)/libhullimage.a $(BUILD)/libhullcni.a \
	$(BUILD)/libhulloci.a $(BUILD)/libhullproto.a $(BUILD)/libhullcommon.a

$(BUILD)/hulld: $(BUILD)/obj/server/daemon/main.o $(HULLD_LIBS)
	$(call link,$< $(HULLD_LIBS) $(PKG_LIBS))

# hull-oci runs once per container operation, so its start-up counts: libyajl, libseccomp and
# libcap come from their static archives and only libc is loaded dynamically; libsystemd (for
# the systemd cgroup driver alone) is dlopen'ed on first use (common/sdbus_dl.h).  A static
# libc can not dlopen libsystemd safely (two libcs, two heaps in one process).
OCI_LINK = -Wl,-Bstatic -lyajl_s -lseccomp -lcap -Wl,-Bdynamic -lpthread
$(BUILD)/hull-oci: $(BUILD)/obj/oci/main.o $(BUILD)/libhulloci.a $(BUILD)/libhullcommon.a
	$(call link,$^ $(OCI_LINK))

# The monitor needs only libc: linked statically it stays near the idle-process floor (one runs
# per container).  Sanitizer builds link dynamically (ASan has no static runtime).
CONMON_STATIC = $(if $(SAN),,-static)
$(BUILD)/hull-conmon: $(call obj,$(CONMON_SRC)) $(BUILD)/libhullcommon.a
	$(call link,$^,$(CONMON_STATIC))

# The pod infra process: tiny and static, it only waits for signals.
$(BUILD)/hull-pause: $(PAUSE_SRC)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -O2 -static -o $@ $(PAUSE_SRC)

$(BUILD)/obj/gen/api.pb-c.o: $(GEN_C)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(HULL_CFLAGS) -Wno-shadow $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/obj/gen/nri/%.pb-c.o: $(BUILD)/gen/nri/%.pb-c.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(HULL_CFLAGS) -Wno-shadow $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(call obj,$(NRI_SRC) $(SERVER_LIB_SRC) server/daemon/main.c): $(NRI_GEN_H)

$(BUILD)/obj/%.o: %.c $(GEN_H) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(HULL_CFLAGS) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- tests -----------------------------------------------------------------------------------
# The link line of every test binary: $(call link_test,SOURCES,EXTRA FLAGS).
link_test = $(call link,$(1) $(LIBS) $(PKG_LIBS) $(3),$(HULL_CFLAGS) $(CFLAGS) $(PKG_CFLAGS) $(2))

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

$(BUILD)/tests/%: tests/unit/%.c tests/unit/hull_test.h $(LIBS) $(GEN_H)
	$(call link_test,$<,,-lcmocka)

unit-bins: $(UNIT_BIN)

# Fuzz targets (tests/fuzz/fuzz_*.c, see tests/fuzz/fuzz.h), each with its corpus in
# tests/fuzz/corpus/<target>/ (seeds and every input that ever failed: regression cases).
#   make fuzz            the standalone driver (what `make test` runs): replays each corpus, then
#                        FUZZ_SECONDS of random inputs from a random seed it prints
#   make fuzz-libfuzzer  clang's libFuzzer (build/clang/libfuzzer/), FUZZ_SECONDS per target
#                        with the corpus; failures land in the corpus as crash-<sha1>
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 4
FUZZ_CORPUS := tests/fuzz/corpus
FUZZ_TIMEOUT_MS ?= 5000

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/driver.c tests/fuzz/fuzz.h $(LIBS) $(GEN_H)
	$(call link_test,$< tests/fuzz/driver.c)

fuzz-bins: $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	@set -e; fail=0; for t in $(FUZZ_BIN); do \
		n=$$(basename $$t); n=$${n#fuzz_}; mkdir -p $(FUZZ_CORPUS)/$$n; \
		if ! $$t -t $(FUZZ_SECONDS) -T $(FUZZ_TIMEOUT_MS) --corpus $(FUZZ_CORPUS)/$$n; then \
			fail=1; echo "FAILED: $$t (the input is in $(FUZZ_CORPUS)/$$n/crash-*)"; fi; \
	done; test $$fail -eq 0

LIBFUZZER_BUILD := build/clang
LIBFUZZER_SAN := $(SAN_COMMON)
LIBFUZZER_BIN := $(patsubst %,$(LIBFUZZER_BUILD)/libfuzzer/%,$(notdir $(basename $(FUZZ_SRC))))
fuzz-libfuzzer-bins:
	@command -v clang >/dev/null || { echo "fuzz-libfuzzer needs clang and libclang-rt-14-dev (contrib/install-deps.sh)"; exit 1; }
	$(MAKE) BUILD=$(LIBFUZZER_BUILD) CC=clang SAN="$(LIBFUZZER_SAN) -fsanitize=fuzzer-no-link" \
		CFLAGS="-O1 -g" WARN="$(WARN) -Wno-error=unused-variable -Wno-error=format-nonliteral" \
		$(LIBFUZZER_BIN)

# new coverage goes to a scratch corpus (build/clang/corpus/<target>), the committed corpus is
# read; a failing input is written into the committed corpus as crash-<sha1>
fuzz-libfuzzer: fuzz-libfuzzer-bins
	@set -e; fail=0; for t in $(LIBFUZZER_BIN); do \
		n=$$(basename $$t); n=$${n#fuzz_}; mkdir -p $(FUZZ_CORPUS)/$$n $(LIBFUZZER_BUILD)/corpus/$$n; \
		echo "== libFuzzer $$n for $(FUZZ_SECONDS) s"; \
		if ! $$t -max_total_time=$(FUZZ_SECONDS) -timeout=$$(( ($(FUZZ_TIMEOUT_MS) + 999) / 1000 )) \
			-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_CORPUS)/$$n/ \
			$(LIBFUZZER_BUILD)/corpus/$$n $(FUZZ_CORPUS)/$$n; then \
			fail=1; echo "FAILED: $$t (the input is in $(FUZZ_CORPUS)/$$n/)"; fi; \
	done; test $$fail -eq 0

$(LIBFUZZER_BUILD)/libfuzzer/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(LIBS) $(GEN_H)
	$(call link_test,$<,-fsanitize=fuzzer)

asan:
	$(MAKE) $(ASAN_ARGS) all unit-bins fuzz-bins

# make test: every phase below, in order, on the sanitizer build; each runs whatever the phases
# before it did (tests/run-phases.sh reports each one and fails at the end).  A phase is a make
# target: adding one is adding its name here.
TEST_PHASES := \
	format-check \
	asan \
	check-layout \
	fuzz \
	unit-tests \
	integration-tests \
	conformance \
	kubelet-test \
	vm-test \
	vm-cgroup-stats-test \
	vm-systemd-test

test: $(DEPS_STAMP)
	@PHASE_MAKE='$(MAKE) $(ASAN_ARGS)' tests/run-phases.sh $(TEST_PHASES)

# The real cgroup v2 suite and CRIU: a qemu guest (tests/vm/run.sh: Debian's kernel, pure cgroup2
# with every controller, the host root read-only under a tmpfs overlay) runs test_cgroup_v2.py
# and test_checkpoint.py (CRIU 3.17 cannot dump on the host's 6.18 kernel) in one boot, on the
# plain build (ASan under TCG is too slow).  VM_TIMEOUT bounds boot + suite.
# vm-checkpoint-test runs test_checkpoint.py alone.
VM_TIMEOUT ?= 1500
VM_ARGS ?=
PLAIN_ARGS = --no-print-directory BUILD=build SAN= CFLAGS="-O2 -g"
VM_PYTEST = $(MAKE) $(PLAIN_ARGS) all build/gen/py/runtime/v1/api_pb2.py && \
	tests/vm/run.sh --timeout $(VM_TIMEOUT) $(VM_ARGS) -- env $(call test_env,build) \
		$(PYTHON) -m pytest -p no:cacheprovider -v -rs
vm-test:
	$(VM_PYTEST) tests/integration/test_cgroup_v2.py tests/integration/test_checkpoint.py \
		$(PYTEST_ARGS)

# The cgroup library's usage readers (tests/unit/test_cgroup_stats.c) in the same guest: its
# live test then reads a cgroup with every v2 controller (the host is hybrid).
vm-cgroup-stats-test:
	$(MAKE) $(PLAIN_ARGS) build/tests/test_cgroup_stats && \
		tests/vm/run.sh --timeout $(VM_TIMEOUT) $(VM_ARGS) -- build/tests/test_cgroup_stats
.PHONY: vm-cgroup-stats-test

vm-checkpoint-test:
	$(VM_PYTEST) tests/integration/test_checkpoint.py $(PYTEST_ARGS)

# The systemd cgroup driver in the VM test bed with systemd as PID 1 (tests/vm/run.sh --systemd):
# tests/integration/test_systemd_cgroup.py (on the host it only checks the driver is refused).
VM_RUN ?= tests/vm/run.sh
vm-systemd-test:
	$(MAKE) $(PLAIN_ARGS) all build/gen/py/runtime/v1/api_pb2.py
	$(VM_RUN) --systemd --timeout $(VM_TIMEOUT) $(VM_ARGS) -- env $(call test_env,build) \
		$(PYTHON) -m pytest -p no:cacheprovider -v -rs tests/integration/test_systemd_cgroup.py \
		$(PYTEST_ARGS)

# every C unit test binary, each one whatever the others did
unit-tests: $(UNIT_BIN)
	@passed=0; failed=0; \
	for t in $(UNIT_BIN); do \
		echo "== $$t"; \
		if $$t; then passed=$$((passed+1)); else failed=$$((failed+1)); echo "FAILED: $$t"; fi; \
	done; \
	echo "unit test binaries: $$passed passed, $$failed failed"; \
	test $$failed -eq 0

# the pytest integration tests (-rs: every skip prints its reason in the summary)
integration-tests: all $(GEN_PY)
	$(TEST_ENV) $(PYTHON) -m pytest -p no:cacheprovider -v -rs tests/integration $(PYTEST_ARGS)

# both, the unit binaries first (pytest runs even when a unit binary failed)
run-tests:
	@rc=0; $(MAKE) --no-print-directory unit-tests || rc=1; \
	$(MAKE) --no-print-directory integration-tests || rc=1; exit $$rc

# tests/kubelet: a standalone kubelet v1.36 (built once into $(HULL_TOOLS)/bin by
# tests/tools/build-kubelet.sh) drives a private ASan hulld through static pods (~4 min).
kubelet-test: $(DEPS_STAMP)
	$(MAKE) $(ASAN_ARGS) all
	HULL_TOOLS=$(HULL_TOOLS) tests/tools/build-kubelet.sh
	HULL_TOOLS=$(HULL_TOOLS) tests/tools/ensure-crictl.sh
	$(call hull_build,build/asan) HULL_TOOLS=$(HULL_TOOLS) \
		$(PYTHON) -m pytest -p no:cacheprovider -v tests/kubelet $(PYTEST_ARGS)

bench: all $(UNIT_BIN) $(GEN_PY)
	@command -v containerd >/dev/null || apt-get install -y -qq --no-install-recommends containerd
	$(TEST_ENV) $(PYTHON) tests/bench/run.py $(BENCH)

# ---- CRI conformance (critest) ---------------------------------------------------------------
# critest, crictl and ginkgo from sigs.k8s.io/cri-tools v1.37.0, built once with /usr/local/go into
# $(HULL_TOOLS)/bin (outside the tree; tests/tools/build-cri-tools.sh).  `make conformance` runs
# the whole critest suite against a private hulld once per CONFORMANCE_RUNS entry
# (HANDLER:NODES, NODES>1 = ginkgo -parallel); tests/conformance/run.py.
HULL_TOOLS ?= /var/cache/hull-tools
CONFORMANCE_RUNS ?= hull-oci:1,hull-oci:3,runc:3
export HULL_TOOLS

crictl:
	tests/tools/build-cri-tools.sh crictl

cri-tools:
	tests/tools/build-cri-tools.sh critest crictl ginkgo

# hull-nri-plugin (tests/tools/nri-plugin, on containerd/nri v0.12.2's stub) for test_nri.py
nri-plugin:
	tests/tools/build-nri-plugins.sh
.PHONY: nri-plugin

conformance: cri-tools
	$(MAKE) $(PLAIN_ARGS) all
	$(call hull_build,build) CONFORMANCE_RUNS=$(CONFORMANCE_RUNS) \
		$(PYTHON) tests/conformance/run.py

run: all
	@mkdir -p /etc/cni/net.d
	$(BUILD)/hulld --log-level info --cni-write-default-config $(RUN_ARGS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/hull $(DESTDIR)/etc/cni/net.d
	install -m 0755 $(BUILD)/hulld $(BUILD)/hull-oci $(BUILD)/hull-conmon $(BUILD)/hull-pause \
		$(DESTDIR)$(PREFIX)/bin/
	test -e $(DESTDIR)/etc/hull/hull.json || install -m 0644 contrib/hull.json $(DESTDIR)/etc/hull/hull.json
	install -d $(DESTDIR)/etc/systemd/system
	install -m 0644 contrib/hulld.service $(DESTDIR)/etc/systemd/system/hulld.service

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null; git ls-files -o --exclude-standard '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(C_FILES)
format-check:
	clang-format --dry-run --Werror $(C_FILES)

# include loops from the sources, call loops from the objects of $(BUILD) (tests/check-layout.py)
check-layout: all
	$(PYTHON) tests/check-layout.py --self-test
	$(PYTHON) tests/check-layout.py --objects $(BUILD)/obj

clean:
	rm -rf build

.PHONY: all asan check-layout test run-tests unit-tests integration-tests unit-bins fuzz fuzz-bins fuzz-libfuzzer bench run install format format-check clean kubelet-test vm-test vm-systemd-test crictl cri-tools conformance fuzz-libfuzzer-bins vm-checkpoint-test
.SECONDARY:
