// Command vendoragent is a vendor's agent built on agentgate's agent library
// from a Go module of its own, as a vendor would build one. It connects
// through the relay, applies its retained configuration, reports the applied
// version on a topic of its own, fetches role credentials the way a release
// download would, and exits: 0 when all of that worked, 1 with a hint
// naming what to fix when it did not.
//
//	vendoragent -customer acme-01 -thing dev-4711 \
//	  -iot-endpoint abc123-ats.iot.eu-west-1.amazonaws.com \
//	  -credentials-endpoint c2abc.credentials.iot.eu-west-1.amazonaws.com \
//	  -role-alias agentgate-agent -cert thing.crt -key thing.key \
//	  -relay agents.example.com
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/netpath"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vendoragent:", err)
		fmt.Fprintln(os.Stderr, "vendoragent: hint:", hint(err))
		os.Exit(1)
	}
}

func run() error {
	customer := flag.String("customer", "", "customer ID")
	thing := flag.String("thing", "", "thing name (also the MQTT client ID)")
	iotEndpoint := flag.String("iot-endpoint", "", "the account's IoT data endpoint (-ats)")
	credsEndpoint := flag.String("credentials-endpoint", "", "the account's IoT credentials endpoint")
	roleAlias := flag.String("role-alias", "", "the agents' role alias")
	certFile := flag.String("cert", "", "device certificate (PEM)")
	keyFile := flag.String("key", "", "device private key (PEM)")
	caFile := flag.String("ca", "", "root CA bundle (PEM); default: the system roots")
	relay := flag.String("relay", "", "the agents' DNS name (the relay's static IPs)")
	relayPort := flag.String("relay-port", "", "the relay's port; default 443")
	dnsServer := flag.String("dns-server", "", "host:port of the DNS server for -relay; default: the system resolver")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	flag.Parse()

	cert, err := agent.LoadCertificate(*certFile, *keyFile, nil)
	if err != nil {
		return err
	}
	cfg := agent.Config{
		CustomerID: *customer, ThingName: *thing,
		IoTEndpoint: *iotEndpoint, CredentialsEndpoint: *credsEndpoint, RoleAlias: *roleAlias,
		Certificate: cert,
		Dialer:      &netpath.Dialer{RelayName: *relay, RelayPort: *relayPort, Resolver: resolver(*dnsServer)},
	}
	if *caFile != "" {
		if cfg.RootCAs, err = agent.LoadCAFile(*caFile); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	return runAgent(ctx, cfg)
}

// resolver resolves the relay's name with server; "" means the system
// resolver (nil).
func resolver(server string) *net.Resolver {
	if server == "" {
		return nil
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}
