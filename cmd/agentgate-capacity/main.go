// Command agentgate-capacity prints the capacity and cost report of a
// deployment configuration: per fleet and in total, the agents it can hold
// (relay tasks × connections, bounded by its iot.data endpoint), the
// rolling-deployment waves and relay drain derived from the reconnect
// budget, the reconnect rates of a full rolling deploy and of the loss of
// one zone against that budget, the time a full-fleet reconnect takes at
// the budget, and the monthly cost at list prices (package capacity's
// table, us-east-1) for the agent counts asked (default 10,000 and
// 100,000), with the message rate stated.
//
// It reads the same file as synth, offline; a configuration synth refuses
// is refused here with the same messages. Exit status 0, or 1 on a bad
// configuration or flag. Usually run as `make capacity [CONFIG=path]`; see
// docs/capacity.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/deploy/capacity"
	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// DefaultConfig is the configuration read when -config is not given (the
// same default as synth).
const DefaultConfig = "agentgate.example.json"

// Bounds of the flags.
const (
	maxAgentCounts = 6
	maxAgents      = 10000000
	// maxMessagesPerHour is IoT Core's 100 publishes per second per
	// connection (capacity.IoTQuotasURL) for an hour.
	maxMessagesPerHour = 100 * 3600
	maxFlowsPerHour    = 3600
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agentgate-capacity", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", DefaultConfig, "deployment configuration `file` (the one synth reads)")
	agents := fs.String("agents", "10000,100000", "agent `counts` to price, comma-separated")
	u := capacity.Usage{}
	fs.Float64Var(&u.MessagesPerAgentHour, "messages-per-hour", 60, "MQTT `messages` each agent exchanges an hour (metered per 5 KB)")
	fs.Float64Var(&u.MessageBytes, "message-bytes", 512, "`bytes` of one message on the wire")
	fs.Float64Var(&u.NewFlowsPerAgentHour, "new-flows-per-hour", 1, "new load-balancer `connections` per agent an hour (credential refreshes, reconnects)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agentgate-capacity: unexpected argument %q\n", fs.Arg(0))
		return 1
	}
	counts, err := parseCounts(*agents)
	if err == nil {
		err = checkUsage(u)
	}
	if err != nil {
		fmt.Fprintf(stderr, "agentgate-capacity: %v\n", err)
		return 1
	}
	cfg, err := deployconfig.Load(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	rep, err := build(cfg, counts, u)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate-capacity: %v\n", err)
		return 1
	}
	rep.Config = *configPath
	rep.write(stdout)
	return 0
}

// parseCounts reads -agents: 1..maxAgentCounts whole numbers 1..maxAgents.
func parseCounts(s string) ([]int, error) {
	parts := strings.Split(s, ",")
	if len(parts) > maxAgentCounts {
		return nil, fmt.Errorf("-agents: at most %d counts, got %d", maxAgentCounts, len(parts))
	}
	var out []int
	for _, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > maxAgents {
			return nil, fmt.Errorf("-agents: %q is not a whole number from 1 to %d", truncate(p, 20), maxAgents)
		}
		out = append(out, n)
	}
	return out, nil
}

func checkUsage(u capacity.Usage) error {
	switch {
	case !(u.MessagesPerAgentHour >= 0 && u.MessagesPerAgentHour <= maxMessagesPerHour):
		return fmt.Errorf("-messages-per-hour %v: want 0..%d (IoT Core's 100 publishes per second per connection)", u.MessagesPerAgentHour, maxMessagesPerHour)
	case !(u.MessageBytes >= 1 && u.MessageBytes <= topics.MaxMessageBytes):
		return fmt.Errorf("-message-bytes %v: want 1..%d (IoT Core's message size limit)", u.MessageBytes, topics.MaxMessageBytes)
	case !(u.NewFlowsPerAgentHour >= 0 && u.NewFlowsPerAgentHour <= maxFlowsPerHour):
		return fmt.Errorf("-new-flows-per-hour %v: want 0..%d", u.NewFlowsPerAgentHour, maxFlowsPerHour)
	}
	return nil
}

// truncate shortens s to n runes for a message.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
