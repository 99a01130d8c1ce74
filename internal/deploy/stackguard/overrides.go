package stackguard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// OverridesFile is where a change records the destructive changes it makes
// on purpose, relative to the repository root. It is reviewed with the
// change, like the code.
const OverridesFile = "stacks/stackguard-overrides.json"

// maxOverridesBytes bounds the file: it is a short, hand-written list.
const maxOverridesBytes = 64 << 10

// minReasonLen asks for a sentence, not "ok".
const minReasonLen = 20

// Override is one reviewed, deliberate destructive change.
type Override struct {
	// Resource is "STACK/LOGICAL_ID", as stackguard prints it.
	Resource string `json:"resource"`
	// Reason says why the change is safe (who was told, what replaces it).
	Reason string `json:"reason"`
}

type overridesDoc struct {
	Overrides []Override `json:"overrides"`
}

var resourceRef = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,127}/[A-Za-z][A-Za-z0-9]{0,254}$`)

// ParseOverrides reads an overrides document:
//
//	{"overrides": [{"resource": "STACK/LOGICAL_ID", "reason": "why it is safe"}]}
//
// Unknown fields, duplicates, malformed references and short reasons are
// errors, all reported at once.
func ParseOverrides(data []byte) ([]Override, error) {
	if len(data) > maxOverridesBytes {
		return nil, fmt.Errorf("overrides: %d bytes; allowed: at most %d", len(data), maxOverridesBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc overridesDoc
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("overrides: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("overrides: trailing data after the JSON object")
	}
	var errs []error
	seen := map[string]bool{}
	for i, o := range doc.Overrides {
		field := fmt.Sprintf("overrides[%d]", i)
		if !resourceRef.MatchString(o.Resource) {
			errs = append(errs, fmt.Errorf("%s.resource: %q; allowed: STACK/LOGICAL_ID as stackguard prints it", field, o.Resource))
		} else if seen[o.Resource] {
			errs = append(errs, fmt.Errorf("%s.resource: %q; allowed: each resource once", field, o.Resource))
		}
		seen[o.Resource] = true
		if len(strings.TrimSpace(o.Reason)) < minReasonLen {
			errs = append(errs, fmt.Errorf("%s.reason: %q; allowed: a sentence of at least %d characters saying why this is safe", field, o.Reason, minReasonLen))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return doc.Overrides, nil
}

// ReadOverrides reads an overrides file; a missing file means none.
func ReadOverrides(path string) ([]Override, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	o, err := ParseOverrides(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return o, nil
}

// NewOverrides returns the overrides that head adds over base. Only those
// apply: an override is carried by the change that needs it, and one that
// was already on the base branch (merged with an earlier change) never
// excuses a later destructive change to the same resource.
func NewOverrides(base, head []Override) []Override {
	old := map[Override]bool{}
	for _, o := range base {
		old[Override{Resource: o.Resource, Reason: strings.TrimSpace(o.Reason)}] = true
	}
	var out []Override
	for _, o := range head {
		if !old[Override{Resource: o.Resource, Reason: strings.TrimSpace(o.Reason)}] {
			out = append(out, o)
		}
	}
	return out
}

// Overridden is a destructive change a reviewed override allows.
type Overridden struct {
	Finding
	Reason string
}

// ApplyOverrides splits findings into those still blocking and those an
// override allows, and returns the overrides that matched nothing (a typo,
// or a change that is no longer destructive), which the report shows.
func ApplyOverrides(findings []Finding, overrides []Override) (blocking []Finding, allowed []Overridden, unused []Override) {
	reasons := map[string]string{}
	used := map[string]bool{}
	for _, o := range overrides {
		reasons[o.Resource] = o.Reason
	}
	for _, f := range findings {
		ref := f.Stack + "/" + f.LogicalID
		if r, ok := reasons[ref]; ok {
			allowed = append(allowed, Overridden{f, r})
			used[ref] = true
			continue
		}
		blocking = append(blocking, f)
	}
	for _, o := range overrides {
		if !used[o.Resource] {
			unused = append(unused, o)
		}
	}
	return blocking, allowed, unused
}
