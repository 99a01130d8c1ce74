package artifacts_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/artifacts"
)

func validManifest() artifacts.ReleaseManifest {
	return artifacts.ReleaseManifest{
		Channel: "stable", Version: "1.5.0", Sequence: 3, IssuedAt: "2026-12-01T10:00:00Z", Bucket: "acme-artifacts",
		Rollout: artifacts.Rollout{Percent: 100},
		Artifacts: []artifacts.ReleaseArtifact{
			{Platform: "linux-amd64", Key: "releases/stable/1.5.0/linux-amd64/agentgate-agent", VersionID: "v1", Size: 10, SHA256: strings.Repeat("a", 64)},
			{Platform: "linux-arm64", Key: "releases/stable/1.5.0/linux-arm64/agentgate-agent", VersionID: "v2", Size: 10, SHA256: strings.Repeat("b", 64)},
		},
	}
}

func TestReleaseManifestValidation(t *testing.T) {
	if err := validManifest().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*artifacts.ReleaseManifest){
		"bad channel":     func(m *artifacts.ReleaseManifest) { m.Channel = "a/b" },
		"non-numeric ver": func(m *artifacts.ReleaseManifest) { m.Version = "1.5.0-rc1" },
		"leading zero":    func(m *artifacts.ReleaseManifest) { m.Version = "1.05.0" },
		"zero sequence":   func(m *artifacts.ReleaseManifest) { m.Sequence = 0 },
		"local time":      func(m *artifacts.ReleaseManifest) { m.IssuedAt = "2026-12-01T11:00:00+01:00" },
		"bad bucket":      func(m *artifacts.ReleaseManifest) { m.Bucket = "Acme" },
		"percent 101":     func(m *artifacts.ReleaseManifest) { m.Rollout.Percent = 101 },
		"percent -1":      func(m *artifacts.ReleaseManifest) { m.Rollout.Percent = -1 },
		"bad customer":    func(m *artifacts.ReleaseManifest) { m.Rollout.Customers = []string{"a/b"} },
		"customer twice":  func(m *artifacts.ReleaseManifest) { m.Rollout.Customers = []string{"acme", "acme"} },
		"no artifacts":    func(m *artifacts.ReleaseManifest) { m.Artifacts = nil },
		"unsorted":        func(m *artifacts.ReleaseManifest) { m.Artifacts[0], m.Artifacts[1] = m.Artifacts[1], m.Artifacts[0] },
		"key of other ver": func(m *artifacts.ReleaseManifest) {
			m.Artifacts[0].Key = "releases/stable/1.4.0/linux-amd64/agentgate-agent"
		},
		"key of other plat": func(m *artifacts.ReleaseManifest) {
			m.Artifacts[0].Key = "releases/stable/1.5.0/linux-arm64/agentgate-agent"
		},
		"key outside":      func(m *artifacts.ReleaseManifest) { m.Artifacts[0].Key = "configs/acme/x.json" },
		"dotdot file":      func(m *artifacts.ReleaseManifest) { m.Artifacts[0].Key = "releases/stable/1.5.0/linux-amd64/a..b" },
		"no version id":    func(m *artifacts.ReleaseManifest) { m.Artifacts[0].VersionID = "" },
		"version id space": func(m *artifacts.ReleaseManifest) { m.Artifacts[0].VersionID = "a b" },
		"zero size":        func(m *artifacts.ReleaseManifest) { m.Artifacts[0].Size = 0 },
		"huge size":        func(m *artifacts.ReleaseManifest) { m.Artifacts[0].Size = artifacts.MaxReleaseBytes + 1 },
		"upper-case sha":   func(m *artifacts.ReleaseManifest) { m.Artifacts[0].SHA256 = strings.Repeat("A", 64) },
		"short sha":        func(m *artifacts.ReleaseManifest) { m.Artifacts[0].SHA256 = "ab" },
		"too many customers": func(m *artifacts.ReleaseManifest) {
			m.Rollout.Customers = manyCustomers(artifacts.MaxRolloutCustomers + 1)
		},
	} {
		m := validManifest()
		m.Artifacts = append([]artifacts.ReleaseArtifact(nil), m.Artifacts...)
		mut(&m)
		if err := m.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := m.Canonical(); err == nil {
			t.Errorf("%s: canonical form of an invalid manifest", name)
		}
	}
}

func manyCustomers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("c%d", i)
	}
	return out
}

func TestParseReleaseManifestIsStrictAndCanonical(t *testing.T) {
	c, err := validManifest().Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := artifacts.ParseReleaseManifest(c); err != nil {
		t.Fatal(err)
	}
	s := string(c)
	for name, b := range map[string]string{
		"spaces":        strings.Replace(s, `,"version"`, `, "version"`, 1),
		"reordered":     strings.Replace(strings.Replace(s, `"version":"1.5.0",`, ``, 1), `{"channel"`, `{"version":"1.5.0","channel"`, 1),
		"unknown field": strings.Replace(s, `{"channel"`, `{"x":1,"channel"`, 1),
		"trailing":      s + "\n",
		"duplicate key": strings.Replace(s, `"version":"1.5.0"`, `"version":"1.5.0","version":"1.5.0"`, 1),
		"oversize":      s + strings.Repeat(" ", artifacts.MaxSignedManifestBytes),
	} {
		if _, err := artifacts.ParseReleaseManifest([]byte(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.4.2", "1.10.0", -1}, {"1.10.0", "1.4.2", 1}, {"1.4", "1.4.0", 0}, {"2.0", "1.99.99.99", 1}, {"0.1", "0.1.1", -1},
	} {
		got, err := artifacts.CompareVersions(c.a, c.b)
		if err != nil || got != c.want {
			t.Errorf("CompareVersions(%s, %s) = %d, %v; want %d", c.a, c.b, got, err, c.want)
		}
	}
	for _, bad := range []string{"1", "1.2.3.4.5", "v1.2", "1.2-rc1", "01.2", "", "1..2", "1.9999999999"} {
		if _, err := artifacts.CompareVersions(bad, "1.0"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Widening a rollout keeps every agent that was in; the share in is close
// to the percentage; another version picks another set; the customer list
// excludes everyone else whatever the percentage.
func TestRollout(t *testing.T) {
	m := validManifest()
	const n = 20000
	prevIn := map[string]bool{}
	for _, p := range []int{0, 1, 10, 50, 100} {
		m.Rollout.Percent = p
		in := 0
		for i := range n {
			thing := fmt.Sprintf("agent-%d", i)
			if m.InRollout("acme", thing) {
				in++
			} else if prevIn[thing] {
				t.Fatalf("%s left the rollout when it widened to %d%%", thing, p)
			}
			prevIn[thing] = m.InRollout("acme", thing)
		}
		// Binomial: 5 standard deviations of n·p is under 1.8% of n.
		if got, want := float64(in)/n*100, float64(p); got < want-1.8 || got > want+1.8 {
			t.Errorf("%d%%: %.2f%% of agents in", p, got)
		}
	}
	same := 0
	for i := range 1000 {
		thing := fmt.Sprintf("agent-%d", i)
		if (artifacts.RolloutBucket("1.5.0", thing) < 1000) == (artifacts.RolloutBucket("1.6.0", thing) < 1000) {
			same++
		}
	}
	if same == 1000 {
		t.Error("the 10% canary set is the same for two versions: the version is not salting the hash")
	}
	m.Rollout = artifacts.Rollout{Percent: 100, Customers: []string{"acme"}}
	if !m.InRollout("acme", "agent-1") || m.InRollout("globex", "agent-1") {
		t.Error("customer list not applied")
	}
}
