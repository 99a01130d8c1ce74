package clienthello_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"testing"

	"github.com/agentgate/agentgate/proxyimage/clienthello"
	"github.com/agentgate/agentgate/proxyimage/internal/hellogen"
)

func capture(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	b, err := hellogen.Capture(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// trailing is what a client sends after its hello; Read must leave it unread.
var trailing = []byte("AFTER-THE-HELLO")

func TestReadRealHello(t *testing.T) {
	raw := capture(t, &tls.Config{ServerName: "ABC123-ats.iot.eu-west-1.amazonaws.com.", NextProtos: []string{"x-amzn-mqtt-ca"}})
	r := bytes.NewReader(append(append([]byte{}, raw...), trailing...))
	h, err := clienthello.Read(r)
	if err != nil {
		t.Fatal(err)
	}
	if h.ServerName != "abc123-ats.iot.eu-west-1.amazonaws.com" {
		t.Errorf("ServerName = %q, want lower-case without the trailing dot", h.ServerName)
	}
	if !bytes.Equal(h.Raw, raw) {
		t.Errorf("Raw is not the exact bytes read (%d vs %d)", len(h.Raw), len(raw))
	}
	if rest, _ := io.ReadAll(r); !bytes.Equal(rest, trailing) {
		t.Errorf("Read consumed bytes after the hello: left %q", rest)
	}
	if len(h.ALPN) != 1 || h.ALPN[0] != "x-amzn-mqtt-ca" || h.ECH || h.Records != 1 {
		t.Errorf("got %+v", h)
	}
}

func TestReadPostQuantumMultiRecord(t *testing.T) {
	raw := capture(t, &tls.Config{ServerName: "a.example.com", CurvePreferences: []tls.CurveID{tls.X25519MLKEM768}})
	if len(raw) < 1400 { // ~1.2 KB of ML-KEM key share alone
		t.Fatalf("post-quantum hello is only %d bytes; the test needs a big one", len(raw))
	}
	msg, err := hellogen.Handshake(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, cuts := range [][]int{{1}, {3}, {4}, {700}, {100, 900, 1400}} {
		multi := hellogen.Records(msg, cuts...)
		h, err := clienthello.Read(bytes.NewReader(append(append([]byte{}, multi...), trailing...)))
		if err != nil {
			t.Fatalf("cuts %v: %v", cuts, err)
		}
		if h.ServerName != "a.example.com" || h.Records != len(cuts)+1 || !bytes.Equal(h.Raw, multi) {
			t.Errorf("cuts %v: name %q, %d records, raw equal %v", cuts, h.ServerName, h.Records, bytes.Equal(h.Raw, multi))
		}
	}
}

func TestReadRefusals(t *testing.T) {
	big := hellogen.Build(hellogen.SNI("a.example.com"), hellogen.Padding(clienthello.MaxHelloLength))
	cases := []struct {
		name string
		in   []byte
		want error
		sni  string
		ech  bool
	}{
		{"http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), clienthello.ErrNotTLS, "", false},
		{"short garbage", []byte("hi"), clienthello.ErrNotTLS, "", false},
		{"ssh", []byte("SSH-2.0-OpenSSH_9.6\r\n"), clienthello.ErrNotTLS, "", false},
		{"too long", hellogen.Record(big), clienthello.ErrTooLong, "", false},
		{"server hello type", hellogen.Records([]byte{2, 0, 0, 1, 0}), clienthello.ErrNotTLS, "", false},
		{"empty record", []byte{0x16, 3, 1, 0, 0}, clienthello.ErrMalformed, "", false},
		{"alert inside fragmented hello", append(hellogen.Records(hellogen.Build(hellogen.SNI("x.com")), 2)[:7], 0x15, 3, 3, 0, 2, 2, 40), clienthello.ErrMalformed, "", false},
		{"truncated body", hellogen.Records([]byte{1, 0, 0, 3, 3, 3, 0}), clienthello.ErrMalformed, "", false},
		{"no extensions", hellogen.Record(hellogen.Build()), nil, "", false},
		{"ech", hellogen.Record(hellogen.Build(hellogen.SNI("public.example.com"), hellogen.ECH())), nil, "public.example.com", true},
		{"duplicate sni", hellogen.Record(hellogen.Build(hellogen.SNI("a.com"), hellogen.SNI("b.com"))), clienthello.ErrMalformed, "", false},
		{"ip literal passes through", hellogen.Record(hellogen.Build(hellogen.SNI("127.0.0.1"))), nil, "127.0.0.1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := clienthello.Read(bytes.NewReader(tc.in))
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.ServerName != tc.sni || h.ECH != tc.ech {
				t.Errorf("got name %q ech %v", h.ServerName, h.ECH)
			}
		})
	}
}

// alpnList is an ALPN extension offering names, encoded as RFC 7301 says.
func alpnList(names ...string) hellogen.Extension {
	var list []byte
	for _, n := range names {
		list = append(list, byte(len(n)))
		list = append(list, n...)
	}
	return hellogen.Extension{Type: 0x0010, Data: append([]byte{byte(len(list) >> 8), byte(len(list))}, list...)}
}

// TestALPNKeepsAtMostMaxALPN: a hello offering thousands of one-byte names
// is accepted (the relay forwards it; the upstream chooses), but only the
// first MaxALPN names are kept, so an idle connection holds a few bytes of
// ALPN, not thousands of strings. A malformed name after the cap is still
// refused: the whole list is checked.
func TestALPNKeepsAtMostMaxALPN(t *testing.T) {
	names := make([]string, 5000)
	for i := range names {
		names[i] = string(rune('a' + i%26))
	}
	msg := hellogen.Build(hellogen.SNI("a.example.com"), alpnList(names...))
	h, err := clienthello.Read(bytes.NewReader(hellogen.Record(msg)))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.ALPN) != clienthello.MaxALPN {
		t.Fatalf("kept %d ALPN names, want %d", len(h.ALPN), clienthello.MaxALPN)
	}
	for i, n := range h.ALPN {
		if n != names[i] {
			t.Errorf("ALPN[%d] = %q, want %q (the first names, in order)", i, n, names[i])
		}
	}

	bad := alpnList(names[:clienthello.MaxALPN+3]...)
	bad.Data = append(bad.Data, 0) // an empty name after the cap
	bad.Data[0], bad.Data[1] = byte((len(bad.Data)-2)>>8), byte(len(bad.Data)-2)
	if _, err := clienthello.Read(bytes.NewReader(hellogen.Record(hellogen.Build(bad)))); !errors.Is(err, clienthello.ErrMalformed) {
		t.Errorf("empty name after the cap: err = %v, want ErrMalformed", err)
	}
}

// TestNameFoldsASCIIOnly: only ASCII letters are folded; a look-alike that
// Unicode case mapping would turn into a configured name stays different and
// fails ValidNameBytes.
func TestNameFoldsASCIIOnly(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		valid    bool
	}{
		{"ABC-ats.IOT.eu-west-1.amazonaws.com.", "abc-ats.iot.eu-west-1.amazonaws.com", true},
		{"already.lower", "already.lower", true},
		{"\u212a.example.com", "\u212a.example.com", false}, // KELVIN SIGN, not "k"
		{"\u0130ot.example.com", "\u0130ot.example.com", false},
		{"A\u212aB", "a\u212ab", false},
		{"a_b.com", "a_b.com", false},
		{"a.com\x00", "a.com\x00", false},
		{"*.a.com", "*.a.com", false},
		{"[::1]", "[::1]", false},
		{".", "", false},
		{"a..", "a.", false},
		{"a..b.com", "a..b.com", false},
		{".a.com", ".a.com", false},
	} {
		got := clienthello.NormalizeName(tc.in)
		if got != tc.want || clienthello.ValidNameBytes(got) != tc.valid {
			t.Errorf("NormalizeName(%q) = %q (valid %v), want %q (valid %v)", tc.in, got, clienthello.ValidNameBytes(got), tc.want, tc.valid)
		}
	}
}

func TestReadEOF(t *testing.T) {
	raw := capture(t, &tls.Config{ServerName: "a.example.com"})
	for _, n := range []int{0, 3, 5, 40, len(raw) - 1} {
		_, err := clienthello.Read(bytes.NewReader(raw[:n]))
		if err == nil {
			t.Errorf("%d bytes: no error", n)
		}
	}
}

// FuzzRead feeds arbitrary bytes: Read must not panic, must never return more
// Raw bytes than it was given, and must not read past a successful hello.
func FuzzRead(f *testing.F) {
	f.Add(capture(f, &tls.Config{ServerName: "a.example.com"}))
	f.Add(hellogen.Record(hellogen.Build(hellogen.SNI("x.y"), hellogen.ECH())))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add(hellogen.Record(hellogen.Build(hellogen.SNI("x.y"), alpnList("a", "b", "c", "d", "e", "f", "g", "h", "i", "j"))))
	f.Add(hellogen.Record(hellogen.Build(hellogen.SNI("r\u212a.iot.test"))))
	f.Add(hellogen.Record(hellogen.Build(hellogen.SNI("RAW.\u0130OT.TEST."))))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := clienthello.Read(r)
		if h == nil {
			t.Fatal("nil hello")
		}
		if len(h.Raw) > len(in) && err == nil {
			t.Fatalf("raw %d > input %d", len(h.Raw), len(in))
		}
		if err == nil {
			if !bytes.Equal(h.Raw, in[:len(h.Raw)]) {
				t.Fatal("raw is not a prefix of the input")
			}
			if r.Len() != len(in)-len(h.Raw) {
				t.Fatal("read past the hello")
			}
			if len(h.Raw) > clienthello.MaxHelloLength+5*(h.Records) {
				t.Fatalf("hello of %d bytes passed the cap", len(h.Raw))
			}
			if len(h.ALPN) > clienthello.MaxALPN {
				t.Fatalf("kept %d ALPN names, cap %d", len(h.ALPN), clienthello.MaxALPN)
			}
			if clienthello.ValidNameBytes(h.ServerName) && h.ServerName != clienthello.NormalizeName(h.ServerName) {
				t.Fatalf("name %q not normalised", h.ServerName)
			}
			for i := 0; i < len(h.ServerName); i++ {
				if c := h.ServerName[i]; 'A' <= c && c <= 'Z' {
					t.Fatalf("name %q keeps an upper-case ASCII letter", h.ServerName)
				}
			}
		}
	})
}
