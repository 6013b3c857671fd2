# hyades: one non-recursive Makefile for both programs, the tests and the tools.
#
#   make            build build/hyades-manager and build/hyades-worker
#   make run        install missing dependencies, build, render mandelbrot.png
#   make test       install missing dependencies, build, run the whole suite
#   make asan       the suite under AddressSanitizer + UBSan, failing on reports
#   make bench      throughput benchmarks, as ratios against a same-run baseline
#   make docker-test, swarm-test, slurm-test, deploy-check   the deployment recipes
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean

SHELL   := /bin/bash
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
BUILD   ?= build
CC      ?= cc
PKGS    := libczmq libzmq libpng libgif primesieve zlib libmicrohttpd
TEST_PKGS := criterion jansson

# Missing libraries are installed once, before anything is compiled.
DEPS_OK := $(shell pkg-config --exists $(PKGS) $(TEST_PKGS) 2>/dev/null && echo yes)
ifneq ($(DEPS_OK),yes)
ifeq ($(filter clean,$(MAKECMDGOALS)),)
$(info hyades: build dependencies missing, running deploy/install-deps.sh)
DEPS_RC := $(shell sh deploy/install-deps.sh >&2; echo $$?)
ifneq ($(DEPS_RC),0)
$(error deploy/install-deps.sh failed; install the packages it lists and retry)
endif
endif
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
# The dashboard loads libmicrohttpd only when asked for (dlopen), and the
# sieve primesieve, by these names: nothing links them, or every start
# would load them.
PKG_LIBS   := $(shell pkg-config --libs $(filter-out libmicrohttpd primesieve,$(PKGS)))
soname = $(shell objdump -p $$(pkg-config --variable=libdir $(1))/$(2).so 2>/dev/null | sed -n 's/^ *SONAME *//p')
MHD_SONAME := $(call soname,libmicrohttpd,libmicrohttpd)
PRIMESIEVE_SONAME := $(call soname,primesieve,libprimesieve)
TEST_CFLAGS := $(shell pkg-config --cflags $(TEST_PKGS))
TEST_LIBS   := $(shell pkg-config --libs $(TEST_PKGS))

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS  ?= -O2 -g
SANITIZE ?=
ifneq ($(SANITIZE),)
CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
# Kernels must not contract a*b+c into an FMA: scalar and SIMD paths give the same bits.
ALL_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -ffp-contract=off $(WARN) $(CFLAGS) -I. $(PKG_CFLAGS) -MMD -MP \
              -DMHD_SONAME='"$(MHD_SONAME)"' -DPRIMESIEVE_SONAME='"$(PRIMESIEVE_SONAME)"'
LIBS    := $(PKG_LIBS) -lpthread -lm

COMMON_SRC  := $(wildcard common/*.c)
JOBS_SRC    := $(wildcard jobs/*.c)
MANAGER_SRC := $(wildcard manager/*.c)
WORKER_SRC  := $(wildcard worker/*.c)
TEST_SRC    := $(wildcard tests/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJ  := $(call obj,$(COMMON_SRC))
JOBS_OBJ    := $(call obj,$(JOBS_SRC))
# The dashboard's page, embedded as a byte array generated from the HTML.
PAGE_OBJ    := $(BUILD)/obj/manager/dashboard_page.o
MANAGER_OBJ := $(call obj,$(MANAGER_SRC)) $(PAGE_OBJ)
WORKER_OBJ  := $(call obj,$(WORKER_SRC))
TEST_OBJ    := $(call obj,$(TEST_SRC))
# Tests link every module of both programs but their main().
MODULE_OBJ  := $(filter-out %/main.o,$(MANAGER_OBJ) $(WORKER_OBJ))

MANAGER := $(BUILD)/hyades-manager
WORKER  := $(BUILD)/hyades-worker
TESTS   := $(BUILD)/hyades-tests
BENCH   := $(BUILD)/hyades-bench
BASELINE := $(BUILD)/hyades-baseline
SWARM   := $(BUILD)/hyades-swarm

.PHONY: all run test asan bench fuzz chaos docker-test swarm-test slurm-test deploy-check install clean
all: $(MANAGER) $(WORKER)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/gen/dashboard_page.c: manager/dashboard.html
	@mkdir -p $(dir $@)
	{ echo '#include <stddef.h>'; echo 'const unsigned char dashboard_page[] = {'; \
	  od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; echo 'const size_t dashboard_page_len = sizeof dashboard_page;'; } > $@

$(PAGE_OBJ): $(BUILD)/gen/dashboard_page.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -c $< -o $@

$(MANAGER): $(MANAGER_OBJ) $(JOBS_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS)

$(WORKER): $(WORKER_OBJ) $(JOBS_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS)

$(TESTS): $(TEST_OBJ) $(MODULE_OBJ) $(JOBS_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS) $(TEST_LIBS)

$(SWARM): $(BUILD)/obj/tests/bench/swarm.o $(COMMON_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS)

$(BENCH): $(BUILD)/obj/tests/bench/bench.o $(BUILD)/obj/tests/bench/allcores.o $(BUILD)/obj/tests/helpers.o \
          $(JOBS_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS) $(TEST_LIBS)

# The bench's single-machine program as a process: the kernel and the PNG
# writer, linked to nothing else (no ZeroMQ).
BASELINE_COMMON := $(addprefix $(BUILD)/obj/common/,image.o log.o options.o outfile.o reorder.o)
$(BASELINE): $(BUILD)/obj/tests/bench/baseline.o $(BUILD)/obj/tests/bench/allcores.o $(JOBS_OBJ) $(BASELINE_COMMON)
	$(CC) $(LDFLAGS) $^ -o $@ $(shell pkg-config --libs libpng libgif zlib) -lpthread -lm

# The default classroom plot on a one-machine cluster.
run: all
	$(MANAGER) mandelbrot -o mandelbrot.png

# End-to-end tests find the programs through HYADES_BUILD.
CRITERION_FLAGS ?= --jobs 2
test: all $(TESTS) $(SWARM)
	@command -v promtool >/dev/null && command -v chromium >/dev/null || sh deploy/install-deps.sh test
	HYADES_BUILD=$(abspath $(BUILD)) $(TESTS) $(CRITERION_FLAGS)

# Criterion passes tests that leak, and czmq only warns about dangling
# sockets: both count as failures here. Reports of the manager and worker
# processes that tests start land in build/asan/reports.
asan:
	@$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=1 all build/asan/hyades-tests build/asan/hyades-swarm
	@rm -rf build/asan/reports && mkdir -p build/asan/reports
	@set -o pipefail; \
	HYADES_BUILD=$(abspath build/asan) \
	ASAN_OPTIONS=detect_leaks=1:log_path=$(abspath build/asan/reports)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:log_path=$(abspath build/asan/reports)/ubsan \
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0 \
	  build/asan/hyades-tests $(CRITERION_FLAGS) 2>&1 | tee build/asan/test.log; rc=$$?; \
	if [ -n "$$(ls build/asan/reports)" ] || grep -E -q 'LeakSanitizer|AddressSanitizer|runtime error:|[Dd]angling' build/asan/test.log; then \
	  cat build/asan/reports/* 2>/dev/null | head -60; \
	  echo "asan: sanitizer or dangling-socket reports (build/asan/reports, build/asan/test.log)"; exit 1; fi; \
	exit $$rc

# Ratios against baselines measured in the same run.
bench: all $(BENCH) $(BASELINE) $(SWARM)
	HYADES_BUILD=$(abspath $(BUILD)) $(BENCH)

# The Docker Swarm stack against a local run in the same image (skipped without a Docker engine).
swarm-test:
	tests/docker/swarm_test.sh; rc=$$?; [ $$rc -eq 77 ] && rc=0; exit $$rc

# hyades.sbatch on a one-node Slurm cluster the test sets up and tears down
# (root; installs Slurm with apt-get if missing; skipped where it cannot).
slurm-test: all
	HYADES_BUILD=$(abspath $(BUILD)) tests/deploy/slurm_test.sh; rc=$$?; [ $$rc -eq 77 ] && rc=0; exit $$rc

# The Kubernetes manifests against the programs' options, offline.
deploy-check: all
	HYADES_BUILD=$(abspath $(BUILD)) tests/deploy/k8s_check.sh

# The docker-compose cluster against a local run (skipped without a Docker engine).
docker-test: all
	HYADES_BUILD=$(abspath $(BUILD)) tests/docker/compose_test.sh; rc=$$?; [ $$rc -eq 77 ] && rc=0; exit $$rc

# Kills, freezes and restarts workers under real jobs for CHAOS_SECONDS (a
# short run of the same is part of make test).
CHAOS_SECONDS ?= 300
chaos: all
	tests/chaos/chaos.sh --seconds $(CHAOS_SECONDS) --build $(abspath $(BUILD))

# libFuzzer on the protocol decoder and the job parameter loaders, and on
# the journal reader, for FUZZ_SECONDS (60) each; seeds in tests/fuzz/corpus
# and tests/fuzz/journal-corpus, findings in build/fuzz.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -std=c11 -D_DEFAULT_SOURCE -ffp-contract=off -g -O1 -fsanitize=fuzzer,address,undefined -I. $(PKG_CFLAGS)
FUZZ_SRC := tests/fuzz/fuzz_protocol.c common/protocol.c common/log.c common/options.c common/image.c \
            common/outfile.c common/reorder.c $(JOBS_SRC)
fuzz:
	@command -v clang >/dev/null || sh deploy/install-deps.sh fuzz
	@mkdir -p build/fuzz/corpus build/fuzz/journal-corpus
	clang $(FUZZ_FLAGS) $(FUZZ_SRC) -o build/fuzz/fuzz_protocol $(LIBS)
	clang $(FUZZ_FLAGS) tests/fuzz/fuzz_journal.c manager/journal.c common/log.c -o build/fuzz/fuzz_journal $(LIBS)
	build/fuzz/fuzz_protocol -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -artifact_prefix=build/fuzz/ \
	  build/fuzz/corpus tests/fuzz/corpus
	build/fuzz/fuzz_journal -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -artifact_prefix=build/fuzz/journal- \
	  build/fuzz/journal-corpus tests/fuzz/journal-corpus

# The programs, the worker's systemd unit (pointing at BINDIR), an example of
# its settings and the ssh launcher. The manager finds hyades-worker beside itself.
SHAREDIR ?= $(PREFIX)/share/hyades
UNITDIR  ?= $(PREFIX)/lib/systemd/system
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SHAREDIR)
	install -m 755 $(MANAGER) $(WORKER) $(DESTDIR)$(BINDIR)/
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SHAREDIR@|$(SHAREDIR)|g' deploy/systemd/hyades-worker.service \
	  > $(DESTDIR)$(UNITDIR)/hyades-worker.service
	chmod 644 $(DESTDIR)$(UNITDIR)/hyades-worker.service
	install -m 644 deploy/systemd/worker.env $(DESTDIR)$(SHAREDIR)/worker.env.example
	install -m 755 deploy/lan-workers.sh $(DESTDIR)$(SHAREDIR)/lan-workers.sh
	install -m 644 README.md $(DESTDIR)$(SHAREDIR)/README.md

clean:
	rm -rf build

-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/obj/*/*/*.d)
