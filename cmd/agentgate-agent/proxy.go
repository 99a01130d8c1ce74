package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/agentgate/agentgate/agent/netpath"
)

// proxyDirect as --proxy ignores HTTPS_PROXY: every connection is direct.
const proxyDirect = "direct"

// proxyFlags are --proxy and --no-proxy.
type proxyFlags struct {
	url, noProxy string
}

func addProxyFlags(fs *flag.FlagSet, p *proxyFlags) {
	fs.StringVar(&p.url, "proxy", "", `explicit HTTP proxy, http://[user:password@]host:port, tunnelled with CONNECT; empty: HTTPS_PROXY or https_proxy; "direct": no proxy whatever the environment says`)
	fs.StringVar(&p.noProxy, "no-proxy", "", "hosts to reach without the proxy (NO_PROXY syntax: names, .suffixes, IPs, CIDRs); default: NO_PROXY or no_proxy")
}

// resolve returns the proxy the flags and the environment name, nil for
// none. --proxy wins over HTTPS_PROXY/https_proxy, --no-proxy (when given,
// even empty) over NO_PROXY/no_proxy. noProxyGiven says whether --no-proxy
// (or its AGENTGATE_ variable) was set.
func (p proxyFlags) resolve(noProxyGiven bool, getenv func(string) (string, bool)) (*netpath.Proxy, error) {
	raw := strings.TrimSpace(p.url)
	if strings.EqualFold(raw, proxyDirect) {
		return nil, nil
	}
	var px *netpath.Proxy
	var err error
	if raw == "" {
		if px, err = netpath.ProxyFromEnv(getenv); err != nil {
			return nil, err // names the variable
		}
	} else {
		if px, err = netpath.NewProxy(raw, netpath.NoProxyFromEnv(getenv)); err != nil {
			return nil, fmt.Errorf("--proxy: %w", err)
		}
	}
	if px != nil && noProxyGiven {
		px.NoProxy = p.noProxy
	}
	return px, nil
}
