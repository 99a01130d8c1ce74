package artifacts

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/agentgate/agentgate/contract/topics"
)

// ReleasePrefix is the prefix of every release object; agents' roles may
// read only below it.
const ReleasePrefix = "releases/"

// ManifestName is the object name that triggers a release announcement.
const ManifestName = "manifest.json"

var versionPattern = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$`)

// ParseManifestKey parses "releases/<channel>/<version>/manifest.json".
func ParseManifestKey(key string) (channel, version string, err error) {
	rest, ok := strings.CutPrefix(key, ReleasePrefix)
	if !ok {
		return "", "", fmt.Errorf("key %q is outside %s", key, ReleasePrefix)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[2] != ManifestName {
		return "", "", fmt.Errorf("key %q is not %s<channel>/<version>/%s", key, ReleasePrefix, ManifestName)
	}
	if err := topics.ValidateChannel(parts[0]); err != nil {
		return "", "", fmt.Errorf("key %q: %w", key, err)
	}
	if !versionPattern.MatchString(parts[1]) || strings.Contains(parts[1], "..") {
		return "", "", fmt.Errorf("key %q: version %q must match %s", key, parts[1], versionPattern)
	}
	return parts[0], parts[1], nil
}

// ReleaseFileKey is the object key of one platform's build.
func ReleaseFileKey(channel, version, platform, file string) string {
	return ReleasePrefix + channel + "/" + version + "/" + platform + "/" + file
}

// Platform and file-name rules of a release's builds.
var (
	platformPattern = regexp.MustCompile(`^[a-z0-9]{1,16}-[a-z0-9_]{1,16}$`)
	filePattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// ValidatePlatform checks a platform name, "<os>-<arch>" such as linux-amd64.
func ValidatePlatform(p string) error {
	if !platformPattern.MatchString(p) {
		return fmt.Errorf("platform %q must match %s (like linux-amd64)", p, platformPattern)
	}
	return nil
}

// ValidateFileName checks the file name of one platform's build.
func ValidateFileName(f string) error {
	if !filePattern.MatchString(f) || strings.Contains(f, "..") {
		return fmt.Errorf("file name %q must match %s without \"..\"", f, filePattern)
	}
	return nil
}

// ParseReleaseFileKey parses "releases/<channel>/<version>/<platform>/<file>".
func ParseReleaseFileKey(key string) (channel, version, platform, file string, err error) {
	rest, ok := strings.CutPrefix(key, ReleasePrefix)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 4 {
		return "", "", "", "", fmt.Errorf("key %q is not %s<channel>/<version>/<platform>/<file>", key, ReleasePrefix)
	}
	if err := topics.ValidateChannel(parts[0]); err != nil {
		return "", "", "", "", fmt.Errorf("key %q: %w", key, err)
	}
	if !versionPattern.MatchString(parts[1]) || strings.Contains(parts[1], "..") {
		return "", "", "", "", fmt.Errorf("key %q: version %q must match %s", key, parts[1], versionPattern)
	}
	if err := ValidatePlatform(parts[2]); err != nil {
		return "", "", "", "", fmt.Errorf("key %q: %w", key, err)
	}
	if err := ValidateFileName(parts[3]); err != nil {
		return "", "", "", "", fmt.Errorf("key %q: %w", key, err)
	}
	return parts[0], parts[1], parts[2], parts[3], nil
}
