package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/enroll"
	"github.com/agentgate/agentgate/contract/provisioning"
)

// enrollCmd is `agentgate-agent enroll`: self-enrolment with a claim
// certificate and an install token through the relay (agent/enroll).
func enrollCmd(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	var (
		o                               options
		token, claimCert, claimKey, dir string
		agentID, customer, template     string
		timeout                         time.Duration
	)
	fs := flag.NewFlagSet("agentgate-agent enroll", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&token, "token", "", "install token from the vendor (agt1.…); prefer the "+EnvName("token")+" variable: flags are visible to other users")
	fs.StringVar(&claimCert, "claim-cert", "", "claim certificate PEM file shipped with the installer")
	fs.StringVar(&claimKey, "claim-key", "", "claim certificate's private key PEM file")
	fs.StringVar(&dir, "dir", "", "directory for the agent's key, certificate and enrolment state (created 0700)")
	fs.StringVar(&agentID, "agent-id", "", "thing name to ask for (default: generated once and kept in --dir)")
	fs.StringVar(&customer, "customer", "", "customer this installer is for: refuse a token of another customer (optional)")
	fs.StringVar(&template, "template", provisioning.DefaultTemplateName, "provisioning template name")
	fs.StringVar(&o.iotEndpoint, "iot-endpoint", "", "IoT data endpoint host (aws iot describe-endpoint --endpoint-type iot:Data-ATS)")
	fs.StringVar(&o.caFile, "ca", "", "PEM bundle of root CAs for AWS's certificates (default: the system pool)")
	fs.StringVar(&o.relayName, "relay", "", "the agents' DNS name (the relay's static IPs); empty connects directly")
	fs.StringVar(&o.relayPort, "relay-port", "443", "the relay's port")
	fs.StringVar(&o.dnsServer, "dns-server", "", "host:port of a DNS server to resolve --relay with")
	fs.DurationVar(&timeout, "timeout", enroll.DefaultTimeout, "bound on the whole enrolment")
	addProxyFlags(fs, &o.px)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agentgate-agent enroll: unexpected arguments %q\n", fs.Args())
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := getenv(EnvName(f.Name)); ok && !set[f.Name] && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", EnvName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		fmt.Fprintf(stderr, "agentgate-agent enroll: %v\n", envErr)
		return 2
	}
	_, noProxyEnv := getenv(EnvName("no-proxy"))
	px, err := o.px.resolve(set["no-proxy"] || noProxyEnv, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate-agent enroll: %v\n", err)
		return 2
	}
	o.proxy = px
	var missing []string
	for name, v := range map[string]string{"token": token, "claim-cert": claimCert, "claim-key": claimKey, "dir": dir, "iot-endpoint": o.iotEndpoint} {
		if v == "" {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		fmt.Fprintf(stderr, "agentgate-agent enroll: missing %s (or their %s* environment variables)\n", strings.Join(missing, ", "), EnvPrefix)
		return 2
	}
	o.certFile, o.keyFile = claimCert, claimKey
	cert, pool, err := loadTLS(&o)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate-agent enroll: claim certificate: %v\n", err)
		return 2
	}
	res, err := enroll.Enrol(ctx, enroll.Config{
		IoTEndpoint: o.iotEndpoint, ClaimCertificate: cert, RootCAs: pool, Dialer: dialer(&o),
		TemplateName: template, Token: token, AgentID: agentID, ExpectedCustomerID: customer, Dir: dir, Timeout: timeout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "agentgate-agent enroll: %v\n", err)
		if errors.Is(err, enroll.ErrToken) {
			return 2
		}
		return 1
	}
	verb := "enrolled"
	if res.AlreadyEnrolled {
		verb = "already enrolled"
	}
	fmt.Fprintf(stdout, "%s: agent %s of customer %s (certificate %s)\n", verb, res.AgentID, res.CustomerID, res.CertificateID)
	fmt.Fprintf(stdout, "run it with: agentgate-agent run --transport %s --customer %s --thing %s --cert %s --key %s --iot-endpoint %s\n",
		agent.TransportCertificate, res.CustomerID, res.AgentID, res.CertFile, res.KeyFile, o.iotEndpoint)
	return 0
}
