package stackguard

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// The resource spec bundled with the pinned CDK CLI (the same data
// `cdk diff` uses to predict replacements).
const cdkSpec = "../../../node_modules/aws-cdk/db.json.gz"

// Each stateful type's replacing properties must include every property the
// CloudFormation spec says requires replacement, so the guard is right even
// where cdk diff is not run.
func TestReplacingPropertiesMatchTheCdkSpec(t *testing.T) {
	f, err := os.Open(cdkSpec)
	if err != nil {
		if testing.Short() {
			t.Skip("no CDK CLI installed:", err)
		}
		t.Fatalf("%v: run `make setup` (npm ci) first", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var db struct {
		Schema struct {
			Resource struct {
				Entities []struct {
					CloudFormationType string `json:"cloudFormationType"`
					Properties         map[string]struct {
						CausesReplacement string `json:"causesReplacement"`
					} `json:"properties"`
				} `json:"entities"`
			} `json:"resource"`
		} `json:"schema"`
	}
	if err := json.NewDecoder(zr).Decode(&db); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, e := range db.Schema.Resource.Entities {
		ours, stateful := replacingProperties[e.CloudFormationType]
		if !stateful {
			continue
		}
		found[e.CloudFormationType] = true
		for name, p := range e.Properties {
			if p.CausesReplacement != "" && p.CausesReplacement != "no" && !slices.Contains(ours, name) {
				t.Errorf("%s.%s causes replacement (%s) per the CDK spec; add it to replacingProperties", e.CloudFormationType, name, p.CausesReplacement)
			}
		}
	}
	for typ := range replacingProperties {
		if !found[typ] {
			t.Errorf("%s is not in the CDK spec: a typo?", typ)
		}
	}
}
