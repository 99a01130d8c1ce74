package preflight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// CDK bootstrap facts (AWS CDK developer guide, "AWS CDK bootstrapping"):
// the bootstrap stack records its version in the SSM parameter
// /cdk-bootstrap/<qualifier>/version; the default qualifier is hnb659fds and
// an app chooses another with the @aws-cdk/core:bootstrapQualifier context
// key.
const (
	DefaultQualifier    = "hnb659fds"
	QualifierContextKey = "@aws-cdk/core:bootstrapQualifier"
)

// MinBootstrapVersion is the oldest bootstrap stack the synthesized
// templates accept: their CheckBootstrapVersion rule rejects versions 1..5
// ("CDK bootstrap stack version 6 required"), and the cloud assembly asks
// for 6 to deploy. TestCDKContract synthesizes stacks with the pinned CDK
// and fails when this drifts.
const MinBootstrapVersion = 6

// BootstrapParameter is the SSM parameter holding the bootstrap version.
func BootstrapParameter(qualifier string) string {
	return "/cdk-bootstrap/" + qualifier + "/version"
}

// maxCDKJSONBytes bounds the cdk.json read.
const maxCDKJSONBytes = 1 << 20

// qualifierRe is what `cdk bootstrap --qualifier` accepts (lowercase
// alphanumerics, at most 10).
var qualifierRe = regexp.MustCompile(`^[a-z0-9]{1,10}$`)

// QualifierFromCDKJSON reads the bootstrap qualifier from a cdk.json's
// context. A missing file or key means DefaultQualifier when optional is
// true; a value that is not a valid qualifier is an error naming it.
func QualifierFromCDKJSON(path string, optional bool) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && optional {
		return DefaultQualifier, nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCDKJSONBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxCDKJSONBytes {
		return "", fmt.Errorf("%s: larger than %d bytes", path, maxCDKJSONBytes)
	}
	q, err := qualifierFromJSON(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return q, nil
}

// qualifierFromJSON reads the qualifier from a cdk.json document.
func qualifierFromJSON(data []byte) (string, error) {
	var doc struct {
		Context map[string]json.RawMessage `json:"context"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("invalid JSON: %w", err)
	}
	raw, ok := doc.Context[QualifierContextKey]
	if !ok {
		return DefaultQualifier, nil
	}
	var q string
	if err := json.Unmarshal(raw, &q); err != nil || !qualifierRe.MatchString(q) {
		return "", fmt.Errorf("context %q is %s; allowed: 1..10 lowercase letters and digits", QualifierContextKey, oneLine(clip(string(raw), 40)))
	}
	return q, nil
}

// checkBootstrap checks that the environment is bootstrapped with a version
// the templates accept.
func (r *runner) checkBootstrap(ctx context.Context, e env) Result {
	scope := e.scope()
	param := BootstrapParameter(r.opts.Qualifier)
	fix := fmt.Sprintf("npx cdk bootstrap aws://%s/%s", e.account, e.region)
	if r.opts.Qualifier != DefaultQualifier {
		fix += " --qualifier " + r.opts.Qualifier
	}
	c, cancel := r.call(ctx)
	defer cancel()
	out, err := r.clients.ssm(e.region).GetParameter(c, &ssm.GetParameterInput{Name: aws.String(param)})
	if apiCode(err) == "ParameterNotFound" {
		return Result{Check: CheckBootstrap, Scope: scope, Status: Fail,
			Message: fmt.Sprintf("not bootstrapped: SSM parameter %s does not exist", param),
			Fix:     fix + " (from the repository root, after make setup)."}
	}
	if err != nil {
		return couldNot(CheckBootstrap, scope, "ssm:GetParameter", err)
	}
	if out.Parameter == nil {
		return couldNot(CheckBootstrap, scope, "ssm:GetParameter", malformed("no Parameter in the answer"))
	}
	value := aws.ToString(out.Parameter.Value)
	v, err := strconv.Atoi(value)
	if err != nil || v < 0 {
		return couldNot(CheckBootstrap, scope, "ssm:GetParameter", malformed("%s is %q, not a version number", param, value))
	}
	if v < MinBootstrapVersion {
		return Result{Check: CheckBootstrap, Scope: scope, Status: Fail,
			Message: fmt.Sprintf("bootstrap version %d is too old: the templates need %d or later", v, MinBootstrapVersion),
			Fix:     fix + " (upgrades the bootstrap stack in place)."}
	}
	return Result{Check: CheckBootstrap, Scope: scope, Status: OK,
		Message: fmt.Sprintf("bootstrap version %d (the templates need %d or later)", v, MinBootstrapVersion)}
}
