# SPDX-License-Identifier: Apache-2.0
#
# vantage: one non-recursive Makefile.  Every outside library comes from
# pkg-config; generated code (protobuf-c, embedded SQL) goes to build/.
#
#   make            build everything
#   make deps       install missing Debian packages (apt-get, as root)
#   make demo       aggregator + embedded PostgreSQL + 3 agents + demo target
#   make check      lint + unit + integration + lab + fuzz (10 s per target),
#                   one summary line; ~10 min on 2 cores (tests/run.sh)
#   make lint|unit|integration|lab|fuzz|bench   one layer (fuzz: 60 s per target)
#   make check JOBS=N LAB_JOBS=M   N unit/integration tests at once (default:
#                   the number of cores), M lab scenarios at once (default 3)
#   make format     rewrite the C sources in the layout of .clang-format
#   make lint       banned calls, clang-format --dry-run, cppcheck
#   make SAN=1 ...  build with ASan+UBSan (objects go to build/san)

CC       ?= cc
PKGS      = libevent libzmq libprotobuf-c libpq libcurl yaml-0.1 jansson
TEST_PKGS = cmocka

ifeq ($(SAN),1)
B        := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
B        := build
SANFLAGS :=
endif
GEN      := build/gen

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_LIBS  := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)
VERSION    := $(shell git describe --always --dirty 2>/dev/null || echo 0.1)

WARN     = -Wall -Wextra -Wshadow -Wno-unused-parameter -Wstrict-prototypes
ifeq ($(CI),1)
WARN    += -Werror
endif
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) \
	$(CFLAGS) $(SANFLAGS) -I$(GEN) -Icommon $(DIR_INC) -MMD -MP $(PKG_CFLAGS)
LDFLAGS_ALL = $(SANFLAGS) $(LDFLAGS)

PROTO_C  := $(GEN)/vantage.pb-c.c
PROTO_H  := $(GEN)/vantage.pb-c.h
SQL_C    := $(GEN)/sql_embed.c

COMMON_SRC := $(wildcard common/*.c)
AGENT_SRC  := $(filter-out agent/main.c,$(wildcard agent/*.c))
AGG_SRC    := $(filter-out aggregator/main.c,$(wildcard aggregator/*.c))
CTL_SRC    := $(wildcard ctl/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
# Shims loaded with LD_PRELOAD are shared objects, not programs.
SHIM_SRC   := tests/fakes/skewclock.c
FAKE_SRC   := $(filter-out $(SHIM_SRC),$(wildcard tests/fakes/*.c))

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

COMMON_OBJ := $(call obj,$(COMMON_SRC)) $(B)/obj/gen/vantage.pb-c.o $(B)/obj/gen/version.o
AGENT_OBJ  := $(call obj,$(AGENT_SRC))
AGG_OBJ    := $(call obj,$(AGG_SRC)) $(B)/obj/gen/sql_embed.o

BINS  := $(B)/vantage-agent $(B)/vantage-aggregator $(B)/vantagectl
FAKES := $(patsubst tests/fakes/%.c,$(B)/fakes/%,$(FAKE_SRC)) \
	$(patsubst tests/fakes/%.c,$(B)/fakes/%.so,$(SHIM_SRC))
UNITS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
# The libFuzzer targets link only under clang (make fuzz); compiling them
# here too keeps them in step with the interfaces they call.
FUZZ_OBJ := $(call obj,$(wildcard tests/fuzz/*.c))
# Every C source and header we write: `make format` rewrites them and
# `make lint` checks them (generated code under build/ is not among them).
LINT_DIRS := common agent aggregator ctl tests/unit tests/fakes tests/fuzz
LINT_SRC  := $(sort $(wildcard $(addsuffix /*.c,$(LINT_DIRS)) $(addsuffix /*.h,$(LINT_DIRS))))

.PHONY: all deps demo check unit integration lab fuzz bench lint format install clean tests FORCE
.DEFAULT_GOAL := all

all: $(BINS) $(FAKES)
tests: all $(UNITS) $(FUZZ_OBJ)

$(PROTO_C) $(PROTO_H): proto/vantage.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) proto/vantage.proto

# Rewritten only when `git describe` changes, so a commit relinks and no more.
VERSION_C := $(GEN)/version.c
$(VERSION_C): FORCE
	@mkdir -p $(GEN)
	@printf '#include "version.h"\nconst char vantage_version[] = "%s";\n' '$(VERSION)' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
FORCE:

$(SQL_C): tools/embed-sql.sh $(sort $(wildcard aggregator/sql/*.sql))
	@mkdir -p $(GEN)
	sh tools/embed-sql.sh $(sort $(wildcard aggregator/sql/*.sql)) > $@.tmp && mv $@.tmp $@

$(B)/obj/gen/%.o: $(GEN)/%.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -Wno-shadow -c -o $@ $<

# Per-directory include paths: an agent source sees common/ and agent/, an
# aggregator source common/ and aggregator/; tests and fuzzers see both.
$(B)/obj/agent/%.o: DIR_INC = -Iagent
$(B)/obj/aggregator/%.o: DIR_INC = -Iaggregator
$(B)/obj/tests/%.o: DIR_INC = -Iagent -Iaggregator
$(B)/obj/gen/sql_embed.o: DIR_INC = -Iaggregator

$(B)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/libcommon.a: $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(B)/libagent.a: $(AGENT_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(B)/libaggregator.a: $(AGG_OBJ)
	@rm -f $@
	ar rcs $@ $^

LIBS_ALL := $(B)/libaggregator.a $(B)/libagent.a $(B)/libcommon.a

$(B)/vantage-agent: $(B)/obj/agent/main.o $(B)/libagent.a $(B)/libcommon.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lm
$(B)/vantage-aggregator: $(B)/obj/aggregator/main.o $(B)/libaggregator.a $(B)/libcommon.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lm
$(B)/vantagectl: $(call obj,$(CTL_SRC)) $(B)/libcommon.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lm
$(B)/fakes/%: $(B)/obj/tests/fakes/%.o $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lm
$(B)/fakes/%.so: tests/fakes/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ $< -ldl
$(B)/tests/%: $(B)/obj/tests/unit/%.o $(LIBS_ALL)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIBS_ALL) $(PKG_LIBS) $(TEST_LIBS) -lm

deps:
	@sh deploy/install-deps.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@sh tests/demo.sh

# Tests side by side: JOBS unit and integration tests, LAB_JOBS lab
# scenarios (they mostly sleep); bench and fuzz one at a time.
JOBS     ?= $(shell nproc 2>/dev/null || echo 1)
LAB_JOBS ?= 3
RUN_TESTS = SAN=$(SAN) B=$(B) bash tests/run.sh -j $(JOBS) -l $(LAB_JOBS)

# check: deps, build, then every test through one runner and one summary line.
check: deps
	@$(MAKE) --no-print-directory tests
	@$(RUN_TESTS) all

unit: tests
	@$(RUN_TESTS) unit
integration: tests
	@$(RUN_TESTS) integration
lab: tests
	@$(RUN_TESTS) lab
fuzz:
	@$(RUN_TESTS) fuzz
bench: all
	@$(RUN_TESTS) bench

# cppcheck reads our sources only, not the system's or build/gen's headers
# (about 3 s); tests/lint/cppcheck.cfg tells it what it needs of those, and
# tests/lint/cppcheck.supp says why each suppressed finding is not a bug.
CPPCHECK_FLAGS = --quiet --error-exitcode=1 --std=c11 \
	--enable=warning,portability,performance,information \
	--library=posix --library=gnu --library=tests/lint/cppcheck.cfg \
	--suppressions-list=tests/lint/cppcheck.supp -I common -I agent -I aggregator

# `make check` runs lint as its test lint/make_lint (tests/lint/).
lint:
	@echo "  LINT    banned calls"
	@! git grep -nE '\b(strcpy|sprintf|strcat|atoi|gets)\(' -- '*.c' '*.h' || \
		{ echo "lint: banned call (STYLE.md rule 14)"; exit 1; }
	@echo "  LINT    clang-format --dry-run ($(words $(LINT_SRC)) files)"
	@clang-format --dry-run --Werror $(LINT_SRC) || \
		{ echo "lint: not in the layout of .clang-format; \"make format\" fixes it"; exit 1; }
	@echo "  LINT    cppcheck"
	@cppcheck $(CPPCHECK_FLAGS) $(filter %.c,$(LINT_SRC))

format:
	clang-format -i $(LINT_SRC)

PREFIX ?= /usr/local
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	for m in docs/*.8; do [ -f "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man8/ || true; done
	for m in docs/*.1; do [ -f "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man1/ || true; done
	for m in docs/*.5; do [ -f "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man5/ || true; done

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
