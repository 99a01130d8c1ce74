package awsstandin

// The IoT registry calls agentgate-admin's customer and agent subjects use,
// beyond ListThings/DescribeThing/DescribeEndpoint in standin.go, and
// iot-data DeleteConnection. REST paths are those of the AWS IoT API
// reference (https://docs.aws.amazon.com/iot/latest/apireference/), as the
// aws-sdk-go-v2 iot and iotdataplane clients send them. Behaviour follows
// the API pages:
//
//   - DeleteThingType: only a deprecated type, five minutes after its
//     deprecation (https://docs.aws.amazon.com/iot/latest/developerguide/delete-thing-types.html),
//     and not while things have it (API_DeleteThingType). The error code
//     AWS answers each refusal with is not documented: InvalidRequestException
//     here (unverified).
//   - DeleteCertificate: CertificateStateException (406) while ACTIVE,
//     DeleteConflictException (409) while a policy or thing is attached
//     (API_DeleteCertificate).
//   - DetachThingPrincipal "is asynchronous. It might take several seconds
//     for the detachment to propagate" (API_DetachThingPrincipal):
//     SetDetachLag makes DeleteCertificate still see a detached
//     certificate attached for a number of calls.
//   - DeleteThing: succeeds for a thing that does not exist (API_DeleteThing).
//     Refusing it while principals are attached (InvalidRequestException) is
//     this stand-in's choice: the API page does not say (unverified).
//   - UpdateCertificate: PENDING_TRANSFER and PENDING_ACTIVATION refused
//     (API_UpdateCertificate); any other change is accepted.
//   - DeleteConnection: ResourceNotFoundException (404) for a client ID
//     that is not connected (unverified).

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const standinARN = "arn:aws:iot:eu-west-1:111111111111:"

// iotControl is the registry state of the calls in this file; its zero
// value is ready (maps are made on first use, under mu).
type iotControl struct {
	mu         sync.Mutex
	now        func() time.Time
	types      map[string]*thingTypeState
	certs      map[string]*certState // by certificate ID
	principals map[string][]string   // thing → certificate ARNs
	connected  map[string]bool       // MQTT client IDs
	onDelete   func(clientID string) bool
	detachLag  int
	lagging    map[string]int // certificate ARN → DeleteCertificate calls still conflicting
}

type thingTypeState struct {
	created, deprecatedAt time.Time
	deprecated            bool
}

type certState struct {
	status   string
	policies []string
}

func (c *iotControl) init() {
	if c.types == nil {
		c.types = map[string]*thingTypeState{}
		c.certs = map[string]*certState{}
		c.principals = map[string][]string{}
		c.connected = map[string]bool{}
		c.lagging = map[string]int{}
	}
}

func (c *iotControl) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// CertificateARN is the ARN the stand-in gives certificate id.
func CertificateARN(id string) string { return standinARN + "cert/" + id }

// SetIoTClock sets the registry's clock (thing type creation and
// deprecation dates, the five-minute wait before DeleteThingType); nil
// restores time.Now.
func (a *AWS) SetIoTClock(now func() time.Time) {
	a.ctl.mu.Lock()
	a.ctl.now = now
	a.ctl.mu.Unlock()
}

// AddThingType registers a thing type (a customer), not deprecated.
func (a *AWS) AddThingType(name string) {
	a.ctl.mu.Lock()
	defer a.ctl.mu.Unlock()
	a.ctl.init()
	a.ctl.types[name] = &thingTypeState{created: a.ctl.clock()}
}

// ThingTypeState reports whether a thing type exists and is deprecated.
func (a *AWS) ThingTypeState(name string) (exists, deprecated bool) {
	a.ctl.mu.Lock()
	defer a.ctl.mu.Unlock()
	a.ctl.init()
	t, ok := a.ctl.types[name]
	return ok, ok && t.deprecated
}

// Enrol creates what fleet provisioning creates for one agent: the thing
// (of type customer), an ACTIVE certificate attached to it and the policy
// attached to the certificate. It returns the certificate ARN.
func (a *AWS) Enrol(thing, customer, certID, policy string) string {
	a.AddThing(thing, customer)
	arn := CertificateARN(certID)
	a.ctl.mu.Lock()
	defer a.ctl.mu.Unlock()
	a.ctl.init()
	a.ctl.certs[certID] = &certState{status: "ACTIVE", policies: []string{policy}}
	a.ctl.principals[thing] = append(a.ctl.principals[thing], arn)
	return arn
}

// CertificateStatus returns a certificate's status ("" if it does not exist).
func (a *AWS) CertificateStatus(id string) string {
	a.ctl.mu.Lock()
	defer a.ctl.mu.Unlock()
	a.ctl.init()
	if c, ok := a.ctl.certs[id]; ok {
		return c.status
	}
	return ""
}

// SetDetachLag makes the next n DeleteCertificate calls after each
// DetachThingPrincipal of a certificate still find it attached
// (DeleteConflictException), as AWS's asynchronous detachment may.
func (a *AWS) SetDetachLag(n int) {
	a.ctl.mu.Lock()
	a.ctl.detachLag = n
	a.ctl.mu.Unlock()
}

// HasThing reports whether the registry holds thing.
func (a *AWS) HasThing(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.things[name]
	return ok
}

// SetConnected marks an MQTT client ID connected (on) or not, for
// DeleteConnection.
func (a *AWS) SetConnected(clientID string, on bool) {
	a.ctl.mu.Lock()
	defer a.ctl.mu.Unlock()
	a.ctl.init()
	if on {
		a.ctl.connected[clientID] = true
	} else {
		delete(a.ctl.connected, clientID)
	}
}

// Connected reports whether clientID is marked connected.
func (a *AWS) Connected(clientID string) bool {
	a.ctl.mu.Lock()
	defer a.ctl.mu.Unlock()
	return a.ctl.connected[clientID]
}

// OnDeleteConnection installs f, called (outside the lock) for every
// DeleteConnection: a lab wires it to its broker, and f reports whether it
// disconnected a client (else only SetConnected's marks count).
func (a *AWS) OnDeleteConnection(f func(clientID string) bool) {
	a.ctl.mu.Lock()
	a.ctl.onDelete = f
	a.ctl.mu.Unlock()
}

// pathParam returns the unescaped path element after prefix, refusing
// another '/' inside it.
func pathParam(p, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(p, prefix)
	if !ok || rest == "" {
		return "", false
	}
	s, err := url.PathUnescape(rest)
	if err != nil || strings.Contains(s, "/") {
		return "", false
	}
	return s, true
}

// iotControlServe answers the calls of this file; false means the request
// is none of them.
func (a *AWS) iotControlServe(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.EscapedPath()
	switch {
	case p == "/thing-types" && r.Method == http.MethodGet:
		a.listThingTypes(w, r)
	case strings.HasPrefix(p, "/thing-types/") && strings.HasSuffix(p, "/deprecate") && r.Method == http.MethodPost:
		name, ok := pathParam(strings.TrimSuffix(p, "/deprecate"), "/thing-types/")
		if !ok {
			return false
		}
		a.deprecateThingType(w, r, name)
	case strings.HasPrefix(p, "/thing-types/"):
		name, ok := pathParam(p, "/thing-types/")
		if !ok {
			return false
		}
		a.thingType(w, r, name)
	case strings.HasPrefix(p, "/things/") && strings.HasSuffix(p, "/principals"):
		name, ok := pathParam(strings.TrimSuffix(p, "/principals"), "/things/")
		if !ok {
			return false
		}
		a.thingPrincipals(w, r, name)
	case strings.HasPrefix(p, "/things/") && r.Method == http.MethodDelete:
		name, ok := pathParam(p, "/things/")
		if !ok {
			return false
		}
		a.deleteThing(w, r, name)
	case strings.HasPrefix(p, "/certificates/"):
		id, ok := pathParam(p, "/certificates/")
		if !ok {
			return false
		}
		a.certificate(w, r, id)
	case strings.HasPrefix(p, "/attached-policies/") && r.Method == http.MethodPost:
		// The SDK leaves the '/' of the target ARN unescaped.
		target, err := url.PathUnescape(strings.TrimPrefix(p, "/attached-policies/"))
		if err != nil {
			return false
		}
		a.listAttachedPolicies(w, r, target)
	case strings.HasPrefix(p, "/target-policies/") && r.Method == http.MethodPost:
		policy, ok := pathParam(p, "/target-policies/")
		if !ok {
			return false
		}
		a.detachPolicy(w, r, policy)
	default:
		return false
	}
	return true
}

// operation returns the operation ops names for the request's method, or
// answers that there is no such operation and returns false.
func operation(w http.ResponseWriter, r *http.Request, ops map[string]string) (string, bool) {
	op, ok := ops[r.Method]
	if !ok {
		noSuchOperation(w, r)
	}
	return op, ok
}

// noSuchOperation answers a request no IoT operation serves.
func noSuchOperation(w http.ResponseWriter, r *http.Request) {
	jsonError(w, http.StatusNotFound, "ResourceNotFoundException", "no such operation "+r.Method+" "+r.URL.Path)
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func (a *AWS) typeJSON(name string, t *thingTypeState) map[string]any {
	md := map[string]any{"deprecated": t.deprecated, "creationDate": epoch(t.created)}
	if t.deprecated {
		md["deprecationDate"] = epoch(t.deprecatedAt)
	}
	return map[string]any{"thingTypeName": name, "thingTypeArn": standinARN + "thingtype/" + name,
		"thingTypeId": "tt-" + name, "thingTypeProperties": map[string]any{}, "thingTypeMetadata": md}
}

func (a *AWS) listThingTypes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !a.begin(w, r, "ListThingTypes", q.Get("thingTypeName")) {
		return
	}
	limit := 50
	if v, err := strconv.Atoi(q.Get("maxResults")); err == nil && v > 0 && v <= 250 {
		limit = v
	}
	start, _ := strconv.Atoi(q.Get("nextToken"))
	a.ctl.mu.Lock()
	a.ctl.init()
	var names []string
	for n := range a.ctl.types {
		if f := q.Get("thingTypeName"); f == "" || f == n {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := map[string]any{}
	list := []any{}
	start = min(max(start, 0), len(names))
	end := min(start+limit, len(names))
	for _, n := range names[start:end] {
		list = append(list, a.typeJSON(n, a.ctl.types[n]))
	}
	a.ctl.mu.Unlock()
	out["thingTypes"] = list
	if end < len(names) {
		out["nextToken"] = strconv.Itoa(end)
	}
	writeJSON(w, out)
}

func (a *AWS) thingType(w http.ResponseWriter, r *http.Request, name string) {
	op, ok := operation(w, r, map[string]string{
		http.MethodGet:    "DescribeThingType",
		http.MethodPost:   "CreateThingType",
		http.MethodDelete: "DeleteThingType",
	})
	if !ok {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	if !a.begin(w, r, op, name) {
		return
	}
	a.ctl.mu.Lock()
	a.ctl.init()
	t, exists := a.ctl.types[name]
	switch op {
	case "DescribeThingType":
		if !exists {
			a.ctl.mu.Unlock()
			jsonError(w, http.StatusNotFound, "ResourceNotFoundException", "Thing type "+name+" does not exist")
			return
		}
		out := a.typeJSON(name, t)
		a.ctl.mu.Unlock()
		writeJSON(w, out)
	case "CreateThingType":
		if exists {
			a.ctl.mu.Unlock()
			jsonError(w, http.StatusConflict, "ResourceAlreadyExistsException", "Thing type "+name+" already exists")
			return
		}
		a.ctl.types[name] = &thingTypeState{created: a.ctl.clock()}
		a.ctl.mu.Unlock()
		writeJSON(w, map[string]string{"thingTypeName": name, "thingTypeArn": standinARN + "thingtype/" + name, "thingTypeId": "tt-" + name})
	case "DeleteThingType":
		now := a.ctl.clock()
		a.ctl.mu.Unlock()
		if !exists {
			jsonError(w, http.StatusNotFound, "ResourceNotFoundException", "Thing type "+name+" does not exist")
			return
		}
		if !t.deprecated {
			jsonError(w, http.StatusBadRequest, "InvalidRequestException", "Thing type "+name+" is not deprecated")
			return
		}
		if now.Sub(t.deprecatedAt) < 5*time.Minute {
			jsonError(w, http.StatusBadRequest, "InvalidRequestException", "Thing type "+name+" was deprecated less than 5 minutes ago")
			return
		}
		a.mu.Lock()
		n := 0
		for _, tt := range a.things {
			if tt == name {
				n++
			}
		}
		a.mu.Unlock()
		if n > 0 {
			jsonError(w, http.StatusBadRequest, "InvalidRequestException", "Thing type "+name+" has things associated with it")
			return
		}
		a.ctl.mu.Lock()
		delete(a.ctl.types, name)
		a.ctl.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}
}

func (a *AWS) deprecateThingType(w http.ResponseWriter, r *http.Request, name string) {
	var in struct {
		UndoDeprecate bool `json:"undoDeprecate"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			jsonError(w, http.StatusBadRequest, "InvalidRequestException", err.Error())
			return
		}
	}
	if !a.begin(w, r, "DeprecateThingType", name) {
		return
	}
	a.ctl.mu.Lock()
	defer a.ctl.mu.Unlock()
	a.ctl.init()
	t, ok := a.ctl.types[name]
	if !ok {
		jsonError(w, http.StatusNotFound, "ResourceNotFoundException", "Thing type "+name+" does not exist")
		return
	}
	if in.UndoDeprecate {
		t.deprecated, t.deprecatedAt = false, time.Time{}
	} else if !t.deprecated {
		t.deprecated, t.deprecatedAt = true, a.ctl.clock()
	}
	w.WriteHeader(http.StatusOK)
}

func (a *AWS) thingPrincipals(w http.ResponseWriter, r *http.Request, thing string) {
	op, ok := operation(w, r, map[string]string{
		http.MethodGet:    "ListThingPrincipals",
		http.MethodDelete: "DetachThingPrincipal",
	})
	if !ok {
		return
	}
	if !a.begin(w, r, op, thing) {
		return
	}
	a.mu.Lock()
	_, exists := a.things[thing]
	a.mu.Unlock()
	if !exists {
		jsonError(w, http.StatusNotFound, "ResourceNotFoundException", "Thing "+thing+" cannot be found.")
		return
	}
	a.ctl.mu.Lock()
	defer a.ctl.mu.Unlock()
	a.ctl.init()
	if op == "ListThingPrincipals" {
		q := r.URL.Query()
		limit := 25
		if v, err := strconv.Atoi(q.Get("maxResults")); err == nil && v > 0 && v <= 250 {
			limit = v
		}
		all := a.ctl.principals[thing]
		start, _ := strconv.Atoi(q.Get("nextToken"))
		start = min(max(start, 0), len(all))
		end := min(start+limit, len(all))
		out := map[string]any{"principals": append([]string{}, all[start:end]...)}
		if end < len(all) {
			out["nextToken"] = strconv.Itoa(end)
		}
		writeJSON(w, out)
		return
	}
	principal := r.Header.Get("X-Amzn-Principal")
	if principal == "" {
		jsonError(w, http.StatusBadRequest, "InvalidRequestException", "principal is required")
		return
	}
	list := a.ctl.principals[thing]
	for i, p := range list {
		if p == principal {
			if a.ctl.detachLag > 0 {
				a.ctl.lagging[p] = a.ctl.detachLag
			}
			a.ctl.principals[thing] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(a.ctl.principals[thing]) == 0 {
		delete(a.ctl.principals, thing)
	}
	w.WriteHeader(http.StatusOK)
}

func (a *AWS) deleteThing(w http.ResponseWriter, r *http.Request, thing string) {
	if !a.begin(w, r, "DeleteThing", thing) {
		return
	}
	a.ctl.mu.Lock()
	a.ctl.init()
	attached := len(a.ctl.principals[thing])
	a.ctl.mu.Unlock()
	if attached > 0 {
		jsonError(w, http.StatusBadRequest, "InvalidRequestException", "Cannot delete thing "+thing+" while principals are attached")
		return
	}
	a.mu.Lock()
	delete(a.things, thing)
	a.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// attachedThings returns how many things certificate arn is attached to
// (caller holds ctl.mu).
func (c *iotControl) attachedThings(arn string) int {
	n := 0
	for _, ps := range c.principals {
		for _, p := range ps {
			if p == arn {
				n++
			}
		}
	}
	return n
}

func (a *AWS) certificate(w http.ResponseWriter, r *http.Request, id string) {
	op, ok := operation(w, r, map[string]string{
		http.MethodGet:    "DescribeCertificate",
		http.MethodPut:    "UpdateCertificate",
		http.MethodDelete: "DeleteCertificate",
	})
	if !ok {
		return
	}
	if !a.begin(w, r, op, id) {
		return
	}
	a.ctl.mu.Lock()
	defer a.ctl.mu.Unlock()
	a.ctl.init()
	c, ok := a.ctl.certs[id]
	if !ok {
		jsonError(w, http.StatusNotFound, "ResourceNotFoundException", "The certificate given in the request does not exist")
		return
	}
	arn := CertificateARN(id)
	switch op {
	case "DescribeCertificate":
		writeJSON(w, map[string]any{"certificateDescription": map[string]any{"certificateId": id, "certificateArn": arn, "status": c.status}})
	case "UpdateCertificate":
		switch s := r.URL.Query().Get("newStatus"); s {
		case "ACTIVE", "INACTIVE", "REVOKED":
			c.status = s
			w.WriteHeader(http.StatusOK)
		default:
			jsonError(w, http.StatusBadRequest, "InvalidRequestException", "newStatus "+s+" is not allowed")
		}
	case "DeleteCertificate":
		switch {
		case c.status == "ACTIVE":
			jsonError(w, http.StatusNotAcceptable, "CertificateStateException", "Certificate must be deactivated before deletion.")
		case a.ctl.lagging[arn] > 0:
			a.ctl.lagging[arn]--
			jsonError(w, http.StatusConflict, "DeleteConflictException", "Certificate policies or things must be detached before deletion.")
		case len(c.policies) > 0 || a.ctl.attachedThings(arn) > 0:
			jsonError(w, http.StatusConflict, "DeleteConflictException", "Certificate policies or things must be detached before deletion.")
		default:
			delete(a.ctl.certs, id)
			w.WriteHeader(http.StatusOK)
		}
	}
}

// certByARN returns the certificate whose ARN is arn (caller holds ctl.mu).
func (c *iotControl) certByARN(arn string) *certState {
	id, ok := strings.CutPrefix(arn, standinARN+"cert/")
	if !ok {
		return nil
	}
	return c.certs[id]
}

func (a *AWS) listAttachedPolicies(w http.ResponseWriter, r *http.Request, target string) {
	if !a.begin(w, r, "ListAttachedPolicies", target) {
		return
	}
	a.ctl.mu.Lock()
	defer a.ctl.mu.Unlock()
	a.ctl.init()
	c := a.ctl.certByARN(target)
	if c == nil {
		jsonError(w, http.StatusNotFound, "ResourceNotFoundException", "target "+target+" does not exist")
		return
	}
	list := []any{}
	for _, p := range c.policies {
		list = append(list, map[string]string{"policyName": p, "policyArn": standinARN + "policy/" + p})
	}
	writeJSON(w, map[string]any{"policies": list})
}

func (a *AWS) detachPolicy(w http.ResponseWriter, r *http.Request, policy string) {
	var in struct {
		Target string `json:"target"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
		jsonError(w, http.StatusBadRequest, "InvalidRequestException", err.Error())
		return
	}
	if !a.begin(w, r, "DetachPolicy", policy) {
		return
	}
	a.ctl.mu.Lock()
	defer a.ctl.mu.Unlock()
	a.ctl.init()
	c := a.ctl.certByARN(in.Target)
	if c == nil {
		jsonError(w, http.StatusNotFound, "ResourceNotFoundException", "target "+in.Target+" does not exist")
		return
	}
	for i, p := range c.policies {
		if p == policy {
			c.policies = append(c.policies[:i:i], c.policies[i+1:]...)
			break
		}
	}
	w.WriteHeader(http.StatusOK)
}

// deleteConnection serves iot-data DeleteConnection:
// DELETE /connections/{clientId}?cleanSession=&preventWillMessage=.
func (a *AWS) deleteConnection(w http.ResponseWriter, r *http.Request) {
	id, ok := pathParam(r.URL.EscapedPath(), "/connections/")
	if r.Method != http.MethodDelete || !ok {
		noSuchOperation(w, r)
		return
	}
	if !a.begin(w, r, "DeleteConnection", id) {
		return
	}
	a.ctl.mu.Lock()
	a.ctl.init()
	on := a.ctl.connected[id]
	delete(a.ctl.connected, id)
	f := a.ctl.onDelete
	a.ctl.mu.Unlock()
	if f != nil && f(id) {
		on = true
	}
	if !on {
		jsonError(w, http.StatusNotFound, "ResourceNotFoundException", "client "+id+" is not connected")
		return
	}
	w.WriteHeader(http.StatusOK)
}
