package storm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientRefusesABadSpec: a client process named a missing, malformed
// or out-of-range spec stops with an error naming it.
func TestClientRefusesABadSpec(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.json"), "no such file"},
		{write("bad.json", "{not json"), "bad.json"},
		{write("zero.json", `{"Count":0}`), "count 0"},
		{write("huge.json", `{"Count":1000000}`), "count 1000000"},
		{write("noca.json", `{"Count":1}`), "not PEM"},
	} {
		err := runClient(tc.path, strings.NewReader(""), new(strings.Builder))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.path, err, tc.want)
		}
	}
}
