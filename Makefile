# fanout -- one flat Makefile.
#
#   make            build/fanout
#   make unit       C unit tests (build/test_*)
#   make test       everything: plain, ASan+UBSan and TSan builds, then the whole suite
#   make run        the service on its embedded default
#   make bench      the benchmark (bench/); make bench-tools builds its Go peer and probes
#   make fuzz       each libFuzzer target for a bounded time
#   make format     clang-format in place; make format-check fails on a diff
#
# Variants build into their own folder: make BUILD=build/asan SAN=asan

BUILD ?= build
SAN   ?=
CC    ?= cc
PKGS  := libmicrohttpd libcurl libcjson

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla \
        -Wpointer-arith -Wundef -Wcast-qual -Wwrite-strings -Wno-unused-parameter -Werror
OPT  ?= -O2
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) -Iinclude -MMD -MP \
              $(shell pkg-config --cflags $(PKGS)) $(CFLAGS)
LIBS := $(shell pkg-config --libs $(PKGS)) -lpthread

ifeq ($(SAN),asan)
  CFLAGS_ALL += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDSAN := -fsanitize=address,undefined
endif
ifeq ($(SAN),tsan)
  CFLAGS_ALL += -fsanitize=thread -fno-omit-frame-pointer
  LDSAN := -fsanitize=thread
endif

SRCS      := $(wildcard service/*.c)
LIB_OBJS  := $(patsubst service/%.c,$(BUILD)/obj/%.o,$(filter-out service/main.c,$(SRCS)))
MAIN_OBJ  := $(BUILD)/obj/main.o
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/%,$(UNIT_SRCS))

.PHONY: all unit test run bench bench-tools fuzz format format-check clean variants
all: $(BUILD)/fanout

$(BUILD)/fanout: $(MAIN_OBJ) $(LIB_OBJS)
	$(CC) $(LDSAN) -o $@ $^ $(LIBS)

$(BUILD)/obj/%.o: service/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/obj/unit/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -c -o $@ $<

$(BUILD)/test_%: $(BUILD)/obj/unit/test_%.o $(LIB_OBJS)
	$(CC) $(LDSAN) -o $@ $^ $(LIBS) -lcmocka

unit: $(UNIT_BINS)

# The three builds the suite runs, each binary and unit tests: plain, ASan+UBSan, TSan.
variants:
	$(MAKE) all unit
	$(MAKE) BUILD=build/asan SAN=asan all unit
	$(MAKE) BUILD=build/tsan SAN=tsan all unit

test: variants
	/usr/bin/python3 -m pytest -q tests

run: all
	$(BUILD)/fanout

# The benchmark's peers: the Go aggregator (standard library only; its build cache lives under
# the build folder, so it builds as any user, root in CI included) and the floor probes.
BENCH_BIN := $(BUILD)/bench
GO_ENV    := GOCACHE=$(abspath $(BENCH_BIN))/gocache GOPATH=$(abspath $(BENCH_BIN))/gopath \
             GOFLAGS= GO111MODULE=on GOTOOLCHAIN=local CGO_ENABLED=0
bench-tools: $(BENCH_BIN)/goagg $(BENCH_BIN)/curl_probe $(BENCH_BIN)/mhd_probe

$(BENCH_BIN)/goagg: bench/peers/go/main.go bench/peers/go/go.mod
	@mkdir -p $(dir $@)
	cd bench/peers/go && $(GO_ENV) go build -trimpath -o $(abspath $@) .

$(BENCH_BIN)/curl_probe: bench/probes/curl_probe.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -o $@ $< $(shell pkg-config --cflags --libs libcurl)

$(BENCH_BIN)/mhd_probe: bench/probes/mhd_probe.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -o $@ $< \
	    $(shell pkg-config --cflags --libs libmicrohttpd) -lpthread

bench: all bench-tools
	bash bench/run.sh

fuzz:
	bash fuzz/run.sh $(FUZZ_SECONDS)

format:
	clang-format -i service/*.c include/*.h tests/unit/*.c

format-check:
	clang-format --dry-run --Werror service/*.c include/*.h tests/unit/*.c

clean:
	rm -rf build

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/obj/unit/*.d)
