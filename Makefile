# moor — top-level build (GNU make).
#
# Every module is a folder with a `module.mk` that names its sources, its
# library, its binaries and its tests; this file holds the rules they share.
# Objects go out of tree under $(BUILD); generated protobuf-c code goes under
# $(BUILD)/gen and is never committed.
#
#   make            build every library and binary
#   make test       install what is missing, build, run every test
#   make run        install what is missing, build, start a local cluster
#   make sanitize   the tests under ASan+UBSan (build/san)
#   make fuzz       libFuzzer targets (clang), build/fuzz
#   make bench      the benchmarks
#   make CC=clang   the same with clang

SHELL := /bin/bash
.DEFAULT_GOAL := all

CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif

SAN ?=
FUZZ ?=
ifneq ($(FUZZ),)
BUILD ?= build/fuzz
else ifneq ($(SAN),)
BUILD ?= build/san
else ifeq ($(notdir $(CC)),clang)
BUILD ?= build/clang
else
BUILD ?= build
endif

PKGS := libuv libprotobuf-c rocksdb libmicrohttpd gnutls jansson libcurl openssl
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)

WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wformat=2 -Wimplicit-fallthrough -Wvla
OPT ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -I. -I$(BUILD)/gen
CFLAGS_ALL = $(OPT) $(WARN) -fno-strict-aliasing -pthread $(CFLAGS)
LDFLAGS_ALL = -pthread $(LDFLAGS)

ifneq ($(SAN),)
CFLAGS_ALL += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DMOOR_SAN=1
LDFLAGS_ALL += -fsanitize=address,undefined
endif
ifneq ($(FUZZ),)
CFLAGS_ALL += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -DMOOR_FUZZ=1
LDFLAGS_ALL += -fsanitize=address,undefined
endif

# Filled in by the module.mk files.
LIBS :=
BINS :=
TESTS :=
BENCHES :=
FUZZERS :=

# $(call objs,srcs) → object paths under $(BUILD)
objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

# $(call module_lib,name,srcs): build/lib/libNAME.a from srcs
define module_lib
LIBS += $(BUILD)/lib/lib$(1).a
$(BUILD)/lib/lib$(1).a: $(call objs,$(2))
	@mkdir -p $$(@D)
	@rm -f $$@
	ar rcs $$@ $$^
endef

# $(call link_bin,out,objs-and-libs,extra-ldlibs)
define link_bin
$(1): $(2)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$(filter %.o,$$^) $$(filter %.a,$$^) $(3)
endef

# $(call fuzz_target,name,objs-and-libs,ldlibs): with FUZZ=1 a libFuzzer
# binary $(BUILD)/fuzz/fuzz_NAME; otherwise a test that replays the stored
# corpus tests/fuzz/corpus/NAME through the same entry point.
define fuzz_target
ifneq ($(FUZZ),)
FUZZERS += $(BUILD)/fuzz/fuzz_$(1)
$(BUILD)/fuzz/fuzz_$(1): $(2)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS_ALL) -fsanitize=fuzzer -o $$@ $$(filter %.o,$$^) $$(filter %.a,$$^) $(3)
else
TESTS += $(BUILD)/tests/fuzz_replay_$(1)
$(BUILD)/tests/fuzz_replay_$(1): $(2) $(BUILD)/obj/tests/fuzz/replay.o
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$(filter %.o,$$^) $$(filter %.a,$$^) $(3)
endif
endef

# Generated protobuf-c code first: every object depends on its headers.
GEN_HDRS :=
include proto/module.mk

$(BUILD)/obj/%.o: %.c | $(GEN_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(OPT) -std=c11 -Wall -Werror -pthread $(filter -fsanitize=%,$(CFLAGS_ALL)) -c $< -o $@

include $(sort $(filter-out proto/module.mk,$(wildcard */module.mk */*/module.mk */*/*/module.mk)))

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

.PHONY: all deps test run sanitize fuzz bench format format-check clean check-deps
all: $(LIBS) $(BINS) $(TESTS) $(BENCHES)

deps:
	@scripts/deps.sh

# `make test` installs, builds and runs every test; tests/run.sh prints one
# closing line "tests: N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory build-tests
	@scripts/check-deps.sh
	@BUILD=$(BUILD) tests/run.sh $(TESTS) $(SCRIPT_TESTS)

.PHONY: build-tests
build-tests: $(LIBS) $(BINS) $(TESTS)

sanitize: deps
	@$(MAKE) --no-print-directory SAN=1 test

fuzz: deps
	@$(MAKE) --no-print-directory FUZZ=1 CC=clang fuzzers
	@echo "fuzz targets in build/fuzz/fuzz/: run one as build/fuzz/fuzz/NAME tests/fuzz/corpus/NAME"

.PHONY: fuzzers
fuzzers: $(FUZZERS)

bench: deps
	@$(MAKE) --no-print-directory $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

run: deps
	@$(MAKE) --no-print-directory $(BINS)
	@scripts/run-cluster.sh $(BUILD)

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRCS)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRCS) && echo "format: ok"

check-deps:
	@scripts/check-deps.sh

clean:
	rm -rf build
