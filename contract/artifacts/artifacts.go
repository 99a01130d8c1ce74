// Package artifacts is the object key layout of a fleet's two buckets, read
// by the publisher Lambdas, granted by the constructs' and policies' key
// prefixes, and written by whoever uploads configurations and releases
// (see docs/control-plane.md). It imports no CDK package: run-time and
// deploy-time code share it.
//
// Configuration bucket:
//
//	configs/<customer>/<agent>.json     one agent's own configuration (wins)
//	configs/<customer>/_default.json    the customer's default for every agent
//	                                    that has no object of its own
//
// Artifacts bucket:
//
//	releases/<channel>/<version>/<platform>/<file>   one build per platform
//	releases/<channel>/<version>/manifest.json       uploaded last; triggers the announcement
//
// <customer> is the agent's IoT thing type, <agent> its thing name and
// <channel> a release channel; all follow package topics' ID rules.
package artifacts

import (
	"fmt"
	"strings"
)

// CheckKeyPrefix reports a prefix that cannot scope an IAM grant to the
// objects below it: it must end in "/" (so "releases/" does not also cover
// "releases-old/"), not start with "/" (S3 keys do not), and hold none of
// the characters an IAM resource ARN treats as a wildcard or a policy
// variable (* ? $).
func CheckKeyPrefix(p string) error {
	if p == "" || p[0] == '/' || !strings.HasSuffix(p, "/") || strings.ContainsAny(p, "*?$") {
		return fmt.Errorf("%q must be a key prefix ending in \"/\" without a leading \"/\" or any of * ? $, such as %q", p, ReleasePrefix)
	}
	return nil
}
