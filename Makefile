# routetrace — plain GNU make.  `make` builds build/routetrace; `make test` is the
# whole suite (what the README and .ci/run give); `make demo` runs the demo.
# make SANITIZE=address,undefined BUILD=build/asan   -> sanitized tree beside the normal one

CC       ?= cc
CFLAGS   ?= -O2 -g
BUILD    ?= build
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wvla -Wundef -Wpointer-arith -Wno-format-nonliteral
PKGS     := libevent jansson libmariadb libpcap
CPPFLAGS += -I. -D_GNU_SOURCE $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
STD      := -std=c11
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -levent_extra -lm
ifdef SANITIZE
CFLAGS   += -O1 -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

# Debian packages the build, the tests and the demo need (installed by `make deps`).
DEB_PKGS := build-essential pkg-config libevent-dev libjansson-dev libmariadb-dev libpcap-dev \
            libcmocka-dev mariadb-server mariadb-client python3 python3-pymysql python3-nacl tcpdump \
            clang libclang-rt-14-dev curl procps openssl
BENCH_PKGS := sysbench haproxy tshark percona-toolkit valgrind linux-perf

LIB_SRCS  := $(sort $(wildcard router/*.c) $(filter-out proxy/main.c,$(wildcard proxy/*.c)) \
             $(wildcard capture/*.c))
OBJ       := $(BUILD)/obj
LIB_OBJS  := $(LIB_SRCS:%.c=$(OBJ)/%.o)
MAIN_OBJ  := $(OBJ)/proxy/main.o
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRCS := $(sort $(wildcard tests/integ/*.c) $(wildcard bench/*.c))
TOOL_BINS := $(patsubst %.c,$(BUILD)/%,$(TOOL_SRCS))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 60

# Keep objects that pattern rules make on the way (test and fuzz objects): no rebuild
# of the fuzz library at every `make test`.
.SECONDARY:

.PHONY: all deps bench-deps test check unit integ sanitize tsan demo bench fuzz fuzz-smoke clean lint FORCE

all: $(BUILD)/routetrace $(TOOL_BINS)

$(BUILD)/.flags: FORCE
	@mkdir -p $(@D); echo '$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS)' | cmp -s - $@ || \
	  echo '$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS)' > $@

$(OBJ)/%.o: %.c $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(STD) $(CPPFLAGS) $(CFLAGS) $(WARN) -MMD -MP -c $< -o $@

$(BUILD)/routetrace: $(MAIN_OBJ) $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_%: $(OBJ)/tests/unit/test_%.o $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/integ/%: $(OBJ)/tests/integ/%.o $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(OBJ)/bench/%.o $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)

# --- packages --------------------------------------------------------------
deps:
	@scripts/apt-need $(DEB_PKGS)

bench-deps:
	@scripts/apt-need $(DEB_PKGS) $(BENCH_PKGS)

# --- tests -------------------------------------------------------------------
# `make test`: packages, then the suite on a normal build, then the unit tests and
# the integration suite again under ASan/UBSan, and the unit tests under TSan (the
# lanes' shared parts: metrics, trace sink, job queues), each in a build tree of its own.
test: deps
	@rm -f build/.results
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory sanitize
	@$(MAKE) --no-print-directory tsan
	@$(MAKE) --no-print-directory fuzz-smoke
	@scripts/test-summary

check: all $(UNIT_BINS)
	@scripts/run-unit $(UNIT_BINS)
	@BUILD=$(BUILD) tests/integ/run.sh

unit: all $(UNIT_BINS)
	@scripts/run-unit $(UNIT_BINS)

integ: all
	@BUILD=$(BUILD) tests/integ/run.sh

sanitize:
	@$(MAKE) --no-print-directory CC=clang SANITIZE=address,undefined BUILD=build/asan check

tsan:
	@$(MAKE) --no-print-directory CC=clang SANITIZE=thread BUILD=build/tsan unit

# libFuzzer (clang): the library is compiled once with coverage + ASan/UBSan, then each
# target links against it; `make fuzz` runs every target on its corpus for FUZZ_SECONDS.
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
FUZZ_CFLAGS := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJS := $(LIB_SRCS:%.c=build/fuzz/obj/%.o)
build/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	clang $(STD) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(WARN) -MMD -MP -c $< -o $@
build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS)
	@mkdir -p $(@D)
	clang $(STD) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(WARN) -MMD -MP -MF $@.d -o $@ $< $(FUZZ_OBJS) $(LDLIBS)
# header changes rebuild the fuzz objects and targets too
-include $(shell find build/fuzz -name '*.d' 2>/dev/null)

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p tests/fuzz/corpus/$$n build/fuzz/new-$$n; \
	  echo "fuzz $$n (at most $(FUZZ_SECONDS)s $(FUZZ_FLAGS))"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) $(FUZZ_FLAGS) -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/$$n- build/fuzz/new-$$n tests/fuzz/corpus/$$n \
	    2>build/fuzz/$$n.log || { tail -40 build/fuzz/$$n.log; exit 1; }; done

# A short fuzz run inside `make test`: each target replays its corpus, then runs a fixed number
# of mutations from seed 1.  libFuzzer is not bit-for-bit reproducible even so (the same
# seed adds a few % more or fewer units from run to run), so this is a smoke test, and the
# defence is to explore before committing: `make fuzz FUZZ_SECONDS=600`, then add what it
# finds to the corpus.  What can be made the same on every machine is: the corpus is given
# as a sorted file list (-seed_inputs), not a directory, whose readdir order differs between
# file systems and steers the run; and new units go to a directory emptied first, so a
# developer's earlier runs do not steer it either (CI once found, from a clean clone, what
# the developer's runs, fed by their accumulated units, did not).
FUZZ_TIMEOUT ?= 25
FUZZ_SMOKE_RUNS ?= 40000
fuzz-smoke: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); d=build/fuzz/smoke-$$n; \
	  rm -rf $$d; mkdir -p $$d; \
	  find tests/fuzz/corpus/$$n -type f | LC_ALL=C sort | paste -sd, - > $$d.list; \
	  echo "fuzz-smoke $$n ($(FUZZ_SMOKE_RUNS) runs from seed 1, at most 120s)"; \
	  $$f -seed=1 -runs=$(FUZZ_SMOKE_RUNS) -max_total_time=120 -timeout=$(FUZZ_TIMEOUT) \
	    -seed_inputs=@$$d.list -print_final_stats=1 -artifact_prefix=build/fuzz/$$n- $$d \
	    2>build/fuzz/$$n.log || { tail -40 build/fuzz/$$n.log; exit 1; }; done

# --- demo and bench ------------------------------------------------------------
demo: deps all
	@BUILD=$(BUILD) scripts/demo.sh

bench: bench-deps all
	@BUILD=$(BUILD) bench/run.sh

lint:
	@scripts/lint

clean:
	rm -rf build
