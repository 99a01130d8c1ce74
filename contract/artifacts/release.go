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
