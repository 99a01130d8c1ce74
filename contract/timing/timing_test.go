package timing

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultsObeyTheRule(t *testing.T) {
	if err := CheckRule(MaxMQTTKeepAlive, DefaultRelayIdleTimeout, DefaultNLBIdleTimeout); err != nil {
		t.Errorf("defaults break the rule even at the longest keep-alive: %v", err)
	}
	if err := CheckRule(DefaultMQTTKeepAlive, DefaultRelayIdleTimeout, DefaultNLBIdleTimeout); err != nil {
		t.Errorf("defaults break the rule: %v", err)
	}
}

func TestEachHopThatBreaksTheRuleIsNamed(t *testing.T) {
	s := time.Second
	cases := []struct {
		keep, relay, nlb time.Duration
		want             string
	}{
		{0, 360 * s, 400 * s, "keep-alive 0s must be positive"},
		{231 * s, 360 * s, 400 * s, "exceeds the IoT VPC endpoint cap"},
		{230 * s, 345 * s, 400 * s, "relay idle timeout 5m45s must exceed 1.5 × mqtt keep-alive"},
		{60 * s, 90 * s, 400 * s, "relay idle timeout 1m30s must exceed"},
		{60 * s, 360 * s, 360 * s, "nlb idle timeout 6m0s must exceed the relay idle timeout"},
		{60 * s, 360 * s, 350 * s, "must exceed the relay idle timeout"},
		{10 * s, 20 * s, 50 * s, "outside 1m0s..1h40m0s"},
		{60 * s, 360 * s, 6001 * s, "outside"},
		{60 * s, 360 * s, 400*s + time.Millisecond, "whole seconds"},
	}
	for _, tc := range cases {
		err := CheckRule(tc.keep, tc.relay, tc.nlb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckRule(%s, %s, %s) = %v, want error containing %q", tc.keep, tc.relay, tc.nlb, err, tc.want)
		}
	}
	if err := CheckRule(60*s, 91*s, 92*s); err != nil {
		t.Errorf("just above every bound: %v", err)
	}
}
