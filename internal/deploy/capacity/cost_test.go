package capacity

import (
	"net/url"
	"testing"
)

var euw1 = Footprint{Name: "euw1", Zones: 2, StaticIPs: 2, NATGateways: 2, InterfaceEndpoints: 2,
	MinTasks: 2, MaxTasks: 8, TargetConnsPerTask: 2000, CPU: 512, MemoryMiB: 1024, Alarms: 10, Dashboards: 1, HealthChecks: 2}

var usage = Usage{MessagesPerAgentHour: 60, MessageBytes: 512, NewFlowsPerAgentHour: 1}

func TestMonthlyFleetCostByHand(t *testing.T) {
	// 10,000 agents at 2000 a task: 5 tasks of 0.5 vCPU and 1 GB.
	want := map[string]float64{
		"Fargate vCPU":   5 * 0.5 * 730 * 0.03238, // 59.0935
		"Fargate memory": 5 * 1 * 730 * 0.00356,   // 12.994
		"NLB hours":      1 * 730 * 0.0225,        // one NLB (2 IPs / 2 zones)
		// NLCU: max(10,000 / 100,000 active = 0.1, 10,000 × 1/h / 3600 / 800
		// = 0.0035 new, 10,000 × 60 × 512 B = 0.3072 GB/h) = 0.3072.
		"NLB capacity units":      0.3072 * 730 * 0.006,
		"NAT gateways":            2 * 730 * 0.045,
		"Interface endpoints":     2 * 2 * 730 * 0.01,
		"Interface endpoint data": 0.3072 * 730 * 0.01,
		"Public IPv4":             (2 + 2) * 730 * 0.005,
		"Route 53 health checks":  2 * (0.50 + 2*1.00),
		"CloudWatch alarms":       10 * 0.10,
		"CloudWatch dashboards":   1 * 3.00,
	}
	lines := euw1.Monthly(10000, usage)
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	total := 0.0
	for _, l := range lines {
		w, ok := want[l.Item]
		if !ok {
			t.Errorf("unexpected line %q", l.Item)
			continue
		}
		near(t, l.Item, l.USD, w)
		total += w
	}
	near(t, "sum", Sum(lines), total)
}

func TestTasksFollowTheTarget(t *testing.T) {
	// max(2, ceil(n / 2000)): the floor, then one task per 2000.
	for agents, want := range map[int]int{0: 2, 3999: 2, 4001: 3, 10000: 5, 100000: 50} {
		if got := euw1.Tasks(agents); got != want {
			t.Errorf("Tasks(%d) = %d, want %d", agents, got, want)
		}
	}
}

func TestIoTCostByHand(t *testing.T) {
	// 10,000 agents × 43,800 minutes = 438 million minutes × $0.08;
	// 10,000 × 60 × 730 = 438 million messages × $1.00 a million.
	lines := IoTMonthly(10000, usage)
	near(t, "connectivity", lines[0].USD, 438*0.08)
	near(t, "messaging", lines[1].USD, 438)
	// Tiers: 4.38 billion = 1 billion × $1 + 3.38 billion × $0.80.
	near(t, "4.38e9 messages", MessagingUSD(4.38e9), 1000+3380*0.8)
	// 6 billion = 1000 + 4000 × 0.8 + 1000 × 0.7.
	near(t, "6e9 messages", MessagingUSD(6e9), 1000+3200+700)
	near(t, "no messages", MessagingUSD(0), 0)
}

func TestPriceTableIsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Prices {
		if seen[p.Key] {
			t.Errorf("price %s listed twice", p.Key)
		}
		seen[p.Key] = true
		if u, err := url.Parse(p.Source); err != nil || u.Scheme != "https" || u.Host != "aws.amazon.com" {
			t.Errorf("%s: source %q is not an AWS pricing page", p.Key, p.Source)
		}
		switch p.Status {
		case Confirmed, Unverified:
		case Secondary:
			if p.Note == "" {
				t.Errorf("%s: a secondary price names where it was read", p.Key)
			}
		default:
			t.Errorf("%s: status %q", p.Key, p.Status)
		}
		if p.USD <= 0 || p.What == "" || p.Unit == "" {
			t.Errorf("%s: incomplete %+v", p.Key, p)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("PriceOf an unknown key did not panic")
		}
	}()
	PriceOf("no-such-price")
}
