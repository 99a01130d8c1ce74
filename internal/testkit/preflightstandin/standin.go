// Package preflightstandin serves a local stand-in of the read-only AWS APIs
// preflight calls, each in its service's real wire protocol, so tests run
// the real aws-sdk-go-v2 clients end to end against it:
//
//   - EC2 (EC2 query protocol: form-encoded POST, XML answers, errors as
//     <Response><Errors><Error><Code>): DescribeAddresses,
//     DescribeVpcEndpointServices (Amazon EC2 API Reference, the two
//     operations' pages and "Error codes for the Amazon EC2 API");
//   - Service Quotas (AWS JSON 1.1: X-Amz-Target, errors with __type):
//     GetServiceQuota, GetAWSDefaultServiceQuota (Service Quotas API
//     Reference);
//   - SSM (AWS JSON 1.1): GetParameter (AWS Systems Manager API Reference);
//   - IoT (REST-JSON: errors named by the X-Amzn-ErrorType header):
//     GetV2LoggingOptions (GET /v2LoggingOptions),
//     DescribeAccountAuditConfiguration (GET /audit/configuration),
//     DescribeEndpoint (GET /endpoint?endpointType=) (AWS IoT API Reference);
//   - Route 53 (REST-XML: <ErrorResponse><Error><Code>): GetHostedZone
//     (GET /2013-04-01/hostedzone/{Id}) (Amazon Route 53 API Reference);
//   - STS and CloudFormation (AWS query protocol: form-encoded POST, XML
//     answers, errors as <ErrorResponse><Error><Code>): GetCallerIdentity,
//     ListStackResources (AWS STS and AWS CloudFormation API References).
//
// One server answers every service: it reads the service and region from
// the request's SigV4 credential scope, as AWS's endpoints are per service
// and region. Faults (denied, throttled, truncated, garbage, oversize) are
// set per operation. It is test support: only tests import it.
package preflightstandin

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Fault replaces an operation's real answer.
type Fault string

// The faults an operation can be given.
const (
	// Denied answers the service's access-denied error (STS, which no
	// policy can deny, answers InvalidClientTokenId instead), with the
	// message of an implicit deny: no identity-based policy allows the
	// action.
	Denied Fault = "denied"
	// DeniedExplicitly is Denied with the message of an explicit Deny in
	// the caller's identity-based policy.
	DeniedExplicitly Fault = "denied-explicitly"
	// DeniedBySCP is Denied with the message of a service control policy's
	// deny.
	DeniedBySCP Fault = "denied-by-scp"
	// Throttled answers the service's throttling error on every attempt.
	Throttled Fault = "throttled"
	// Truncated answers 200 with the first half of the real document.
	Truncated Fault = "truncated"
	// Garbage answers 200 with a body in the wrong format altogether.
	Garbage Fault = "garbage"
	// Oversize answers 200 with the real document padded past 9 MiB.
	Oversize Fault = "oversize"
)

// Address is one Elastic IP.
type Address struct {
	PublicIP, AllocationID string
	// Domain is "vpc" (the default) or "standard".
	Domain string
	Tags   map[string]string
}

// StackResource is one resource of a CloudFormation stack.
type StackResource struct {
	LogicalID, Type, Status string
}

// Logging is the account's IoT v2 logging options.
type Logging struct {
	RoleArn, DefaultLogLevel string
	DisableAllLogs           bool
}

// Region is one region's state of the caller's account.
type Region struct {
	// Addresses are the allocated Elastic IPs.
	Addresses []Address
	// EIPQuota is the applied EC2-VPC Elastic IPs quota; nil answers
	// NoSuchResourceException (no applied value).
	EIPQuota *float64
	// DefaultEIPQuota is what GetAWSDefaultServiceQuota answers.
	DefaultEIPQuota float64
	// EndpointServices maps a VPC endpoint service name to its zones; a
	// name not in the map answers InvalidServiceName.
	EndpointServices map[string][]string
	// Parameters are SSM parameters by name.
	Parameters map[string]string
	// Logging is nil when logging was never configured (NotConfiguredException).
	Logging *Logging
	// AuditRoleArn is the Device Defender audit role; "" = not configured.
	AuditRoleArn string
	// Stacks maps a stack name to its resources.
	Stacks map[string][]StackResource
	// Endpoints maps a DescribeEndpoint type to its address.
	Endpoints map[string]string
}

// HostedZone is one Route 53 hosted zone.
type HostedZone struct {
	ID, Name string
	Private  bool
}

// Server is a running stand-in.
type Server struct {
	// URL is the endpoint to give the SDK as BaseEndpoint.
	URL string
	// Account and CallerArn are what GetCallerIdentity answers.
	Account, CallerArn string
	// StackPageSize is how many resources a ListStackResources page holds.
	StackPageSize int

	srv     *httptest.Server
	mu      sync.Mutex
	regions map[string]*Region
	zones   map[string]HostedZone
	faults  map[string]Fault
	answers map[string][]byte
	calls   map[string]int
}

// Start starts a stand-in on 127.0.0.1 for account; Close stops it.
func Start(account string) *Server {
	s := &Server{
		Account:       account,
		CallerArn:     "arn:aws:iam::" + account + ":user/preflight",
		StackPageSize: 100,
		regions:       map[string]*Region{},
		zones:         map[string]HostedZone{},
		faults:        map[string]Fault{},
		answers:       map[string][]byte{},
		calls:         map[string]int{},
	}
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Region returns the state of region, created empty on first use. Set it up
// before the client runs.
func (s *Server) Region(name string) *Region {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.regionLocked(name)
}

// AddHostedZone adds a hosted zone.
func (s *Server) AddHostedZone(z HostedZone) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zones[z.ID] = z
}

// RemoveHostedZone removes a hosted zone.
func (s *Server) RemoveHostedZone(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.zones, id)
}

// SetFault makes operation op (its IAM action, e.g. "ec2:DescribeAddresses")
// answer with f; "" clears it.
func (s *Server) SetFault(op string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == "" {
		delete(s.faults, op)
	} else {
		s.faults[op] = f
	}
}

// SetAnswer makes operation op answer 200 with exactly body (whatever it
// holds); nil clears it. Faults take precedence.
func (s *Server) SetAnswer(op string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if body == nil {
		delete(s.answers, op)
	} else {
		s.answers[op] = body
	}
}

// Calls returns how many requests operation op received.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// TotalCalls returns how many requests the server received.
func (s *Server) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

// AWSConfig returns a configuration for clients of this stand-in: static
// credentials, BaseEndpoint, and a standard retryer with maxAttempts
// attempts, no backoff delay and no retry quota, so a throttled operation
// is retried exactly maxAttempts times and the test stays fast.
func (s *Server) AWSConfig(maxAttempts int) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDPREFLIGHT", "secret", ""),
		BaseEndpoint: aws.String(s.URL),
		HTTPClient:   &http.Client{Timeout: 10 * time.Second},
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

// maxRequestBytes bounds a request body.
const maxRequestBytes = 1 << 20

// scopeRe reads service and region from a SigV4 Authorization header:
// "Credential=AKID/20240101/eu-west-1/ec2/aws4_request".
var scopeRe = regexp.MustCompile(`Credential=[^/]+/[0-9]{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request`)

// request is one decoded call.
type request struct {
	service, region string
	form            url.Values // query-protocol parameters
	target          string     // X-Amz-Target
	body            []byte
	http            *http.Request
}

// ServeHTTP answers one signed AWS request in its service's protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	body, err := io.ReadAll(io.LimitReader(hr.Body, maxRequestBytes+1))
	if err != nil || len(body) > maxRequestBytes {
		http.Error(w, "request body unreadable or too large", http.StatusBadRequest)
		return
	}
	m := scopeRe.FindStringSubmatch(hr.Header.Get("Authorization"))
	if m == nil {
		// Every AWS API here requires a SigV4-signed request.
		http.Error(w, "MissingAuthenticationToken: request is not SigV4-signed", http.StatusForbidden)
		return
	}
	req := &request{region: m[1], service: m[2], body: body, target: hr.Header.Get("X-Amz-Target"), http: hr}
	if strings.HasPrefix(hr.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		req.form, err = url.ParseQuery(string(body))
		if err != nil {
			http.Error(w, "malformed form body", http.StatusBadRequest)
			return
		}
	}
	svc, ok := services[req.service]
	if !ok {
		http.Error(w, "no stand-in for service "+req.service, http.StatusNotFound)
		return
	}
	op, handler := svc.route(req)
	if handler == nil {
		svc.proto.writeError(w, apiError{http.StatusBadRequest, svc.unknownOp, "unknown operation " + op})
		return
	}
	action := req.service + ":" + op
	s.mu.Lock()
	s.calls[action]++
	fault := s.faults[action]
	raw, hasRaw := s.answers[action]
	reg := s.regionLocked(req.region)
	s.mu.Unlock()

	switch fault {
	case Denied, DeniedExplicitly, DeniedBySCP:
		svc.proto.writeError(w, svc.denied(deniedMessage(s, action, fault)))
		return
	case Throttled:
		svc.proto.writeError(w, svc.throttled)
		return
	}
	if hasRaw {
		w.Header().Set("Content-Type", svc.proto.contentType)
		_, _ = w.Write(raw)
		return
	}
	s.mu.Lock()
	doc, aerr := handler(s, reg, req)
	s.mu.Unlock()
	if aerr != nil {
		svc.proto.writeError(w, *aerr)
		return
	}
	switch fault {
	case Truncated:
		doc = doc[:len(doc)/2]
	case Garbage:
		doc = svc.proto.garbage()
	case Oversize:
		doc = svc.proto.pad(doc, 9<<20)
	}
	w.Header().Set("Content-Type", svc.proto.contentType)
	w.Header().Set("X-Amzn-Requestid", "preflight-standin")
	_, _ = w.Write(doc)
}

func (s *Server) regionLocked(name string) *Region {
	r, ok := s.regions[name]
	if !ok {
		r = newRegion()
		s.regions[name] = r
	}
	return r
}

func newRegion() *Region {
	return &Region{DefaultEIPQuota: 5, EndpointServices: map[string][]string{}, Parameters: map[string]string{},
		Stacks: map[string][]StackResource{}, Endpoints: map[string]string{}}
}

// apiError is an AWS error answer.
type apiError struct {
	status        int
	code, message string
}

// handlerFunc answers one operation from the region's state; it runs with
// the server's lock held.
type handlerFunc func(s *Server, reg *Region, req *request) ([]byte, *apiError)

// service describes one AWS service's stand-in.
type service struct {
	proto     protocol
	route     func(*request) (op string, h handlerFunc)
	throttled apiError
	denied    func(msg string) apiError
	unknownOp string
}

// deniedMessage is an access-denied message in the format of the IAM User
// Guide's "Troubleshoot access denied error messages": "User user is not
// authorized to perform action on resource because context", where context
// is "with an explicit deny in a type policy" for a Deny statement and
// "because no type policy allows the action action" for an implicit deny.
func deniedMessage(s *Server, action string, f Fault) string {
	why := fmt.Sprintf("because no identity-based policy allows the %s action", action)
	switch f {
	case DeniedExplicitly:
		why = "with an explicit deny in an identity-based policy"
	case DeniedBySCP:
		why = "with an explicit deny in a service control policy"
	}
	return fmt.Sprintf("User: %s is not authorized to perform: %s %s", s.CallerArn, action, why)
}

var services map[string]*service

func init() {
	services = map[string]*service{
		"ec2": {
			proto: ec2Protocol,
			route: func(r *request) (string, handlerFunc) {
				op := r.form.Get("Action")
				return op, ec2Ops[op]
			},
			// "Error codes for the Amazon EC2 API": RequestLimitExceeded for
			// throttling (503 per "Request throttling"), UnauthorizedOperation
			// for a denied action.
			throttled: apiError{http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded."},
			denied: func(msg string) apiError {
				return apiError{http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to perform this operation. " + msg}
			},
			unknownOp: "InvalidAction",
		},
		"servicequotas": {
			proto: json11Protocol,
			route: func(r *request) (string, handlerFunc) {
				op := strings.TrimPrefix(r.target, "ServiceQuotasV20190624.")
				return op, quotaOps[op]
			},
			throttled: apiError{http.StatusBadRequest, "TooManyRequestsException", "Rate exceeded"},
			denied: func(msg string) apiError {
				return apiError{http.StatusBadRequest, "AccessDeniedException", msg}
			},
			unknownOp: "UnknownOperationException",
		},
		"ssm": {
			proto: json11Protocol,
			route: func(r *request) (string, handlerFunc) {
				op := strings.TrimPrefix(r.target, "AmazonSSM.")
				return op, ssmOps[op]
			},
			throttled: apiError{http.StatusBadRequest, "ThrottlingException", "Rate exceeded"},
			denied: func(msg string) apiError {
				return apiError{http.StatusBadRequest, "AccessDeniedException", msg}
			},
			unknownOp: "UnknownOperationException",
		},
		"iot": {
			proto: restJSONProtocol,
			route: routeIoT,
			// AWS IoT API Reference: ThrottlingException "The rate exceeds
			// the limit", HTTP 400.
			throttled: apiError{http.StatusBadRequest, "ThrottlingException", "Rate exceeded"},
			denied: func(msg string) apiError {
				return apiError{http.StatusForbidden, "AccessDeniedException", msg}
			},
			unknownOp: "InvalidRequestException",
		},
		"route53": {
			proto: route53Protocol,
			route: routeRoute53,
			// Amazon Route 53 API Reference: Throttling, HTTP 400.
			throttled: apiError{http.StatusBadRequest, "Throttling", "Rate exceeded"},
			denied: func(msg string) apiError {
				return apiError{http.StatusForbidden, "AccessDenied", msg}
			},
			unknownOp: "InvalidInput",
		},
		"sts": {
			proto: stsProtocol,
			route: func(r *request) (string, handlerFunc) {
				op := r.form.Get("Action")
				return op, stsOps[op]
			},
			throttled: apiError{http.StatusBadRequest, "Throttling", "Rate exceeded"},
			// GetCallerIdentity needs no permission and cannot be denied
			// (its API reference); what fails it is a bad credential.
			denied: func(string) apiError {
				return apiError{http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."}
			},
			unknownOp: "InvalidAction",
		},
		"cloudformation": {
			proto: cfnProtocol,
			route: func(r *request) (string, handlerFunc) {
				op := r.form.Get("Action")
				return op, cfnOps[op]
			},
			throttled: apiError{http.StatusBadRequest, "Throttling", "Rate exceeded"},
			denied: func(msg string) apiError {
				return apiError{http.StatusForbidden, "AccessDenied", msg}
			},
			unknownOp: "InvalidAction",
		},
	}
}
