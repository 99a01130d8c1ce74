package main

// The agent subject: an agent is an IoT thing named by its agent ID, typed
// by its customer, with the certificate enrolment attached to it and the
// agent policy attached to that certificate (internal/deploy/agentpolicy
// provisioningtemplate.go). Its MQTT client ID is its thing name
// (agent/session.go), its retained configuration is on
// topics.ConfigTopic(customer, agent).
//
// revoke cuts an agent off and keeps its records: the certificate is set
// REVOKED, not INACTIVE, because an offboarded or compromised agent must
// never come back with the same key by a status flip (re-admitting it is a
// new enrolment and a new certificate); both statuses refuse connections
// and the credentials provider, and AWS disconnects devices "within a few
// minutes of updating a certificate from the ACTIVE state to any other
// state" (https://docs.aws.amazon.com/iot/latest/apireference/API_UpdateCertificate.html).
// The tool does not wait for that: it cuts the live connection at once
// with iot-data DeleteConnection (clean session) and deletes the retained
// configuration with an empty retained publish.
//
// delete is revoke plus removing what enrolment created: every policy
// detached from the certificate, the certificate detached from the thing
// and deleted (AWS refuses to delete an ACTIVE or attached certificate:
// https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteCertificate.html),
// then the thing. Both are idempotent: a re-run skips what is done.
//
// Both also act on the agent ID's ownership record in the token table
// (internal/tokenstore ownership.go), which the pre-provisioning hook
// claims before it admits an enrolment: revoke marks it revoked first, so
// the hook refuses every later enrolment of that agent ID (a repeat with
// the install token that admitted it included); delete removes it last,
// once the thing is gone, so the ID may be enrolled again with a new
// token. Neither runs without the token table (--token-table or
// $AGENTGATE_TOKEN_TABLE).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"

	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/tokenstore"
)

func init() {
	register("agent", subject{summary: "agents (IoT things): list [--online], show, revoke, delete", run: runAgent})
}

const agentUsage = `usage: agentgate-admin agent <verb> [flags]

  list   [--customer C] [--online] [--table T]  the customer's agents (every customer's without
                                                --customer); --online (or --table) joins the
                                                presence table
  show   C AGENT [--table T]                    thing, certificates and their status, presence
  revoke C AGENT                                agent ID marked revoked (no enrolment of it
                                                again), certificate REVOKED, live connection
                                                cut, retained config cleared; the thing stays
  revoke --customer C (--all | --from FILE)     the same for every agent of C, or for the
                                                agent IDs in FILE (one a line, # comments)
  delete C AGENT | --customer C (--all | --from FILE)
                                                revoke, then detach the policy and the
                                                certificate, delete the certificate and the
                                                thing, free the agent ID for a new token

Bulk forms run --parallel N (default 4) agents at once, every IoT call held to its
documented rate (docs/identity.md), throttled calls retried with backoff; progress on
stderr. Both verbs are idempotent and need the token table: --token-table (default
$` + TableEnv + `). --table (list, show) defaults to $` + EnvPresenceTable + `.
Add --json for JSON output. Endpoints: AWS_ENDPOINT_URL_IOT, AWS_ENDPOINT_URL_IOT_DATA_PLANE
(else iot:DescribeEndpoint), AWS_ENDPOINT_URL_DYNAMODB.
`

// Bounds of a --from file.
const (
	maxAgentFileBytes = 8 << 20
	maxBulkAgents     = 100_000
	maxParallel       = 32
)

// progressEvery is how many agents pass between progress lines (the first
// and last are always printed).
var progressEvery = 100

// revokedStatus is the status revoke gives certificates (see above).
const revokedStatus = iottypes.CertificateStatusRevoked

// agentRow is one agent as printed.
type agentRow struct {
	Customer     string    `json:"customer"`
	Agent        string    `json:"agent"`
	Connected    *bool     `json:"connected,omitempty"`
	Since        string    `json:"since,omitempty"`
	LastReason   string    `json:"lastDisconnectReason,omitempty"`
	Version      string    `json:"clientVersion,omitempty"`
	Certificates []certRow `json:"certificates,omitempty"`
	// Result and the fields below are set by revoke and delete.
	Result     string `json:"result,omitempty"`
	Connection string `json:"connection,omitempty"`
	Config     string `json:"config,omitempty"`
	Error      string `json:"error,omitempty"`
}

// certRow is one certificate of an agent.
type certRow struct {
	ID     string `json:"id"`
	ARN    string `json:"arn"`
	Status string `json:"status"`
}

type agentFlags struct {
	customer, table, from string
	tokenTable            string
	online, all, asJSON   bool
	parallel              int
	// pending are the agents --all found only by their ownership record
	// (admitted, no thing yet): revoking one marks its enrolment revoked.
	pending map[string]bool
}

func runAgent(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(env.stderr, agentUsage)
		if len(args) == 0 {
			return usageError{"agent: no verb"}
		}
		return nil
	}
	verb := args[0]
	var f agentFlags
	fs := flag.NewFlagSet("agentgate-admin agent "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&f.asJSON, "json", false, "JSON output")
	switch verb {
	case "list":
		fs.StringVar(&f.customer, "customer", "", "customer ID")
		fs.BoolVar(&f.online, "online", false, "only connected agents (presence table)")
		fs.StringVar(&f.table, "table", "", "presence table")
	case "show":
		fs.StringVar(&f.table, "table", "", "presence table")
	case "revoke", "delete":
		fs.StringVar(&f.customer, "customer", "", "customer ID (bulk forms)")
		fs.BoolVar(&f.all, "all", false, "every agent of --customer")
		fs.StringVar(&f.from, "from", "", "file of agent IDs, one a line")
		fs.IntVar(&f.parallel, "parallel", 4, "agents processed at once (1..32)")
		fs.StringVar(&f.tokenTable, "token-table", "", "token table (default $"+TableEnv+")")
	default:
		return usageError{fmt.Sprintf("agent: unknown verb %q\n\n%s", verb, agentUsage)}
	}
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return usageError{err.Error()}
	}
	if f.table == "" {
		f.table, _ = env.getenv(EnvPresenceTable)
	}
	var agents []string
	switch verb {
	case "list":
		if len(pos) > 0 {
			return usageError{fmt.Sprintf("unexpected arguments %q", pos)}
		}
		if f.customer != "" {
			if err := topics.ValidateCustomerID(f.customer); err != nil {
				return usageError{"--customer: " + err.Error()}
			}
		}
		if f.online && f.table == "" {
			return usageError{"--online needs the presence table: --table or $" + EnvPresenceTable}
		}
	case "show":
		if len(pos) != 2 {
			return usageError{"usage: agentgate-admin agent show CUSTOMER AGENT"}
		}
		f.customer, agents = pos[0], pos[1:]
	case "revoke", "delete":
		agents, err = bulkTargets(&f, pos)
		if err != nil {
			return usageError{err.Error()}
		}
		if f.tokenTable == "" {
			f.tokenTable, _ = env.getenv(TableEnv)
		}
		if f.tokenTable == "" {
			return usageError{"agent " + verb + " needs the token table (it marks the agent ID in it): pass --token-table or set " + TableEnv}
		}
	}
	if err := topics.ValidateCustomerID(f.customer); err != nil && verb != "list" {
		return usageError{err.Error()}
	}
	for _, ag := range agents {
		if err := topics.ValidateThingName(ag); err != nil {
			return usageError{err.Error()}
		}
	}
	a, err := newIoTAdmin(ctx, env)
	if err != nil {
		return err
	}
	switch verb {
	case "list":
		return a.agentList(ctx, f)
	case "show":
		return a.agentShow(ctx, f, agents[0])
	}
	a.tokens = &tokenstore.Store{DB: a.dynamo(), Table: f.tokenTable}
	if f.all {
		if agents, err = a.listThings(ctx, f.customer); err != nil {
			return err
		}
		// And the agents admitted for the customer whose enrolment has not
		// created a thing (yet): a repeat could otherwise finish one after
		// the sweep.
		admitted, err := a.tokens.AgentsOf(ctx, f.customer)
		if err != nil {
			return err
		}
		n := len(agents)
		agents = union(agents, admitted)
		f.pending = map[string]bool{}
		for _, ag := range agents[n:] {
			f.pending[ag] = true
		}
	}
	return a.agentBulk(ctx, f, verb, agents)
}

// union is a followed by b's names not in a.
func union(a, b []string) []string {
	seen := make(map[string]bool, len(a))
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			seen[x] = true
			a = append(a, x)
		}
	}
	return a
}

// bulkTargets returns the agents a revoke or delete names: CUSTOMER AGENT,
// or --customer with --all or --from.
func bulkTargets(f *agentFlags, pos []string) ([]string, error) {
	if f.parallel < 1 || f.parallel > maxParallel {
		return nil, fmt.Errorf("--parallel %d: 1..%d", f.parallel, maxParallel)
	}
	bulk := f.all || f.from != ""
	switch {
	case f.all && f.from != "":
		return nil, errors.New("--all and --from exclude each other")
	case bulk && len(pos) > 0:
		return nil, fmt.Errorf("--all/--from take no CUSTOMER AGENT arguments (got %q)", pos)
	case bulk && f.customer == "":
		return nil, errors.New("--all and --from need --customer")
	case !bulk && len(pos) != 2:
		return nil, errors.New("name one agent (CUSTOMER AGENT) or use --customer C with --all or --from FILE")
	case !bulk && f.customer != "":
		return nil, errors.New("--customer is for --all/--from; name one agent as CUSTOMER AGENT")
	case !bulk:
		f.customer = pos[0]
		return pos[1:], nil
	case f.all:
		return nil, nil
	}
	return readAgentFile(f.from)
}

// readAgentFile reads agent IDs, one a line; blank lines and lines starting
// with # are skipped, duplicates dropped. Bounded in bytes and count.
func readAgentFile(path string) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	body, err := io.ReadAll(io.LimitReader(fh, maxAgentFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxAgentFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxAgentFileBytes)
	}
	return parseAgentList(path, body)
}

// parseAgentList parses a --from file's body (name is for messages).
func parseAgentList(name string, body []byte) ([]string, error) {
	if len(body) > maxAgentFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxAgentFileBytes)
	}
	seen := map[string]bool{}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 4096), 4096)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := topics.ValidateThingName(line); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		if !seen[line] {
			seen[line] = true
			if out = append(out, line); len(out) > maxBulkAgents {
				return nil, fmt.Errorf("%s names more than %d agents", name, maxBulkAgents)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v (lines are at most 4096 bytes)", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s names no agent", name)
	}
	return out, nil
}

func (a *iotAdmin) agentList(ctx context.Context, f agentFlags) error {
	var rows []agentRow
	if f.customer != "" {
		names, err := a.listThings(ctx, f.customer)
		if err != nil {
			return err
		}
		for _, n := range names {
			rows = append(rows, agentRow{Customer: f.customer, Agent: n})
		}
	} else {
		all, err := a.listAllAgents(ctx)
		if err != nil {
			return err
		}
		rows = all
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Customer != rows[j].Customer {
			return rows[i].Customer < rows[j].Customer
		}
		return rows[i].Agent < rows[j].Agent
	})
	joined := f.table != ""
	if joined {
		// One presence Query per customer listed, through the reader
		// presence list uses.
		pres := map[string]map[string]presenceRow{}
		for _, r := range rows {
			if _, done := pres[r.Customer]; done {
				continue
			}
			list, err := listPresence(ctx, a.dynamo(), f.table, r.Customer, false)
			if err != nil {
				return err
			}
			pres[r.Customer] = map[string]presenceRow{}
			for _, p := range list {
				pres[r.Customer][p.Thing] = p
			}
		}
		kept := rows[:0]
		for _, r := range rows {
			p := pres[r.Customer][r.Agent]
			r.Connected, r.Since, r.LastReason, r.Version = aws.Bool(p.Connected), p.Since, p.LastDisconnectReason, p.ClientVersion
			if !f.online || p.Connected {
				kept = append(kept, r)
			}
		}
		rows = kept
	}
	if rows == nil {
		rows = []agentRow{}
	}
	header := []string{"CUSTOMER", "AGENT"}
	if joined {
		header = append(header, "CONNECTED", "SINCE", "LAST DISCONNECT", "VERSION")
	}
	lines := make([][]string, 0, len(rows))
	for _, r := range rows {
		l := []string{r.Customer, r.Agent}
		if joined {
			l = append(l, strconv.FormatBool(*r.Connected), r.Since, r.LastReason, r.Version)
		}
		lines = append(lines, l)
	}
	return printRows(a.env.stdout, f.asJSON, rows, header, lines)
}

// listAllAgents lists every thing whose type is a customer ID (ListThings
// without a type filter); things without a type or of another type are
// not agentgate agents and are skipped.
func (a *iotAdmin) listAllAgents(ctx context.Context) ([]agentRow, error) {
	var rows []agentRow
	var next *string
	for {
		out, err := call(ctx, a, "ListThings", func(ctx context.Context) (*iot.ListThingsOutput, error) {
			return a.iot.ListThings(ctx, &iot.ListThingsInput{MaxResults: aws.Int32(250), NextToken: next})
		})
		if err != nil {
			return nil, err
		}
		for _, t := range out.Things {
			c, n := aws.ToString(t.ThingTypeName), aws.ToString(t.ThingName)
			if topics.ValidateCustomerID(c) != nil || topics.ValidateThingName(n) != nil {
				continue
			}
			if rows = append(rows, agentRow{Customer: c, Agent: n}); len(rows) > maxListed {
				return nil, fmt.Errorf("more than %d agents: refusing to list them all", maxListed)
			}
		}
		if next = out.NextToken; aws.ToString(next) == "" {
			return rows, nil
		}
	}
}

// errNoAgent is returned for an agent whose thing does not exist.
var errNoAgent = errors.New("no such agent")

// ownedThing checks that agent is a thing of customer's type: an operator
// naming the wrong customer never touches another customer's agent.
func (a *iotAdmin) ownedThing(ctx context.Context, customer, agent string) error {
	out, err := call(ctx, a, "DescribeThing", func(ctx context.Context) (*iot.DescribeThingOutput, error) {
		return a.iot.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(agent)})
	})
	if errorCode(err) == "ResourceNotFoundException" {
		return fmt.Errorf("%w: %s", errNoAgent, agent)
	}
	if err != nil {
		return err
	}
	if t := aws.ToString(out.ThingTypeName); t != customer {
		return fmt.Errorf("agent %s is not customer %s's (its thing type is %q): refusing", agent, customer, t)
	}
	return nil
}

// certificates returns the certificate principals of thing with their status.
func (a *iotAdmin) certificates(ctx context.Context, thing string) ([]certRow, error) {
	var arns []string
	var next *string
	for {
		out, err := call(ctx, a, "ListThingPrincipals", func(ctx context.Context) (*iot.ListThingPrincipalsOutput, error) {
			return a.iot.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String(thing), MaxResults: aws.Int32(25), NextToken: next})
		})
		if err != nil {
			return nil, err
		}
		arns = append(arns, out.Principals...)
		if len(arns) > 1000 {
			return nil, fmt.Errorf("thing %s has more than 1000 principals", thing)
		}
		if next = out.NextToken; aws.ToString(next) == "" {
			break
		}
	}
	var certs []certRow
	for _, arn := range arns {
		id := certificateID(arn)
		if id == "" {
			continue
		}
		out, err := call(ctx, a, "DescribeCertificate", func(ctx context.Context) (*iot.DescribeCertificateOutput, error) {
			return a.iot.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
		})
		if err != nil {
			return nil, err
		}
		st := ""
		if out.CertificateDescription != nil {
			st = string(out.CertificateDescription.Status)
		}
		certs = append(certs, certRow{ID: id, ARN: arn, Status: st})
	}
	return certs, nil
}

func (a *iotAdmin) agentShow(ctx context.Context, f agentFlags, agent string) error {
	if err := a.ownedThing(ctx, f.customer, agent); err != nil {
		return err
	}
	certs, err := a.certificates(ctx, agent)
	if err != nil {
		return err
	}
	r := agentRow{Customer: f.customer, Agent: agent, Certificates: certs}
	if f.table != "" {
		// The customer's presence partition through the same reader as
		// agent list and presence list (one Query, bounded).
		list, err := listPresence(ctx, a.dynamo(), f.table, f.customer, false)
		if err != nil {
			return err
		}
		r.Connected = aws.Bool(false)
		for _, p := range list {
			if p.Thing == agent {
				r.Connected, r.Since, r.LastReason, r.Version = aws.Bool(p.Connected), p.Since, p.LastDisconnectReason, p.ClientVersion
			}
		}
	}
	connected := "unknown (no presence table)"
	if r.Connected != nil {
		connected = strconv.FormatBool(*r.Connected)
	}
	var lines [][]string
	if len(certs) == 0 {
		lines = append(lines, []string{agent, "-", "-", connected, r.Since, r.Version})
	}
	for _, c := range certs {
		lines = append(lines, []string{agent, c.ID, c.Status, connected, r.Since, r.Version})
	}
	return printRows(a.env.stdout, f.asJSON, []agentRow{r}, []string{"AGENT", "CERTIFICATE", "STATUS", "CONNECTED", "SINCE", "VERSION"}, lines)
}

// revoke cuts one agent off (see the file comment).
func (a *iotAdmin) revoke(ctx context.Context, customer, agent string) (agentRow, error) {
	r := agentRow{Customer: customer, Agent: agent}
	owned := a.ownedThing(ctx, customer, agent)
	if owned != nil && !errors.Is(owned, errNoAgent) {
		return r, owned
	}
	if owned != nil {
		// No thing: an enrolment admitted but not completed still has an
		// ownership record, and must not complete on a repeat.
		_, pending, err := a.tokens.Owner(ctx, agent)
		if err == nil && pending {
			err = a.tokens.RevokeAgent(ctx, customer, agent)
			owned = fmt.Errorf("%w (its admitted enrolment is marked revoked)", owned)
		}
		return r, errors.Join(owned, err)
	}
	// First: no enrolment of this agent ID is admitted from now on.
	if err := a.tokens.RevokeAgent(ctx, customer, agent); err != nil {
		return r, err
	}
	certs, err := a.certificates(ctx, agent)
	if err != nil {
		return r, err
	}
	for i, c := range certs {
		if c.Status == string(revokedStatus) {
			continue
		}
		if _, err := call(ctx, a, "UpdateCertificate", func(ctx context.Context) (*iot.UpdateCertificateOutput, error) {
			return a.iot.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(c.ID), NewStatus: revokedStatus})
		}); err != nil {
			return r, err
		}
		certs[i].Status = string(revokedStatus)
	}
	r.Certificates = certs
	data, err := a.dataPlane(ctx)
	if err != nil {
		return r, err
	}
	_, err = call(ctx, a, "DeleteConnection", func(ctx context.Context) (*iotdataplane.DeleteConnectionOutput, error) {
		return data.DeleteConnection(ctx, &iotdataplane.DeleteConnectionInput{ClientId: aws.String(agent), CleanSession: true})
	})
	switch {
	case err == nil:
		r.Connection = "cut"
	case errorCode(err) == "ResourceNotFoundException":
		r.Connection = "not connected"
	default:
		return r, err
	}
	topic := topics.ConfigTopic(customer, agent)
	if _, err := call(ctx, a, "Publish", func(ctx context.Context) (*iotdataplane.PublishOutput, error) {
		// "Publishing an empty (null) payload with retain = true deletes
		// the retained message" (iot-data Publish API reference).
		return data.Publish(ctx, &iotdataplane.PublishInput{Topic: aws.String(topic), Qos: 1, Retain: true})
	}); err != nil {
		return r, err
	}
	r.Config, r.Result = "cleared", "revoked"
	return r, nil
}

// remove revokes one agent and deletes its certificates and thing.
func (a *iotAdmin) remove(ctx context.Context, customer, agent string) (agentRow, error) {
	r, err := a.revoke(ctx, customer, agent)
	if errors.Is(err, errNoAgent) {
		if err := a.tokens.DeleteAgent(ctx, customer, agent); err != nil {
			return r, err
		}
		r.Result = "already deleted"
		return r, nil
	}
	if err != nil {
		return r, err
	}
	for _, c := range r.Certificates {
		arn := c.ARN
		pols, err := call(ctx, a, "ListAttachedPolicies", func(ctx context.Context) (*iot.ListAttachedPoliciesOutput, error) {
			return a.iot.ListAttachedPolicies(ctx, &iot.ListAttachedPoliciesInput{Target: aws.String(arn), PageSize: aws.Int32(250)})
		})
		if err != nil {
			return r, err
		}
		for _, p := range pols.Policies {
			if _, err := call(ctx, a, "DetachPolicy", func(ctx context.Context) (*iot.DetachPolicyOutput, error) {
				return a.iot.DetachPolicy(ctx, &iot.DetachPolicyInput{PolicyName: p.PolicyName, Target: aws.String(arn)})
			}); err != nil {
				return r, err
			}
		}
		if _, err := call(ctx, a, "DetachThingPrincipal", func(ctx context.Context) (*iot.DetachThingPrincipalOutput, error) {
			return a.iot.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String(agent), Principal: aws.String(arn)})
		}); err != nil {
			return r, err
		}
		if err := a.deleteCertificate(ctx, c.ID); err != nil {
			// A re-run no longer finds the certificate through the thing.
			return r, fmt.Errorf("certificate %s is detached and %s but was not deleted (%w); "+
				"delete it with: aws iot delete-certificate --certificate-id %s", c.ID, revokedStatus, err, c.ID)
		}
	}
	if _, err := call(ctx, a, "DeleteThing", func(ctx context.Context) (*iot.DeleteThingOutput, error) {
		return a.iot.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String(agent)})
	}); err != nil {
		return r, err
	}
	if err := a.tokens.DeleteAgent(ctx, customer, agent); err != nil {
		return r, err
	}
	r.Result = "deleted"
	return r, nil
}

// deleteConflictAttempts bounds DeleteCertificate retries on
// DeleteConflictException: DetachThingPrincipal is asynchronous, so a
// delete right after it may still see the thing attached (unverified how
// long it takes: "several seconds", API_DetachThingPrincipal). 8 attempts
// wait about 25 s in all.
var deleteConflictAttempts = 8

func (a *iotAdmin) deleteCertificate(ctx context.Context, id string) error {
	for attempt := 0; ; attempt++ {
		_, err := call(ctx, a, "DeleteCertificate", func(ctx context.Context) (*iot.DeleteCertificateOutput, error) {
			return a.iot.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id)})
		})
		if err == nil || errorCode(err) == "ResourceNotFoundException" {
			return nil
		}
		if errorCode(err) != "DeleteConflictException" || attempt+1 >= deleteConflictAttempts {
			return err
		}
		if err := sleepCtx(ctx, retryBase<<attempt); err != nil {
			return err
		}
	}
}

// agentBulk runs revoke or delete over agents, f.parallel at a time, with
// progress on stderr; it prints every agent's row and fails if any failed.
func (a *iotAdmin) agentBulk(ctx context.Context, f agentFlags, verb string, agents []string) error {
	op := a.revoke
	if verb == "delete" {
		op = a.remove
	}
	rows := make([]agentRow, len(agents))
	bulk := len(agents) > 1 || f.all || f.from != ""
	var mu sync.Mutex
	done, failed := 0, 0
	start := time.Now()
	report := func() {
		fmt.Fprintf(a.env.stderr, "agent %s: %d/%d done, %d failed, %d throttled or failed calls retried, %s\n",
			verb, done, len(agents), failed, a.retries.Load(), time.Since(start).Round(time.Second))
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(f.parallel, max(len(agents), 1)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				r, err := op(ctx, f.customer, agents[i])
				r.Customer, r.Agent = f.customer, agents[i]
				if err != nil && verb == "revoke" && f.pending[agents[i]] && errors.Is(err, errNoAgent) {
					// Found by its ownership record alone: revoke marked
					// the admitted enrolment revoked; there is no thing.
					r.Result, err = "enrolment revoked (no thing)", nil
				}
				if err != nil {
					r.Result, r.Error = "failed", err.Error()
				}
				mu.Lock()
				rows[i] = r
				done++
				if err != nil {
					failed++
				}
				if bulk && (done == 1 || done%progressEvery == 0) && done != len(agents) {
					report()
				}
				mu.Unlock()
			}
		}()
	}
	for i := range agents {
		select {
		case work <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	if bulk {
		report()
	}
	if done > failed {
		fmt.Fprintln(a.env.stderr, "note: an agent on the SigV4/WebSocket path may reconnect with role credentials issued before the revocation until they expire (docs/identity.md, \"Limit of revocation\")")
	}
	var lines [][]string
	var out []agentRow
	for _, r := range rows {
		if r.Agent == "" { // not started: interrupted
			continue
		}
		out = append(out, r)
		lines = append(lines, []string{r.Agent, r.Result, strconv.Itoa(len(r.Certificates)), r.Connection, r.Config, r.Error})
	}
	if out == nil {
		out = []agentRow{}
	}
	if err := printRows(a.env.stdout, f.asJSON, out, []string{"AGENT", "RESULT", "CERTIFICATES", "CONNECTION", "CONFIG", "ERROR"}, lines); err != nil {
		return err
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted after %d of %d agents: %w", done, len(agents), ctx.Err())
	case failed == 1 && len(agents) == 1:
		return errors.New(rows[0].Error)
	case failed > 0:
		return fmt.Errorf("%d of %d agents failed (see ERROR); re-running is safe", failed, len(agents))
	}
	return nil
}
