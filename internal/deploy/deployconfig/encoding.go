package deployconfig

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// The configuration is UTF-8 (RFC 8259 §8.1: JSON text exchanged between
// systems "MUST be encoded using UTF-8"; a parser "MAY ignore the presence
// of a byte order mark"). Editors on Windows also save
// UTF-16, with or without a byte order mark, and some add a UTF-8 byte order
// mark to a file that has one already. Read as UTF-8 such a file fails on a
// character nobody can see, so the encoding is named instead.

var (
	bomUTF8    = []byte{0xef, 0xbb, 0xbf}
	bomUTF16LE = []byte{0xff, 0xfe}
	bomUTF16BE = []byte{0xfe, 0xff}
	bomUTF32LE = []byte{0xff, 0xfe, 0x00, 0x00}
	bomUTF32BE = []byte{0x00, 0x00, 0xfe, 0xff}
)

// saveAsUTF8 ends every encoding problem: what to do about it.
const saveAsUTF8 = "save it as UTF-8 (in most editors: Save As, encoding UTF-8)"

// checkEncoding returns data without its UTF-8 byte order mark, or the
// problem that keeps it from being read as UTF-8 text.
func checkEncoding(data []byte) ([]byte, *Problem) {
	whole := func(format string, args ...any) *Problem {
		return &Problem{Message: fmt.Sprintf(format, args...) + "; " + saveAsUTF8}
	}
	switch {
	case bytes.HasPrefix(data, bomUTF32LE):
		return nil, whole("the file is UTF-32 (little-endian, with a byte order mark)")
	case bytes.HasPrefix(data, bomUTF32BE):
		return nil, whole("the file is UTF-32 (big-endian, with a byte order mark)")
	case bytes.HasPrefix(data, bomUTF16LE):
		return nil, whole("the file is UTF-16 (little-endian, with a byte order mark)")
	case bytes.HasPrefix(data, bomUTF16BE):
		return nil, whole("the file is UTF-16 (big-endian, with a byte order mark)")
	}
	// A byte order mark (some Windows editors add one) carries no meaning;
	// two are an editor's mistake the reader would trip over unseen.
	data = bytes.TrimPrefix(data, bomUTF8)
	if bytes.HasPrefix(data, bomUTF8) {
		return nil, whole("the file starts with two UTF-8 byte order marks (EF BB BF EF BB BF), invisible in most editors")
	}
	// JSON text holds no NUL byte anywhere; UTF-16 holds one in every
	// character of ASCII text, on the high side: after it (little-endian)
	// or before it (big-endian).
	if nul := bytes.IndexByte(data, 0); nul >= 0 {
		if order := utf16Order(data); order != "" {
			return nil, whole("the file is UTF-16 (%s, without a byte order mark)", order)
		}
		p := positionOf(data, nul)
		return nil, &Problem{Line: p.line, Column: p.col,
			Message: "a NUL byte: this is not a UTF-8 text file; " + saveAsUTF8}
	}
	if !utf8.Valid(data) {
		off := firstInvalidUTF8(data)
		p := positionOf(data, off)
		return nil, &Problem{Line: p.line, Column: p.col,
			Message: fmt.Sprintf("byte 0x%02X is not UTF-8: the file is in another encoding (such as Windows-1252 or Latin-1); %s", data[off], saveAsUTF8)}
	}
	return data, nil
}

// utf16Order says whether the first bytes of data look like UTF-16 text:
// "little-endian" when every second byte from the second is NUL and the
// others are not, "big-endian" for the reverse, "" otherwise.
func utf16Order(data []byte) string {
	n := min(len(data), 64) &^ 1
	if n == 0 {
		return ""
	}
	evenNUL, oddNUL := 0, 0
	for i := 0; i < n; i += 2 {
		if data[i] == 0 {
			evenNUL++
		}
		if data[i+1] == 0 {
			oddNUL++
		}
	}
	switch pairs := n / 2; {
	case oddNUL == pairs && evenNUL == 0:
		return "little-endian"
	case evenNUL == pairs && oddNUL == 0:
		return "big-endian"
	}
	return ""
}

// firstInvalidUTF8 is the offset of the first byte that does not start a
// valid UTF-8 sequence (data is known to hold one).
func firstInvalidUTF8(data []byte) int {
	for off := 0; off < len(data); {
		r, size := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && size <= 1 {
			return off
		}
		off += size
	}
	return len(data)
}

// positionOf is the line and column (in characters) of byte offset off.
func positionOf(data []byte, off int) position {
	line := 1 + bytes.Count(data[:off], []byte{'\n'})
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	return position{line: line, col: utf8.RuneCount(data[start:off]) + 1}
}
