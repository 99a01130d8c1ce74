# agentgate: two commands on a fresh machine with Go and Node.js/npm:
#   make synth   install the pinned tools, synthesize every stack offline into cdk.out/ (cdk-nag on)
#   make test    vet, staticcheck, every test (cdk-nag findings fail it)
# make synth CONFIG=path/to/your.json synthesizes your deployment config the same way.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
# The pinned CDK CLI and a supported Node.js (for jsii) come from node_modules.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
# A CDK synth must never reach AWS: no credentials, no lookups.
export AWS_EC2_METADATA_DISABLED := true
export CDK_DISABLE_VERSION_CHECK := true
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

GO       ?= go
PKGS     := ./...
TESTARGS ?=

.PHONY: all setup synth test vet lint fmt-check mosquitto fuzz clean bench bench-agent pr-diff storm

all: synth test

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: node_modules/.stamp
	$(GO) mod download
	@node --version >/dev/null && cdk --version

# CONFIG (left unset): the deployment config to synthesize; default the
# app's, agentgate.example.json. --strict makes any unsuppressed cdk-nag
# finding fail. Not given a global empty default, so targets may default it.
synth: setup
	rm -rf cdk.out
	cdk synth --quiet --strict $(if $(CONFIG),-c config=$(CONFIG))
	@ls cdk.out/*.template.json | sed 's|^|synthesized: |'

# The example modules (examples/*/go.mod) are modules of their own, outside
# ./..., so each is checked from its own directory; staticcheck is this
# module's pinned tool, run there by path.
EXAMPLES := $(patsubst %/go.mod,%,$(wildcard examples/*/go.mod))

fmt-check:
	@out=$$(gofmt -l $$($(GO) list -f '{{.Dir}}' $(PKGS)) $(EXAMPLES)); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)
	@for d in $(EXAMPLES); do echo "go vet ./... in $$d"; (cd $$d && $(GO) vet ./...); done

lint: fmt-check vet
	$(GO) tool staticcheck $(PKGS)
	@sc=$$($(GO) tool -n staticcheck); for d in $(EXAMPLES); do echo "staticcheck ./... in $$d"; (cd $$d && $$sc ./...); done

# The agent's certificate-path tests need Debian's mosquitto: installed here
# when this user can (root or password-less sudo), else make test stops and
# says how. AGENTGATE_SKIP_MOSQUITTO=1 skips those two tests, loudly.
mosquitto:
	@scripts/require-mosquitto.sh

# go test -json through internal/tools/testprogress: one line per package as it ends,
# every test running longer than TESTLONG named while it runs and when it
# ends, failed tests' complete output, skipped tests with their reasons.
TESTLONG ?= 30s
test: setup lint mosquitto
	@echo "go test $(TESTARGS) $(PKGS): a line per package; tests running longer than $(TESTLONG) are named as they run"
	AGENTGATE_REQUIRE_MOSQUITTO=$(if $(filter 1,$(AGENTGATE_SKIP_MOSQUITTO)),,1) \
	  $(GO) test -json -timeout 30m $(TESTARGS) $(PKGS) | $(GO) run ./internal/tools/testprogress -long $(TESTLONG)

# Run each fuzz target for FUZZTIME (default 30s); new findings land in testdata/fuzz/.
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Before the first deploy: read-only checks of what the accounts in CONFIG
# would refuse (Elastic IP quota, IoT endpoint zones, CDK bootstrap incl.
# us-east-1, IoT singletons, hosted zone, IoT endpoints), one line each;
# docs/preflight.md. It uses your own AWS credentials (default SDK chain),
# so it lifts synth's ban on the instance metadata service. Built, not
# `go run`, so its exit status (1 FAIL, 2 could not check) shows as make's
# "Error 1/2".
.PHONY: preflight
preflight: CONFIG ?= agentgate.example.json
preflight:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(GO) build -o "$$tmp/agentgate-preflight" ./cmd/agentgate-preflight; \
	env -u AWS_EC2_METADATA_DISABLED "$$tmp/agentgate-preflight" -config "$(CONFIG)"

# The capacity and cost report of CONFIG (default agentgate.example.json),
# offline: agents each fleet holds, the deploy waves and drain derived from
# the reconnect budget, reconnect storms against it, monthly cost at list
# prices (docs/capacity.md). CAPACITYARGS e.g. -agents 5000,50000
# -messages-per-hour 12.
.PHONY: capacity
capacity: CONFIG ?= agentgate.example.json
capacity:
	@$(GO) run ./cmd/agentgate-capacity -config "$(CONFIG)" $(CAPACITYARGS)

# Pull-request diff: synthesize BASE and the working tree offline, cdk diff
# every stack, write OUT (Markdown); fails on destructive changes to
# stateful resources (docs/pull-requests.md).
BASE ?=
OUT  ?= pr-diff.md
pr-diff: setup
	@if [ -z "$(BASE)" ]; then echo "usage: make pr-diff BASE=<git rev> [OUT=pr-diff.md]"; exit 2; fi
	scripts/pr-diff.sh "$(BASE)" "$(OUT)"

# The relay next to HAProxy and nginx, one table (docs/benchmarks.md); not
# part of make test. BENCH_QUICK=1 for a reduced run under a minute.
bench:
	scripts/bench.sh $(BENCHARGS)

# The agent's headline (docs/agent.md): bytes through the relay of an idle
# agent against one polling once a second, counted by the relay; not part
# of make test (it mostly waits for keep-alive timers, ~90 s).
# HEADLINEARGS=-headline.pings=2 -headline.polls=10 for a quick run.
HEADLINEARGS ?= -headline.pings=20 -headline.polls=200
bench-agent:
	AGENTGATE_HEADLINE=1 $(GO) test ./agent/ -run '^TestHeadlineIdleAgentVersusPolling$$' -count=1 -v -args $(HEADLINEARGS)

clean:
	rm -rf cdk.out

# The reconnect storm at full size (docs/benchmarks.md, "Reconnect storm"):
# STORM_AGENTS real agents over STORM_PROCESSES client processes through two
# real relays, one SIGTERM run (relay drain STORM_DRAIN) and one SIGKILL run
# (STORM_SIGNAL=SIGKILL runs one); the agents spread their first reconnect
# over STORM_SPREAD (empty: what the budget needs for half the fleet,
# storm.DefaultSpread); prints the peak rate of connection attempts the agents
# offered and the peak rates at the stand-ins against AWS IoT Core's account
# defaults, a per-second timeline from the signal to recovery, recovery time
# and lost QoS 1 messages; STORM_TIMELINE=file.csv also writes the timeline
# per 100 ms (file-SIGTERM.csv, file-SIGKILL.csv).
# TestQuickStorm runs a small one in make test.
STORM_AGENTS    ?= 5000
STORM_PROCESSES ?= 4
STORM_DRAIN     ?= 11s
STORM_RATE      ?= 250
STORM_SPREAD    ?=
STORM_SIGNAL    ?=
STORM_TIMELINE  ?=
storm:
	AGENTGATE_STORM_AGENTS=$(STORM_AGENTS) AGENTGATE_STORM_PROCESSES=$(STORM_PROCESSES) \
	  AGENTGATE_STORM_DRAIN=$(STORM_DRAIN) AGENTGATE_STORM_RATE=$(STORM_RATE) \
	  AGENTGATE_STORM_SPREAD=$(STORM_SPREAD) AGENTGATE_STORM_SIGNAL=$(STORM_SIGNAL) \
	  AGENTGATE_STORM_TIMELINE=$(STORM_TIMELINE) \
	  $(GO) test -count=1 -v -timeout 90m -run '^TestStorm$$' ./internal/testkit/storm/
