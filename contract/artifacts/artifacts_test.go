package artifacts_test

import (
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
)

// An accepted key always names a valid customer and agent whose config topic
// is one exact topic, and round-trips.
func FuzzParseConfigKey(f *testing.F) {
	for _, s := range []string{"configs/acme/printer-7.json", "configs/acme/_default.json", "configs/a/b/c.json", "configs/acme/+.json", "configs/agentgate/x.json", "configs//x.json", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		k, err := artifacts.ParseConfigKey(key)
		if err != nil {
			return
		}
		if k.String() != key {
			t.Fatalf("ParseConfigKey(%q) = %+v, which renders as %q", key, k, k.String())
		}
		if topics.ValidateCustomerID(k.Customer) != nil {
			t.Fatalf("accepted customer %q", k.Customer)
		}
		if !k.IsDefault() {
			if topics.ValidateThingName(k.Agent) != nil || k.Agent == artifacts.DefaultConfigName {
				t.Fatalf("accepted agent %q", k.Agent)
			}
			if strings.Count(topics.ConfigTopic(k.Customer, k.Agent), "/") != 2 {
				t.Fatalf("topic of %+v has extra levels", k)
			}
		}
	})
}

// The constructs grant reads below a prefix with one IAM resource ARN
// ending in "*": a prefix without its "/" would also grant the sibling
// folders that share its start, and *, ? or $ would be read by IAM as
// wildcards or a policy variable.
func TestCheckKeyPrefix(t *testing.T) {
	for p, ok := range map[string]bool{
		artifacts.ReleasePrefix: true,
		artifacts.ConfigPrefix:  true,
		"a/b/":                  true,
		"":                      false,
		"releases":              false,
		"/releases/":            false,
		"rel*/":                 false,
		"rel?/":                 false,
		"${aws:username}/":      false,
	} {
		if err := artifacts.CheckKeyPrefix(p); (err == nil) != ok {
			t.Errorf("CheckKeyPrefix(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

// A manifest key names a channel and a version that cannot leave the
// release folder, and the build keys of that release are below it.
func TestManifestAndReleaseFileKeys(t *testing.T) {
	ch, v, err := artifacts.ParseManifestKey("releases/stable/1.4.2/manifest.json")
	if err != nil || ch != "stable" || v != "1.4.2" {
		t.Fatalf("ParseManifestKey = %q, %q, %v", ch, v, err)
	}
	if k := artifacts.ReleaseFileKey(ch, v, "linux-arm64", "agentgate-agent"); k != "releases/stable/1.4.2/linux-arm64/agentgate-agent" {
		t.Errorf("ReleaseFileKey = %q", k)
	}
	for _, bad := range []string{
		"releases/stable/1.4.2/other.json",
		"releases/stable/../manifest.json",
		"releases/stable/1..2/manifest.json",
		"releases/a/b/1.0/manifest.json",
		"releases/bad channel/1.0/manifest.json",
		"configs/stable/1.0/manifest.json",
	} {
		if _, _, err := artifacts.ParseManifestKey(bad); err == nil {
			t.Errorf("ParseManifestKey(%q) accepted", bad)
		}
	}
}
