package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/agent/credentials"
	"github.com/agentgate/agentgate/contract/envelope"
)

// settings is what this vendor's agent reads from its configuration
// document (the envelope's config object).
type settings struct {
	IntervalSec int `json:"interval"`
}

// runAgent connects, waits for a configuration to be applied, reports it,
// fetches role credentials, and disconnects.
func runAgent(ctx context.Context, cfg agent.Config) error {
	applied := make(chan struct{}, 1)
	cfg.OnConfig = func(env envelope.Envelope) error {
		var s settings
		if err := json.Unmarshal(env.Config, &s); err != nil {
			// Refused: the agent keeps the previous configuration and
			// offers the retained one again after a backoff.
			return fmt.Errorf("config version %d: %w", env.Version, err)
		}
		fmt.Printf("applied config version %d: interval %ds\n", env.Version, s.IntervalSec)
		return nil
	}
	var mu sync.Mutex // OnEvent runs on the agent's goroutines
	var lastErr error
	cfg.OnEvent = func(e agent.Event) {
		if e.Err != nil {
			mu.Lock()
			lastErr = e.Err
			mu.Unlock()
			fmt.Printf("step %s failed (attempt %d): %v; %s\n", e.Step, e.Attempt, e.Err, hint(e.Err))
			return
		}
		// The config step's event comes after Current is updated
		// (OnConfig runs before, so Current is not yet set there).
		if e.Step == agent.StepConfig {
			select {
			case applied <- struct{}{}:
			default:
			}
		}
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() { stop(); <-done }()

	select {
	case <-applied:
	case <-ctx.Done():
		err := fmt.Errorf("no configuration applied: %w", ctx.Err())
		mu.Lock()
		defer mu.Unlock()
		if lastErr != nil {
			err = fmt.Errorf("%w; last failure: %w", err, lastErr)
		}
		return err
	}
	cur, ok := a.Current() // what OnConfig last accepted
	if !ok {
		return errors.New("the config step reported success but Current has none")
	}
	status, err := json.Marshal(map[string]any{"appliedVersion": cur.Version, "sha256": cur.SHA256})
	if err != nil {
		return err
	}
	if err := publish(ctx, a, "status", status, cfg.BackoffBase, cfg.BackoffMax); err != nil {
		return err
	}
	fmt.Printf("published status: %s\n", status)

	// Role credentials for AWS SDK clients (a release download from S3),
	// through the relay with the device certificate.
	p := &credentials.Provider{Endpoint: cfg.CredentialsEndpoint, RoleAlias: cfg.RoleAlias, ThingName: cfg.ThingName,
		Certificate: cfg.Certificate, RootCAs: cfg.RootCAs, Dialer: cfg.Dialer}
	creds, err := p.Retrieve(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("role credentials valid until %s\n", creds.Expires.UTC().Format(time.RFC3339))
	return nil
}

// publish retries a publish the connection lost, with the agent's jittered
// backoff; a refusal is final (retrying cannot change the policy).
func publish(ctx context.Context, a *agent.Agent, subject string, payload []byte, base, max time.Duration) error {
	if base == 0 {
		base, max = agent.DefaultBackoffBase, agent.DefaultBackoffMax
	}
	for n := 0; ; n++ {
		err := a.Publish(ctx, subject, payload)
		if err == nil || errors.Is(err, agenterr.ErrRefused) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish %s: %w (last failure: %w)", subject, ctx.Err(), err)
		case <-time.After(agent.Backoff(base, max, n)):
		}
	}
}

// hint says what to fix for each failure the agent library tells apart.
func hint(err error) string {
	switch {
	case errors.Is(err, agenterr.ErrCertificateFile):
		return "check the certificate and key files on this host"
	case errors.Is(err, agenterr.ErrBadCertificate):
		return "the device certificate was refused: is it registered, active and not expired?"
	case errors.Is(err, agenterr.ErrServerCertificate):
		return "AWS's certificate did not verify: wrong CA bundle, or a TLS-intercepting proxy on the way"
	case errors.Is(err, agenterr.ErrUnreachable):
		return "the relay is unreachable: the firewall must allow outbound 443 to the static IPs"
	case errors.Is(err, agenterr.ErrClockSkew):
		return "the local clock is off by more than 5 minutes: fix NTP"
	case errors.Is(err, agenterr.ErrCredentialsExpired):
		return "the credentials were already expired: check the clock and the role alias's duration"
	case errors.Is(err, agenterr.ErrRefused):
		return "AWS refused: check the role alias, the role's IAM policy and the IoT policy"
	}
	return "see the error"
}
