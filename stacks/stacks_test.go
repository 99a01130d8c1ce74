package stacks_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
	"github.com/agentgate/agentgate/stacks"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if b, err := system(); err == nil {
		os.RemoveAll(b.dir)
	}
	jsii.Close()
	os.Exit(code)
}

// testAlarmEmail is subscribed to the alarm topics in the shared synth.
const testAlarmEmail = "alarms@example.com"

// testMaxConnsPerSource is the first fleet's relay.maxConnsPerSource in the
// shared synth (the example leaves it at its default), so a test sees a set
// value reach the relay.
const testMaxConnsPerSource = 1234

// system synthesizes the whole app from the committed example configuration
// once per test binary; every test reads its stacks from here. The example
// subscribes no e-mail to the alarms (deploying it would mail a made-up
// address); the shared synth adds testAlarmEmail, so the subscriptions are
// synthesized, nag-checked and tested without a second synth, sets
// testMaxConnsPerSource and pins the standby fleet at 8 tasks.
var system = sync.OnceValues(func() (*built, error) {
	cfg, err := deployconfig.Load("../agentgate.example.json")
	if err != nil {
		return nil, err
	}
	cfg.Alarms.Email = []string{testAlarmEmail}
	cfg.Fleets[0].Relay.MaxConnsPerSource = testMaxConnsPerSource
	// The standby fleet pinned at 8 tasks with 20,000 agents (the most
	// whose zone loss fits the default budget), so the edge stack deploys
	// it in derived waves (TestRelayDeploysInTheDerivedWaves).
	standby := &cfg.Fleets[1].Relay
	standby.MinTasks, standby.MaxTasks, cfg.Fleets[1].ExpectedAgents = 8, 8, 20000
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return synth(cfg)
})

// cliContext is the context `cdk synth` gives the app: cdk.json's feature
// flags (they change how cross-stack references render, among others), with
// asset bundling skipped.
func cliContext() (map[string]any, error) {
	data, err := os.ReadFile("../cdk.json")
	if err != nil {
		return nil, err
	}
	var cdk struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(data, &cdk); err != nil {
		return nil, fmt.Errorf("cdk.json: %w", err)
	}
	cdk.Context["aws:cdk:bundling-stacks"] = []string{}
	return cdk.Context, nil
}

// synth builds and synthesizes the whole app for cfg into a new directory,
// as the CLI would (cdk.json's context, cdk-nag on), with asset bundling skipped.
func synth(cfg *deployconfig.Config) (*built, error) {
	dir, err := os.MkdirTemp("", "agentgate-synth-")
	if err != nil {
		return nil, err
	}
	ctx, err := cliContext()
	if err != nil {
		return nil, err
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(dir), Context: &ctx})
	sys := stacks.Build(app, cfg)
	cdktest.ApplyNag(app)
	app.Synth(nil)
	return &built{cfg: cfg, app: app, sys: sys, dir: dir}, nil
}

type built struct {
	cfg *deployconfig.Config
	app awscdk.App
	sys *stacks.System
	dir string // the synthesized cloud assembly
}

// manifest is the part of the cloud assembly's manifest.json the tests read.
type manifest struct {
	Missing   []struct{ Key string } `json:"missing"`
	Artifacts map[string]struct {
		Type       string
		Properties struct{ TemplateFile string }
	} `json:"artifacts"`
}

func readManifest(t *testing.T, dir string) manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func load(t *testing.T) *built {
	t.Helper()
	b, err := system()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// allStacks finds every stack in the app, so a new stack is checked
// (cdk-nag, template present) without editing this file.
func allStacks(b *built) []awscdk.Stack {
	var out []awscdk.Stack
	for _, c := range *b.app.Node().Children() {
		if *awscdk.Stack_IsStack(c) {
			out = append(out, c.(awscdk.Stack))
		}
	}
	return out
}

func TestEveryStackSynthesizesWithoutNagFindings(t *testing.T) {
	b := load(t)
	if got, want := len(b.sys.Fleets), len(b.cfg.Fleets); got != want {
		t.Fatalf("%d fleets built, config has %d", got, want)
	}
	for _, s := range allStacks(b) {
		t.Run(*s.StackName(), func(t *testing.T) {
			cdktest.NoNagFindings(t, s)
			art, ok := readManifest(t, b.dir).Artifacts[*s.ArtifactId()]
			if !ok || art.Type != "aws:cloudformation:stack" {
				t.Fatalf("no stack artifact for %s in the cloud assembly", *s.StackName())
			}
			if _, err := os.Stat(filepath.Join(b.dir, art.Properties.TemplateFile)); err != nil {
				t.Fatalf("template of %s: %v", *s.StackName(), err)
			}
		})
	}
}

// Synth must never need AWS: no context lookup may be left unresolved.
func TestSynthNeedsNoLookups(t *testing.T) {
	b := load(t)
	for _, m := range readManifest(t, b.dir).Missing {
		t.Errorf("synth wants a lookup (needs AWS credentials): %s", m.Key)
	}
}

func TestStacksAreBoundToTheirFleetsAccountAndRegion(t *testing.T) {
	b := load(t)
	for i, f := range b.sys.Fleets {
		for _, s := range []awscdk.Stack{f.Network.Stack, f.Addresses.Stack} {
			if *s.Account() != b.cfg.Fleets[i].Account || *s.Region() != b.cfg.Fleets[i].Region {
				t.Errorf("%s is in %s/%s, want %s/%s", *s.StackName(), *s.Account(), *s.Region(), b.cfg.Fleets[i].Account, b.cfg.Fleets[i].Region)
			}
		}
	}
}

// Every alarm of every stack notifies its own stack's alarm topic when it
// fires and when it recovers (an alarm without an action is only a
// console colour), and alarms.email is subscribed to every such topic.
// INSUFFICIENT_DATA notifies nobody: every new alarm starts there, and the
// alarms whose missing data matters treat it as breaching instead.
func TestEveryAlarmNotifies(t *testing.T) {
	b := load(t)
	tmpls := templates(t, b)
	total := 0
	for _, s := range allStacks(b) {
		name := *s.StackName()
		tmpl := tmpls[name]
		alarms := ofType(t, tmpl, "AWS::CloudWatch::Alarm")
		total += len(alarms)
		topics := ofType(t, tmpl, "AWS::SNS::Topic")
		for id, a := range alarms {
			p := props(a)
			for _, key := range []string{"AlarmActions", "OKActions"} {
				actions, _ := p[key].([]any)
				if len(actions) == 0 {
					t.Errorf("%s/%s: no %s; the alarm notifies nobody", name, id, key)
				}
				for _, action := range actions {
					ref, _ := action.(map[string]any)["Ref"].(string)
					if _, ok := topics[ref]; !ok {
						t.Errorf("%s/%s: %s %v is not an SNS topic of the stack", name, id, key, action)
					}
				}
			}
			if p["InsufficientDataActions"] != nil {
				t.Errorf("%s/%s: notifies on INSUFFICIENT_DATA", name, id)
			}
		}
		if len(alarms) == 0 {
			continue
		}
		subscribed := map[string]bool{}
		for _, sub := range ofType(t, tmpl, "AWS::SNS::Subscription") {
			p := props(sub)
			ref, _ := p["TopicArn"].(map[string]any)["Ref"].(string)
			if p["Protocol"] == "email" && p["Endpoint"] == testAlarmEmail {
				subscribed[ref] = true
			}
		}
		for id := range topics {
			if !subscribed[id] {
				t.Errorf("%s: alarm topic %s has no e-mail subscription for alarms.email", name, id)
			}
		}
	}
	t.Logf("%d alarms in %d stacks", total, len(allStacks(b)))
	if total == 0 {
		t.Fatal("no alarms found")
	}
}
