package topics

import (
	"strings"
	"testing"
)

func TestLayout(t *testing.T) {
	if got := ConfigTopic("acme", "printer-7"); got != "acme/printer-7/config" {
		t.Errorf("ConfigTopic = %q", got)
	}
	if got := ThingPrefix("acme", "printer-7"); got != "acme/printer-7" {
		t.Errorf("ThingPrefix = %q", got)
	}
	if got := ReleaseTopic("stable"); got != "agentgate/releases/stable" {
		t.Errorf("ReleaseTopic = %q", got)
	}
	// The release root's first level is the reserved customer ID, so no
	// tenant's topics can ever overlap it.
	if !strings.HasPrefix(ReleaseRoot, ReservedCustomerID+"/") {
		t.Errorf("ReleaseRoot %q does not start with the reserved customer ID %q", ReleaseRoot, ReservedCustomerID)
	}
}

func TestIDsRejectEverythingThatCouldEscapeATopicLevel(t *testing.T) {
	hostile := []string{
		"", "a/b", "+", "#", "a+", "a#", "$aws", "*", "a*", "?", "a b", "a\x00b", "ä", "a:b",
		"${iot:Connection.Thing.ThingName}", "..", "a.b", strings.Repeat("a", MaxThingNameLen+1),
	}
	for _, id := range hostile {
		if ValidateThingName(id) == nil {
			t.Errorf("thing name %q accepted", id)
		}
		if ValidateCustomerID(id) == nil {
			t.Errorf("customer id %q accepted", id)
		}
		if ValidateChannel(id) == nil {
			t.Errorf("channel %q accepted", id)
		}
	}
	for _, id := range []string{"agentgate", "AgentGate", strings.Repeat("c", MaxIDLen+1)} {
		if ValidateCustomerID(id) == nil {
			t.Errorf("customer id %q accepted", id)
		}
	}
}

func TestIDsAcceptRealisticNames(t *testing.T) {
	for _, id := range []string{"acme", "ACME-01", "cust_42", strings.Repeat("c", MaxIDLen)} {
		if err := ValidateCustomerID(id); err != nil {
			t.Errorf("customer id %q: %v", id, err)
		}
	}
	for _, id := range []string{"printer-7", "pc_0042", strings.Repeat("t", MaxThingNameLen)} {
		if err := ValidateThingName(id); err != nil {
			t.Errorf("thing name %q: %v", id, err)
		}
	}
}

func FuzzValidatedIDsStayOneTopicLevel(f *testing.F) {
	for _, s := range []string{"acme", "a/b", "#", "+", "agentgate", "x\x00"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, customer, thing string) {
		if ValidateCustomerID(customer) != nil || ValidateThingName(thing) != nil {
			return
		}
		topic := ConfigTopic(customer, thing)
		levels := strings.Split(topic, "/")
		if len(levels) != 3 || levels[0] != customer || levels[1] != thing || levels[2] != ConfigSubject {
			t.Fatalf("validated IDs %q %q produce topic %q with levels %q", customer, thing, topic, levels)
		}
		if strings.ContainsAny(topic, "+#*?$") {
			t.Fatalf("validated IDs produce topic %q containing a wildcard character", topic)
		}
	})
}

// IoT Core's quotas fix these; a change here must come from the quota pages
// (thing names: CreateThing's thingName, 1..128; messages: "Message size",
// 128 KB, https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits).
func TestLimitsAreIoTCoresQuotas(t *testing.T) {
	if MaxThingNameLen != 128 {
		t.Errorf("MaxThingNameLen = %d, want CreateThing's 128", MaxThingNameLen)
	}
	if MaxMessageBytes != 131072 {
		t.Errorf("MaxMessageBytes = %d, want 128 KB = 131072 bytes", MaxMessageBytes)
	}
}

func TestDirectionTopics(t *testing.T) {
	if got := UpTopic("acme", "a1", "telemetry"); got != "acme/a1/up/telemetry" {
		t.Errorf("UpTopic = %q", got)
	}
	if got := DownTopic("acme", "a1", "command"); got != "acme/a1/down/command" {
		t.Errorf("DownTopic = %q", got)
	}
	if strings.HasPrefix(ConfigTopic("acme", "a1"), UpPrefix("acme", "a1")+"/") || strings.HasPrefix(ConfigTopic("acme", "a1"), DownPrefix("acme", "a1")+"/") {
		t.Errorf("config topic %q falls under a direction prefix", ConfigTopic("acme", "a1"))
	}
}

func TestValidateSubject(t *testing.T) {
	for _, ok := range []string{"telemetry", "status/disk", "result", "a/b/c/d/e", "A_1-x"} {
		if err := ValidateSubject(ok); err != nil {
			t.Errorf("ValidateSubject(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{
		"", "/", "a/", "/a", "a//b", "+", "#", "a/#", "a/+/b", "..", "../config", "$aws", "a b", "a\x00b", "ä",
		"a/b/c/d/e/f", strings.Repeat("a", MaxSubjectLen+1),
	} {
		if err := ValidateSubject(bad); err == nil {
			t.Errorf("ValidateSubject(%q) accepted", bad)
		}
	}
}

func FuzzValidSubjectsStayBelowTheirDirection(f *testing.F) {
	for _, s := range []string{"telemetry", "a/b", "#", "../config", "a//b", "a/b/c/d/e/f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		if ValidateSubject(subject) != nil {
			return
		}
		topic := UpTopic("acme", "a1", subject)
		if !strings.HasPrefix(topic, UpPrefix("acme", "a1")+"/") || strings.ContainsAny(subject, "+#*?$") {
			t.Fatalf("valid subject %q gives topic %q", subject, topic)
		}
		// IoT allows at most 7 slashes in a topic.
		if n := strings.Count(topic, "/"); n > 7 {
			t.Fatalf("valid subject %q gives %d slashes", subject, n)
		}
	})
}
