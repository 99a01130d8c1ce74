// Package awsstandin serves local HTTP stand-ins of the AWS APIs the
// control-plane Lambdas call, speaking their real wire formats, so tests run
// the real aws-sdk-go-v2 clients end to end:
//
//   - iot-data Publish: POST /topics/{topic}?qos=&retain= (retained store,
//     token-bucket rate cap answering 429 ThrottlingException above it);
//   - IoT ListThings (GET /things?thingTypeName=), DescribeThing
//     (GET /things/{name}), DescribeEndpoint (GET /endpoint);
//   - IoT thing types, thing principals, certificates and policy
//     detachment, DeleteThing, and iot-data DeleteConnection (iotcontrol.go);
//   - S3 path-style GetObject and HeadObject (versions, delete markers,
//     optional SHA-256 checksums, single byte ranges) and PutObject
//     (s3write.go);
//   - SQS SendMessageBatch (AWS JSON 1.0);
//   - Kinesis Data Streams PutRecord (AWS JSON 1.1, StartKinesis).
//   - DynamoDB GetItem, PutItem, UpdateItem, Query and Scan over tables
//     with a partition key and an optional sort key, with condition, key
//     and update expressions (dynamodb.go, its own server: StartDynamoDB).
//
// Faults (status codes, delays) are injected per request with Fault hooks.
// It is test support: only tests and benchmarks import it.
package awsstandin

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/agentgate/agentgate/contract/topics"
)

// Fault is what a hook decides for one request: a delay before answering
// (longer than the client's attempt timeout makes it a timeout) and/or an
// error status to answer instead of the real response (0 = none).
type Fault struct {
	Delay  time.Duration
	Status int
}

// FaultFunc decides the fault for one request; op names the operation
// ("Publish", "ListThings", "DescribeThing", "GetObject", "HeadObject",
// "SendMessageBatch") and target its topic, thing or key.
type FaultFunc func(op, target string) Fault

// AWS is a running set of stand-ins with their shared state.
type AWS struct {
	// DataURL, IoTURL, S3URL and SQSURL are the base endpoints.
	DataURL, IoTURL, S3URL, SQSURL string

	mu       sync.Mutex
	retained map[string][]byte
	things   map[string]string // thing name → thing type
	objects  map[string][]*objectVersion
	sent     []SentMessage
	fault    FaultFunc
	bucket   *tokenBucket
	counts   map[string]int
	seq      int
	servers  []*httptest.Server
	// bodyFault and ranges: see s3write.go.
	bodyFault BodyFaultFunc
	ranges    map[string][]string
	Endpoint  string // what DescribeEndpoint answers
	// ctl: see iotcontrol.go.
	ctl iotControl
}

// SentMessage is one SQS message the stand-in accepted.
type SentMessage struct{ QueueURL, Body string }

type objectVersion struct {
	id           string
	body         []byte
	lastModified time.Time
	deleteMarker bool
	checksum     bool
}

// Start starts the stand-ins on 127.0.0.1; Close stops them.
func Start() *AWS {
	a := &AWS{
		retained: map[string][]byte{},
		things:   map[string]string{},
		objects:  map[string][]*objectVersion{},
		counts:   map[string]int{},
		ranges:   map[string][]string{},
		Endpoint: "example-ats.iot.eu-west-1.amazonaws.com",
	}
	a.DataURL = a.serve(http.HandlerFunc(a.data))
	a.IoTURL = a.serve(http.HandlerFunc(a.iot))
	a.S3URL = a.serve(http.HandlerFunc(a.s3))
	a.SQSURL = a.serve(http.HandlerFunc(a.sqs))
	return a
}

func (a *AWS) serve(h http.Handler) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s := httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = l
	s.Start()
	a.servers = append(a.servers, s)
	return s.URL
}

// Close stops every server.
func (a *AWS) Close() {
	for _, s := range a.servers {
		s.CloseClientConnections()
		s.Close()
	}
}

// Config returns an aws.Config with static credentials and a fixed region
// for clients pointed at the stand-ins with BaseEndpoint.
func Config() aws.Config {
	return aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDSTANDIN", "secret", ""),
	}
}

// SetFault installs (or with nil removes) the fault hook.
func (a *AWS) SetFault(f FaultFunc) { a.mu.Lock(); a.fault = f; a.mu.Unlock() }

// SetPublishRate caps successful Publish calls at perSec with a burst;
// above it Publish answers 429 ThrottlingException. perSec <= 0 removes the cap.
func (a *AWS) SetPublishRate(perSec, burst float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if perSec <= 0 {
		a.bucket = nil
		return
	}
	a.bucket = &tokenBucket{rate: perSec, burst: burst, tokens: burst, last: time.Now()}
}

// AddThing registers a thing of the given type (customer).
func (a *AWS) AddThing(name, thingType string) {
	a.mu.Lock()
	a.things[name] = thingType
	a.mu.Unlock()
}

// PutObject stores a new current version of bucket/key and returns its version ID.
func (a *AWS) PutObject(bucket, key string, body []byte, lastModified time.Time) string {
	return a.put(bucket, key, &objectVersion{body: append([]byte(nil), body...), lastModified: lastModified.UTC().Truncate(time.Second)})
}

// PutObjectWithChecksum is PutObject for an object uploaded with a
// full-object SHA-256 checksum, which HeadObject reports in checksum mode.
func (a *AWS) PutObjectWithChecksum(bucket, key string, body []byte, lastModified time.Time) string {
	return a.put(bucket, key, &objectVersion{body: append([]byte(nil), body...), lastModified: lastModified.UTC().Truncate(time.Second), checksum: true})
}

// DeleteObject adds a delete marker as the current version of bucket/key.
func (a *AWS) DeleteObject(bucket, key string, at time.Time) string {
	return a.put(bucket, key, &objectVersion{deleteMarker: true, lastModified: at.UTC().Truncate(time.Second)})
}

func (a *AWS) put(bucket, key string, v *objectVersion) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	v.id = fmt.Sprintf("v%06d", a.seq)
	a.objects[bucket+"/"+key] = append(a.objects[bucket+"/"+key], v)
	return v.id
}

// Retained returns the retained payload of topic, if any.
func (a *AWS) Retained(topic string) ([]byte, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.retained[topic]
	return p, ok
}

// RetainedTopics returns every topic with a retained message, sorted.
func (a *AWS) RetainedTopics() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for t := range a.retained {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Count returns how many requests of kind were answered, where kind is an
// operation name, or op+" ok", op+" 429", op+" fault".
func (a *AWS) Count(kind string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.counts[kind]
}

// TakeSent returns and forgets the SQS messages accepted so far.
func (a *AWS) TakeSent() []SentMessage {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.sent
	a.sent = nil
	return out
}

// begin counts the request and applies the fault hook. It reports whether
// the handler should go on (false: the fault answered).
func (a *AWS) begin(w http.ResponseWriter, r *http.Request, op, target string) bool {
	a.mu.Lock()
	a.counts[op]++
	f := a.fault
	a.mu.Unlock()
	if f == nil {
		return true
	}
	ft := f(op, target)
	if ft.Delay > 0 {
		select {
		case <-time.After(ft.Delay):
		case <-r.Context().Done():
			return false
		}
	}
	if ft.Status != 0 {
		a.mu.Lock()
		a.counts[op+" fault"]++
		a.mu.Unlock()
		code := "InternalFailureException"
		if ft.Status == http.StatusTooManyRequests {
			code = "ThrottlingException"
		}
		if op == "GetObject" || op == "HeadObject" {
			s3Error(w, r, ft.Status, "InternalError", "injected fault")
		} else {
			jsonError(w, ft.Status, code, "injected fault")
		}
		return false
	}
	return true
}

func jsonError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// data serves iot-data Publish: POST /topics/{topic}?qos=1&retain=true.
func (a *AWS) data(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/connections/") {
		a.deleteConnection(w, r)
		return
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/topics/") {
		jsonError(w, http.StatusNotFound, "ResourceNotFoundException", "no such operation "+r.Method+" "+r.URL.Path)
		return
	}
	topic := strings.TrimPrefix(r.URL.Path, "/topics/")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if !a.begin(w, r, "Publish", topic) {
		return
	}
	q := r.URL.Query()
	if q.Get("qos") != "1" || q.Get("retain") != "true" {
		jsonError(w, http.StatusBadRequest, "InvalidRequestException", "stand-in expects qos=1&retain=true, got "+r.URL.RawQuery)
		return
	}
	if len(body) > topics.MaxMessageBytes {
		jsonError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", "payload too large")
		return
	}
	a.mu.Lock()
	if a.bucket != nil && !a.bucket.take(time.Now()) {
		a.counts["Publish 429"]++
		a.mu.Unlock()
		jsonError(w, http.StatusTooManyRequests, "ThrottlingException", "Rate exceeded")
		return
	}
	a.counts["Publish ok"]++
	if len(body) == 0 {
		delete(a.retained, topic)
	} else {
		a.retained[topic] = body
	}
	a.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// iot serves ListThings, DescribeThing and DescribeEndpoint.
func (a *AWS) iot(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/endpoint":
		if !a.begin(w, r, "DescribeEndpoint", "") {
			return
		}
		if r.URL.Query().Get("endpointType") != "iot:Data-ATS" {
			jsonError(w, http.StatusBadRequest, "InvalidRequestException", "endpointType")
			return
		}
		writeJSON(w, map[string]string{"endpointAddress": a.Endpoint})
	case r.Method == http.MethodGet && r.URL.Path == "/things":
		q := r.URL.Query()
		tt := q.Get("thingTypeName")
		if !a.begin(w, r, "ListThings", tt) {
			return
		}
		max := 50
		if v, err := strconv.Atoi(q.Get("maxResults")); err == nil && v > 0 && v <= 250 {
			max = v
		}
		start, _ := strconv.Atoi(q.Get("nextToken"))
		a.mu.Lock()
		var names []string
		types := map[string]string{}
		for n, t := range a.things {
			if tt == "" || t == tt {
				names = append(names, n)
				types[n] = t
			}
		}
		a.mu.Unlock()
		sort.Strings(names)
		type thing struct {
			ThingName     string `json:"thingName"`
			ThingTypeName string `json:"thingTypeName"`
			ThingArn      string `json:"thingArn"`
		}
		out := struct {
			Things    []thing `json:"things"`
			NextToken string  `json:"nextToken,omitempty"`
		}{Things: []thing{}}
		end := min(start+max, len(names))
		for _, n := range names[min(start, len(names)):end] {
			out.Things = append(out.Things, thing{n, types[n], "arn:aws:iot:eu-west-1:111111111111:thing/" + n})
		}
		if end < len(names) {
			out.NextToken = strconv.Itoa(end)
		}
		writeJSON(w, out)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/things/") && !strings.HasSuffix(r.URL.Path, "/principals"):
		name := strings.TrimPrefix(r.URL.Path, "/things/")
		if !a.begin(w, r, "DescribeThing", name) {
			return
		}
		a.mu.Lock()
		tt, ok := a.things[name]
		a.mu.Unlock()
		if !ok {
			jsonError(w, http.StatusNotFound, "ResourceNotFoundException", "Thing "+name+" cannot be found.")
			return
		}
		writeJSON(w, map[string]any{"thingName": name, "thingTypeName": tt, "thingArn": "arn:aws:iot:eu-west-1:111111111111:thing/" + name, "version": 1, "attributes": map[string]string{}})
	default:
		if !a.iotControlServe(w, r) {
			jsonError(w, http.StatusNotFound, "ResourceNotFoundException", "no such operation "+r.Method+" "+r.URL.Path)
		}
	}
}

func s3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>standin</RequestId></Error>`, code, msg)
	}
}

// s3 serves path-style GetObject and HeadObject: /{bucket}/{key}[?versionId=].
func (a *AWS) s3(w http.ResponseWriter, r *http.Request) {
	op := "GetObject"
	if r.Method == http.MethodHead {
		op = "HeadObject"
	} else if r.Method == http.MethodPut {
		a.s3Put(w, r)
		return
	} else if r.Method != http.MethodGet {
		s3Error(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	if !a.begin(w, r, op, path) {
		return
	}
	a.mu.Lock()
	versions := a.objects[path]
	var v *objectVersion
	if id := r.URL.Query().Get("versionId"); id != "" {
		for _, c := range versions {
			if c.id == id {
				v = c
			}
		}
	} else if len(versions) > 0 {
		v = versions[len(versions)-1]
	}
	a.mu.Unlock()
	if v == nil {
		s3Error(w, r, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	h := w.Header()
	h.Set("x-amz-version-id", v.id)
	h.Set("Last-Modified", v.lastModified.Format(http.TimeFormat))
	if v.deleteMarker {
		h.Set("x-amz-delete-marker", "true")
		s3Error(w, r, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	sum := sha256.Sum256(v.body)
	h.Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	h.Set("Content-Length", strconv.Itoa(len(v.body)))
	h.Set("Content-Type", "application/octet-stream")
	if v.checksum && r.Header.Get("x-amz-checksum-mode") == "ENABLED" {
		h.Set("x-amz-checksum-sha256", base64.StdEncoding.EncodeToString(sum[:]))
		h.Set("x-amz-checksum-type", "FULL_OBJECT")
	}
	if rg := r.Header.Get("Range"); rg != "" && r.Method == http.MethodGet {
		a.s3Range(w, r, rg, v.body)
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		a.s3Body(w, r, path, v.body)
	}
}

// sqs serves SendMessageBatch in the AWS JSON 1.0 protocol.
func (a *AWS) sqs(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	if target != "AmazonSQS.SendMessageBatch" {
		jsonError(w, http.StatusBadRequest, "UnsupportedOperation", "stand-in does not serve "+target)
		return
	}
	var in struct {
		QueueUrl string
		Entries  []struct{ Id, MessageBody string }
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		jsonError(w, http.StatusBadRequest, "InvalidParameterValue", err.Error())
		return
	}
	if !a.begin(w, r, "SendMessageBatch", in.QueueUrl) {
		return
	}
	if len(in.Entries) == 0 || len(in.Entries) > 10 {
		jsonError(w, http.StatusBadRequest, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "1..10 entries")
		return
	}
	type ok struct{ Id, MessageId, MD5OfMessageBody string }
	out := struct {
		Successful []ok
		Failed     []any
	}{Failed: []any{}}
	a.mu.Lock()
	for _, e := range in.Entries {
		a.seq++
		sum := md5.Sum([]byte(e.MessageBody))
		out.Successful = append(out.Successful, ok{e.Id, fmt.Sprintf("m-%d", a.seq), hex.EncodeToString(sum[:])})
		a.sent = append(a.sent, SentMessage{in.QueueUrl, e.MessageBody})
	}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(out)
}

type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *tokenBucket) take(now time.Time) bool {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}
