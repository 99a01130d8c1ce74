package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/connectproxy"
	"github.com/agentgate/agentgate/internal/testkit/provisionstandin"
	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

func TestEnrollFlagErrors(t *testing.T) {
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"nothing":        {nil, nil, "missing --claim-cert, --claim-key, --dir, --iot-endpoint, --token"},
		"stray argument": {[]string{"x"}, nil, "unexpected arguments"},
		"bad duration":   {nil, map[string]string{"AGENTGATE_TIMEOUT": "soon"}, "AGENTGATE_TIMEOUT"},
		"no claim key":   {[]string{"--token", "t", "--claim-cert", "/nonexistent/c.pem", "--claim-key", "/nonexistent/k.pem", "--dir", "d", "--iot-endpoint", "x"}, nil, "claim certificate"},
	} {
		var out, errb bytes.Buffer
		env := func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }
		code := run(context.Background(), append([]string{"enroll"}, c.args...), env, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%s: exit %d, stderr %q, want 2 and %q", name, code, errb.String(), c.want)
		}
	}
}

// The command enrols through the lab's relay with the fleet-provisioning
// stand-in (its hook here admits any well-formed token for customer
// acme-01; the real hook's decisions are tested in
// lambda/internal/provisionhook), writes the files and says how to run.
func TestEnrollThroughTheLab(t *testing.T) {
	l := startLab(t)
	admitAll := func(_ context.Context, raw json.RawMessage) (provisioning.HookResponse, error) {
		ev, err := provisioning.ParseHookEvent(raw)
		if err != nil {
			return provisioning.HookResponse{}, err
		}
		if _, err := provisioning.ParseToken(ev.Parameters[provisioning.ParamInstallToken]); err != nil {
			return provisioning.HookResponse{}, nil
		}
		return provisioning.HookResponse{AllowProvisioning: true, ParameterOverrides: map[string]string{provisioning.ParamCustomerID: agentlab.CustomerID}}, nil
	}
	fleet := provisionstandin.New(provisioning.DefaultTemplateName, "agentgate-agent", "arn:aws:iot:eu-west-1:111111111111:provisioningtemplate/"+provisioning.DefaultTemplateName, admitAll, l.CA.Sign)
	fleet.AddThingType(agentlab.CustomerID)
	if err := l.Broker.AddHook(fleet, nil); err != nil {
		t.Fatal(err)
	}
	claim, err := l.CA.ClientLeaf("claim")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := testpki.PEM(claim)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	certFile, keyFile := filepath.Join(tmp, "claim.pem"), filepath.Join(tmp, "claim.key")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	tok, _ := provisioning.NewToken(nil)
	px := startProxy(t, l, connectproxy.Options{User: "enrol", Password: "pw"})
	dir := filepath.Join(tmp, "agent")
	env := map[string]string{"AGENTGATE_TOKEN": tok.String(), "AGENTGATE_IOT_ENDPOINT": agentlab.IoTHost, "AGENTGATE_CA": l.CAFile,
		"AGENTGATE_RELAY": agentlab.RelayName, "AGENTGATE_RELAY_PORT": l.RelayPort, "AGENTGATE_DNS_SERVER": l.DNS.Addr,
		// Enrolment honours the site's proxy like every other connection.
		"HTTPS_PROXY": px.URL("enrol:pw")}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	args := []string{"enroll", "--claim-cert", certFile, "--claim-key", keyFile, "--dir", dir, "--agent-id", "cli-agent-1"}
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, getenv, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "enrolled: agent cli-agent-1 of customer "+agentlab.CustomerID) || !strings.Contains(out.String(), "--thing cli-agent-1") {
		t.Fatalf("output %q", out.String())
	}
	if reqs := px.Requests(); len(reqs) != 1 || reqs[0].Target != agentlab.RelayName+":"+l.RelayPort || reqs[0].Status != 200 {
		t.Fatalf("proxy saw %+v", reqs)
	}
	if th := fleet.Things()["cli-agent-1"]; th.Type != agentlab.CustomerID {
		t.Fatalf("thing %+v", th)
	}
	out.Reset()
	if code := run(context.Background(), args, getenv, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "already enrolled") {
		t.Fatalf("second run: %d %q", code, out.String())
	}
	// A malformed token is refused before any connection, with exit 2.
	env["AGENTGATE_TOKEN"] = "agt1.broken"
	errb.Reset()
	args[6] = filepath.Join(tmp, "other")
	if code := run(context.Background(), args, getenv, &out, &errb); code != 2 || !strings.Contains(errb.String(), "malformed") {
		t.Fatalf("malformed token: %d %q", code, errb.String())
	}
}
