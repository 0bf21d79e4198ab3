# agentd — the two commands: `make run` and `make test`. Both install what they need first.
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# System packages: the C libraries agentd links (SQLite, libcurl, libsystemd), socat for the
# README's examples and tests, systemd for its tools (systemd-analyze, systemd-socket-activate).
# sqlite3 (the shell) for operators and bench/storage.sh; python3 for bench/crash.py (the crash-consistency
# test runs it) and scripts/api-docs.py (make schema, and the test that docs/API.md is current).
# poppler-utils for pdftotext, which extracts the text of uploaded PDFs (docs/FILES.md, "PDFs").
APT_PACKAGES := libsqlite3-dev libcurl4-openssl-dev libsystemd-dev socat systemd pkg-config sqlite3 python3 poppler-utils
CONFIG ?= debug
ARGS ?=
# Release builds skip Swift's dynamic exclusivity checks: ~14% of a ping's instructions, mostly in
# NIO's event-loop-confined state (BENCHMARKS.md). Passed here, not as unsafeFlags, so the package
# stays usable as a dependency.
BUILD_FLAGS := $(if $(filter release,$(CONFIG)),-Xswiftc -enforce-exclusivity=unchecked,)

.PHONY: deps build run test lint fuzz schema bench clean install install-user
PREFIX ?= /usr/local
# Installed binaries link the Swift runtime statically: no dependency on the toolchain's folder, and
# less memory (idle RSS 28 MB instead of 33 MB, BENCHMARKS.md).
INSTALL_BUILD = swift build -c release --static-swift-stdlib -Xswiftc -enforce-exclusivity=unchecked --scratch-path .build-static
RELEASE_BIN = $$($(INSTALL_BUILD) --show-bin-path)

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

## The daemon and its command-line client, agentctl.
build: deps
	swift build -c $(CONFIG) $(BUILD_FLAGS) --product agentd
	swift build -c $(CONFIG) $(BUILD_FLAGS) --product agentctl

## Runs the daemon in the foreground on its default socket (Ctrl-C stops it). Extra flags: ARGS="--log-level debug".
run: build
	"$$(swift build -c $(CONFIG) $(BUILD_FLAGS) --show-bin-path)/agentd" $(ARGS)

## Checks the formatting (make lint), builds and runs every test, in parallel, then each fuzz target for FUZZ_SECONDS (fuzz/run.sh; 0
## skips them). The live tests block on sockets and processes on threads of their own (the
## .blockingIO trait, Tests/AgentdTests/Support/BlockingIO.swift), never on Swift's cooperative pool,
## which the async tests need; the few that assert timing run alone (.blockingIOAlone). TEST_WIDTH
## caps the tests running at once (each live test runs a daemon; on 2 cores more only adds load):
## Swift Testing's own cap, which SwiftPM passes on (--num-workers is XCTest's, which has no tests here).
## Most route suites run in process (Tests/AgentdTesting); on an idle 2-core machine the test run takes
## ~33 s (before issue 18: ~108 s, one test at a time, every suite on the real binary).
FUZZ_SECONDS ?= 30
TEST_WIDTH ?= 8
test: deps lint
	swift build --build-tests
	swift test --skip-build --parallel --experimental-maximum-parallelization-width $(TEST_WIDTH)
	if [ "$(FUZZ_SECONDS)" != 0 ]; then fuzz/run.sh $(FUZZ_SECONDS); fi

## Checks the formatting (`swift format`, configured by .swift-format) and that no line passes 150
## columns (scripts/lint.sh says which may). `swift format -i -r -p Sources Tests bench fuzz Package.swift` fixes most.
lint:
	scripts/lint.sh

## Runs each fuzz target for FUZZ_SECONDS (default 30; `make fuzz FUZZ_SECONDS=600` for a real session).
fuzz: deps
	fuzz/run.sh $(FUZZ_SECONDS)

## Regenerates what is derived from schema/ and the code (a test fails when any is stale):
## Sources/Storage/Migrations+Generated.swift from the migrations schema/NNNN_name.sql (compiled into
## the binary), then schema/openrpc-vN.json (one per API version `agentd openrpc --list-versions` prints)
## from the method registry, then docs/API.md, the method reference, from those documents (scripts/api-docs.py).
schema: deps
	scripts/embed-migrations.sh
	swift build -c $(CONFIG) $(BUILD_FLAGS) --product agentd
	agentd="$$(swift build -c $(CONFIG) $(BUILD_FLAGS) --show-bin-path)/agentd"; versions="$$("$$agentd" openrpc --list-versions)" && \
	for version in $$versions; do "$$agentd" openrpc --api-version $$version > schema/openrpc-v$$version.json || exit 1; done
	python3 scripts/api-docs.py docs/API.md

## Release build + socket benchmark (see BENCHMARKS.md).
bench: deps
	bench/rpc.sh

## System instance: the release binaries (agentd, agentctl) in $(PREFIX)/bin, the units in /etc/systemd/system, and the
## agentd group whose members may connect. Then: systemctl daemon-reload && systemctl enable --now agentd.socket
install: deps
	$(INSTALL_BUILD) --product agentd
	$(INSTALL_BUILD) --product agentctl
	install -D -m 0755 "$(RELEASE_BIN)/agentd" "$(DESTDIR)$(PREFIX)/bin/agentd"
	install -D -m 0755 "$(RELEASE_BIN)/agentctl" "$(DESTDIR)$(PREFIX)/bin/agentctl"
	install -D -m 0644 systemd/agentd.socket "$(DESTDIR)/etc/systemd/system/agentd.socket"
	install -D -m 0644 systemd/agentd.service "$(DESTDIR)/etc/systemd/system/agentd.service"
	@test -e "$(DESTDIR)/etc/agentd/agentd.toml" || install -D -m 0644 systemd/agentd.toml.example "$(DESTDIR)/etc/agentd/agentd.toml"
	@for key in llm-api-key tavily-api-key; do \
		test -e "$(DESTDIR)/etc/agentd/credentials/$$key" || install -D -m 0600 /dev/null "$(DESTDIR)/etc/agentd/credentials/$$key"; \
	done
	@if [ -z "$(DESTDIR)" ] && ! getent group agentd >/dev/null; then $(SUDO) groupadd --system agentd; fi

## A user's own instance: the binary in ~/.local/bin, the units in ~/.config/systemd/user.
## Then: systemctl --user daemon-reload && systemctl --user enable --now agentd.socket
install-user: deps
	$(INSTALL_BUILD) --product agentd
	$(INSTALL_BUILD) --product agentctl
	install -D -m 0755 "$(RELEASE_BIN)/agentd" "$(HOME)/.local/bin/agentd"
	install -D -m 0755 "$(RELEASE_BIN)/agentctl" "$(HOME)/.local/bin/agentctl"
	install -D -m 0644 systemd/user/agentd.socket "$(HOME)/.config/systemd/user/agentd.socket"
	install -D -m 0644 systemd/user/agentd.service "$(HOME)/.config/systemd/user/agentd.service"

clean:
	rm -rf .build .build-release .build-fuzz
