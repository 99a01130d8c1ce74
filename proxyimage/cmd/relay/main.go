//go:build linux

// Command relay is agentgate's SNI relay: it forwards agents' TLS connections
// on one port to the AWS IoT Core, credentials-provider and S3 endpoints
// configured with --route, without terminating TLS. See proxyimage/README.md
// and `relay --help` for the flags; every flag is also read from RELAY_*.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/agentgate/agentgate/proxyimage/admin"
	"github.com/agentgate/agentgate/proxyimage/config"
	"github.com/agentgate/agentgate/proxyimage/relay"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// pprofEnv, set to 1, serves net/http/pprof under /debug/pprof/ on the
// admin port. It is deliberately not a documented flag: benchmarks only.
const pprofEnv = "RELAY_DEBUG_PPROF"

// withPprof adds the pprof handlers in front of h.
func withPprof(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := config.Parse(args, os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		config.Usage(os.Stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "relay: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	relay.RegisterBuildInfo(reg, version, revision, runtime.Version())

	srv, err := relay.New(cfg, log, reg)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	lc := net.ListenConfig{KeepAlive: -1} // see relay.New: no keep-alive probes on idle agents
	ln, err := lc.Listen(context.Background(), "tcp", cfg.Listen)
	if err != nil {
		log.Error("listen", "addr", cfg.Listen, "err", err)
		return 1
	}
	adminLn, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		log.Error("listen", "addr", cfg.Admin, "err", err)
		return 1
	}
	handler := admin.Handler(reg, srv.Ready)
	if os.Getenv(pprofEnv) == "1" {
		// Profiling is for benchmarks (docs/benchmarks.md), off by default:
		// the admin port must not expose it in production.
		handler = withPprof(handler)
		log.Warn("pprof enabled on the admin port", "env", pprofEnv)
	}
	adminSrv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	go func() {
		// Behind the NLB the admin port's health checks carry a PROXY header too.
		if err := adminSrv.Serve(srv.AdminListener(adminLn)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server", "err", err)
		}
	}()

	probeCtx, stopProbes := context.WithCancel(context.Background())
	defer stopProbes()
	srv.StartProbes(probeCtx)

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	routes := make([]string, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		routes = append(routes, r.SNI+"="+r.Upstream)
	}
	log.Info("relay started", "listen", ln.Addr().String(), "admin", adminLn.Addr().String(),
		"routes", routes, "health_sni", cfg.HealthSNI, "proxy_protocol", string(cfg.ProxyProtocol),
		"http_connect", cfg.HTTPConnect, "max_conns", cfg.MaxConns, "copy_mode", string(cfg.CopyMode),
		"version", version)

	var sig os.Signal
	select {
	case sig = <-signals:
	case err := <-serveErr:
		log.Error("serve", "err", err)
		return 1
	}

	// A second signal forces exit; the drain itself is Server.Drain.
	force := make(chan struct{})
	go func() {
		s := <-signals
		log.Warn("second signal: exiting now", "signal", s.String())
		close(force)
	}()
	drainErr := srv.Drain(relay.DrainPlan{
		Listener:     ln,
		UnreadyDelay: cfg.UnreadyDelay,
		Timeout:      cfg.DrainTimeout,
		Force:        force,
		Signal:       sig.String(),
	})
	if errors.Is(drainErr, relay.ErrForced) {
		return 1
	}
	stopProbes()
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), time.Second)
	defer cancelShutdown()
	_ = adminSrv.Shutdown(shutdownCtx)
	if drainErr != nil {
		return 1
	}
	return 0
}
