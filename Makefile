# fanout -- one flat Makefile.
#
#   make            build/fanout
#   make unit       C unit tests (build/test_*)
#   make test       everything: plain, ASan+UBSan and TSan builds, then the whole suite
#   make run        the service on its embedded default
#   make bench      the benchmark (bench/); make bench-tools builds its Go peer and probes
#   make bench-probe  build/json_speed, the validator probe for callgrind (bench/probes/)
#   make fuzz       each libFuzzer target for a bounded time
#   make format     clang-format in place; make format-check fails on a diff
#   make man        the man pages (build/man/, roff from man/*.scd with scdoc)
#   make install    binary, man pages, systemd unit, example config under DESTDIR/PREFIX;
#                   make uninstall removes them (same PREFIX, DESTDIR)
#
# Variants build into their own folder: make BUILD=build/asan SAN=asan

BUILD ?= build
SAN   ?=
CC    ?= cc
PKGS  := libmicrohttpd libcurl libcjson libjwt libcrypto

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla \
        -Wpointer-arith -Wundef -Wcast-qual -Wwrite-strings -Wno-unused-parameter -Werror
OPT  ?= -O2
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) -Iinclude -MMD -MP \
              $(shell pkg-config --cflags $(PKGS)) $(CPPFLAGS) $(CFLAGS)
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

.PHONY: all unit test run bench bench-tools bench-probe fuzz format format-check clean variants \
        man install uninstall
all: $(BUILD)/fanout

$(BUILD)/fanout: $(MAIN_OBJ) $(LIB_OBJS)
	$(CC) $(LDSAN) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/obj/%.o: service/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/obj/unit/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -c -o $@ $<

$(BUILD)/test_%: $(BUILD)/obj/unit/test_%.o $(LIB_OBJS)
	$(CC) $(LDSAN) $(LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

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

bench-probe: $(BUILD)/json_speed

$(BUILD)/json_speed: bench/probes/json_speed.c $(BUILD)/obj/json.o $(BUILD)/obj/buf.o
	$(CC) $(CFLAGS_ALL) $(LDSAN) -o $@ $^ $(LIBS)

fuzz:
	bash fuzz/run.sh $(FUZZ_SECONDS)

format:
	clang-format -i service/*.c include/*.h tests/unit/*.c

format-check:
	clang-format --dry-run --Werror service/*.c include/*.h tests/unit/*.c

clean:
	rm -rf build

# ---- install -------------------------------------------------------------------------------
# make install PREFIX=/usr DESTDIR=/tmp/stage puts, under DESTDIR:
#   $(BINDIR)/fanout, $(MANDIR)/man1/fanout.1, $(MANDIR)/man5/fanout.json.5,
#   $(UNITDIR)/fanout.service, $(DOCDIR)/fanout.json (the example config).
# The unit reads $(SYSCONFDIR)/fanout/fanout.json, which make install does not write (the
# Debian package installs it as a conffile).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/fanout
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
INSTALL    ?= install
SCDOC      ?= scdoc

MAN_SRCS := $(wildcard man/*.scd)
MAN_PAGES := $(patsubst man/%.scd,$(BUILD)/man/%,$(MAN_SRCS))

$(BUILD)/man/%: man/%.scd
	@mkdir -p $(dir $@)
	$(SCDOC) <$< >$@.tmp && mv $@.tmp $@

man: $(MAN_PAGES)

# Rebuilt when the directories it names change.
$(BUILD)/fanout.service: systemd/fanout.service.in FORCE
	@mkdir -p $(dir $@)
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $< >$@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

install: $(BUILD)/fanout $(MAN_PAGES) $(BUILD)/fanout.service
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR)
	$(INSTALL) -m 755 $(BUILD)/fanout $(DESTDIR)$(BINDIR)/fanout
	$(INSTALL) -m 644 $(BUILD)/man/fanout.1 $(DESTDIR)$(MANDIR)/man1/fanout.1
	$(INSTALL) -m 644 $(BUILD)/man/fanout.json.5 $(DESTDIR)$(MANDIR)/man5/fanout.json.5
	$(INSTALL) -m 644 $(BUILD)/fanout.service $(DESTDIR)$(UNITDIR)/fanout.service
	$(INSTALL) -m 644 etc/fanout.json $(DESTDIR)$(DOCDIR)/fanout.json

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/fanout $(DESTDIR)$(MANDIR)/man1/fanout.1 \
	    $(DESTDIR)$(MANDIR)/man5/fanout.json.5 $(DESTDIR)$(UNITDIR)/fanout.service \
	    $(DESTDIR)$(DOCDIR)/fanout.json
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null

.PHONY: FORCE
FORCE:

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/obj/unit/*.d)
