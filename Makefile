# kvnet — one plain Makefile.
#
#   make            dist/kvnet: static, stripped, musl
#   make test       unit (gcc + ASan + UBSan), netns, integration, short fuzz; ends "N passed, N failed"
#   make fuzz       libFuzzer targets with clang, longer runs (FUZZ_SECONDS per target)
#   make bench      benchmarks in test/bench/ (ratios against a peer in the same run)
#   make golden-update   rewrite the golden .ok files from the current binary
#   make install DESTDIR=... [PREFIX=/usr/local] [CNIDIR=/opt/cni/bin]
#
# Sources are found by wildcard: a new module is a new .c/.h pair in its directory,
# a new unit test is test/unit/test-NAME.c, a new fuzz target test/fuzz/fuzz-NAME.c.

V ?= 0
Q := $(if $(filter 1,$(V)),,@)
say = $(if $(filter 1,$(V)),,@printf '  %-7s %s\n' $(1) $(2);)

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
CNIDIR ?= /opt/cni/bin
FUZZ_SECONDS ?= 60
FUZZ_SHORT_SECONDS ?= 3

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GITREV := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

WARN := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wvla -Werror \
	-Wno-format-truncation
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -I. $(WARN) -MMD -MP \
	-DKVNET_VERSION='"$(VERSION)"' -DKVNET_GITREV='"$(GITREV)"'

LIB_SRC := $(sort $(wildcard lib/*.c net/*.c conf/*.c kube/*.c ipam/*.c cni/*.c agent/*.c))
CMD_SRC := main.c $(sort $(wildcard cmd/*.c))
COMPAT_SRC := lib/compat/fortify.c
TESTLIB_SRC := $(sort $(wildcard test/lib/*.c))
UNIT_SRC := $(sort $(wildcard test/unit/test-*.c))
NETNS_SRC := $(sort $(wildcard test/netns/test-*.c))
TOOL_SRC := $(sort $(wildcard test/tools/*.c))
FUZZ_SRC := $(sort $(wildcard test/fuzz/fuzz-*.c))

SYSLIB := /usr/lib/x86_64-linux-gnu
STATIC_LIBS := $(SYSLIB)/libinih.a $(SYSLIB)/libbearssl.a $(SYSLIB)/libyaml.a

# --- the product: static musl binary -------------------------------------------------
MUSL_CC ?= musl-gcc
MUSL_INC := build/musl-inc
MUSL_CFLAGS := $(BASE_CFLAGS) -Os -ffunction-sections -fdata-sections -isystem $(MUSL_INC) \
	-fstack-protector-strong
MUSL_LDFLAGS := -static -s -Wl,--gc-sections
MUSL_OBJ := $(patsubst %.c,build/musl/%.o,$(LIB_SRC) $(CMD_SRC) $(COMPAT_SRC))

# --- tests: gcc + ASan + UBSan against glibc --------------------------------------------
SAN_CC ?= gcc
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_CFLAGS := $(BASE_CFLAGS) -O1 -g $(SAN_FLAGS)
SAN_LIBS := -linih -lbearssl -lyaml
SAN_LIB_OBJ := $(patsubst %.c,build/san/%.o,$(LIB_SRC))
SAN_TESTLIB_OBJ := $(patsubst %.c,build/san/%.o,$(TESTLIB_SRC))
UNIT_BIN := $(patsubst test/unit/%.c,build/test/%,$(UNIT_SRC))
NETNS_BIN := $(patsubst test/netns/%.c,build/test/%,$(NETNS_SRC))
TOOL_BIN := $(patsubst test/tools/%.c,build/tools/%,$(TOOL_SRC))

# --- the same unit tests linked like dist/kvnet (musl, static, Debian's archives) ---------
# Only tests whose subject depends on the libc or the static archives (TLS, YAML, sockets);
# test/run runs them as "musl". They prove BearSSL/libyaml work in the shipped build.
MUSL_TESTS := test-conn test-tls test-kubeconfig
MUSL_TEST_BIN := $(patsubst test/unit/%.c,build/musltest/%,\
	$(filter $(patsubst %,test/unit/%.c,$(MUSL_TESTS)),$(UNIT_SRC)))
MUSL_TESTLIB_OBJ := $(patsubst %.c,build/musl/%.o,$(LIB_SRC) $(COMPAT_SRC) $(TESTLIB_SRC))

# --- fuzz: clang + libFuzzer -------------------------------------------------------------
FUZZ_CC ?= clang
FUZZ_CFLAGS := $(filter-out -Werror -Wno-format-truncation,$(BASE_CFLAGS)) -O1 -g \
	-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_LIB_OBJ := $(patsubst %.c,build/fuzzobj/%.o,$(LIB_SRC))
FUZZ_BIN := $(patsubst test/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))

.PHONY: all test unit fuzz fuzz-build bench install clean golden-update demo
all: dist/kvnet

$(MUSL_INC)/.stamp:
	$(Q)mkdir -p $(MUSL_INC)
	$(Q)for p in linux asm-generic bearssl bearssl.h yaml.h ini.h; do \
		ln -sfn /usr/include/$$p $(MUSL_INC)/$$p; done
	$(Q)ln -sfn /usr/include/x86_64-linux-gnu/asm $(MUSL_INC)/asm
	$(Q)touch $@

build/musl/%.o: %.c $(MUSL_INC)/.stamp
	$(call say,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(MUSL_CC) $(MUSL_CFLAGS) -c $< -o $@

dist/kvnet: $(MUSL_OBJ)
	$(call say,LD,$@)
	$(Q)mkdir -p dist
	$(Q)$(MUSL_CC) $(MUSL_LDFLAGS) -o $@.tmp $(MUSL_OBJ) $(STATIC_LIBS)
	$(Q)mv $@.tmp $@

build/san/%.o: %.c
	$(call say,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(SAN_CC) $(SAN_CFLAGS) -c $< -o $@

build/san/libkvnet.a: $(SAN_LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

build/san/libktest.a: $(SAN_TESTLIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

build/test/%: test/unit/%.c build/san/libktest.a build/san/libkvnet.a
	$(call say,TEST,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(SAN_CC) $(SAN_CFLAGS) -o $@ $< build/san/libktest.a build/san/libkvnet.a $(SAN_LIBS)

build/test/%: test/netns/%.c build/san/libktest.a build/san/libkvnet.a
	$(call say,TEST,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(SAN_CC) $(SAN_CFLAGS) -o $@ $< build/san/libktest.a build/san/libkvnet.a $(SAN_LIBS)

.SECONDARY: $(MUSL_TESTLIB_OBJ)
build/musltest/%: test/unit/%.c $(MUSL_TESTLIB_OBJ) $(MUSL_INC)/.stamp
	$(call say,TEST,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(MUSL_CC) $(MUSL_CFLAGS) -static -o $@ $< $(MUSL_TESTLIB_OBJ) $(STATIC_LIBS)

# test/tools/: drivers that integration tests run (not tests themselves)
build/tools/%: test/tools/%.c build/san/libktest.a build/san/libkvnet.a
	$(call say,TOOL,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(SAN_CC) $(SAN_CFLAGS) -o $@ $< build/san/libktest.a build/san/libkvnet.a $(SAN_LIBS)

build/fuzzobj/%.o: %.c
	$(call say,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

build/fuzz/%: test/fuzz/%.c $(FUZZ_LIB_OBJ)
	$(call say,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) $(SAN_LIBS)

unit: $(UNIT_BIN) $(NETNS_BIN) $(MUSL_TEST_BIN) $(TOOL_BIN)

fuzz-build:
	$(Q)./build.sh --deps build fuzz
	$(Q)$(MAKE) --no-print-directory $(FUZZ_BIN)

# make test: everything a user needs to trust a build, bounded well under 20 minutes.
test:
	$(Q)./build.sh --deps build fuzz test
	$(Q)$(MAKE) --no-print-directory dist/kvnet unit $(FUZZ_BIN)
	$(Q)FUZZ_SECONDS=$(FUZZ_SHORT_SECONDS) test/run

fuzz: fuzz-build
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) test/run --only fuzz

bench:
	$(Q)./build.sh --deps build test
	$(Q)$(MAKE) --no-print-directory dist/kvnet unit
	$(Q)test/bench/run

# The main job (README): a 3-node lab on this machine, a VM live-migrated there and back
# under 1 kHz traffic, a timeline and the blackout (test/lab/demo.py; root; cleans up).
demo:
	$(Q)./build.sh --deps build test
	$(Q)$(MAKE) --no-print-directory dist/kvnet
	$(Q)python3 test/lab/demo.py $(DEMO_ARGS)

golden-update: dist/kvnet
	$(Q)test/golden/run --update

install: dist/kvnet
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(CNIDIR)
	install -m 0755 dist/kvnet $(DESTDIR)$(BINDIR)/kvnet
	for r in cni agent ipamctl garp-watch; do ln -sfn kvnet $(DESTDIR)$(BINDIR)/kvnet-$$r; done
	install -m 0755 dist/kvnet $(DESTDIR)$(CNIDIR)/kvnet

clean:
	rm -rf build dist/kvnet

-include $(shell find build -name '*.d' 2>/dev/null)
