package emailaddr

import (
	"net/mail"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com" // 254
	for _, ok := range []string{"ops@example.com", "on-call+alarms@sub.example.org", "a.b@example.co.uk", long} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%q) = %v, want nil", ok, err)
		}
	}
	for _, tc := range []struct{ in, why string }{
		{"", "empty"},
		{"ops", "no @"},
		{"Ops <ops@example.com>", "display name"},
		{"<ops@example.com>", "angle brackets"},
		{"a@example.com,b@example.com", "two addresses"},
		{"a@example.com, b@example.com", "two addresses with a space"},
		{"a @example.com", "space before @"},
		{" ops@example.com", "leading space"},
		{"ops@example.com\n", "trailing line break"},
		{"ops@example.com (Ops)", "comment"},
		{"ops@", "no domain"},
		{"@example.com", "no local part"},
		{"ops@exa mple.com", "space in the domain"},
		{"x" + long, "255 characters"},
	} {
		if err := Check(tc.in); err == nil {
			t.Errorf("Check(%q) accepted it (%s)", tc.in, tc.why)
		}
	}
}

// FuzzCheck: whatever Check accepts fits MaxLen, holds no line break or
// angle bracket, and is read as one address list of exactly one address,
// itself, so the subscription gets what the user wrote.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"ops@example.com", "Ops <ops@example.com>", "a@b,c@d", `"q u"@example.com`, "a@[127.0.0.1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Check(s) != nil {
			return
		}
		list, err := mail.ParseAddressList(s)
		if len(s) > MaxLen || strings.ContainsAny(s, "\r\n<>") || err != nil || len(list) != 1 || list[0].Address != s || list[0].Name != "" {
			t.Fatalf("accepted %q (as the list %v, %v)", s, list, err)
		}
	})
}
