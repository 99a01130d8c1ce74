package releasepub

import (
	"fmt"
	"net/url"
)

// urlDecode undoes the URL encoding of object keys in S3 event notifications.
func urlDecode(raw string) (string, error) {
	k, err := url.QueryUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("event object key %q is not URL-encoded: %w", raw, err)
	}
	return k, nil
}
