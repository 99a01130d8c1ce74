package preflight

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// MaxAnswerBytes bounds every answer body read from AWS. The largest answer
// preflight reads is DescribeAddresses for a whole region (well under 1 KB
// per address); an answer above the bound is reported as malformed.
const MaxAnswerBytes = 8 << 20

// route53Region is where Route 53's global API is signed (aws partition).
const route53Region = "us-east-1"

// clients opens one SDK client per service and region, lazily, all from the
// same aws.Config (the caller's credentials, retryer and HTTP client).
type clients struct {
	cfg  aws.Config
	ec2s map[string]*ec2.Client
	sqs  map[string]*servicequotas.Client
	ssms map[string]*ssm.Client
	iots map[string]*iot.Client
	cfns map[string]*cloudformation.Client
	r53  *route53.Client
}

func newClients(cfg aws.Config) *clients {
	cfg = cfg.Copy()
	cfg.HTTPClient = httpClientOf(cfg)
	return &clients{
		cfg:  cfg,
		ec2s: map[string]*ec2.Client{},
		sqs:  map[string]*servicequotas.Client{},
		ssms: map[string]*ssm.Client{},
		iots: map[string]*iot.Client{},
		cfns: map[string]*cloudformation.Client{},
	}
}

// bounded wraps the caller's HTTP client for a service whose successful
// answers open with expect.
func (c *clients) bounded(expect byte) aws.HTTPClient {
	return boundedClient{inner: c.cfg.HTTPClient, max: MaxAnswerBytes, expect: expect}
}

// First bytes of the protocols' successful answers.
const (
	xmlAnswer  = '<' // EC2 query, AWS query (STS, CloudFormation), REST-XML (Route 53)
	jsonAnswer = '{' // AWS JSON 1.1 (Service Quotas, SSM), REST-JSON (IoT)
)

func httpClientOf(cfg aws.Config) aws.HTTPClient {
	if cfg.HTTPClient != nil {
		return cfg.HTTPClient
	}
	return http.DefaultClient
}

// regional returns the client for region from cache, creating it with mk.
func regional[C any](cache map[string]*C, region string, mk func() *C) *C {
	if c, ok := cache[region]; ok {
		return c
	}
	c := mk()
	cache[region] = c
	return c
}

func (c *clients) ec2(region string) *ec2.Client {
	return regional(c.ec2s, region, func() *ec2.Client {
		return ec2.NewFromConfig(c.cfg, func(o *ec2.Options) { o.Region = region; o.HTTPClient = c.bounded(xmlAnswer) })
	})
}

func (c *clients) quotas(region string) *servicequotas.Client {
	return regional(c.sqs, region, func() *servicequotas.Client {
		return servicequotas.NewFromConfig(c.cfg, func(o *servicequotas.Options) { o.Region = region; o.HTTPClient = c.bounded(jsonAnswer) })
	})
}

func (c *clients) ssm(region string) *ssm.Client {
	return regional(c.ssms, region, func() *ssm.Client {
		return ssm.NewFromConfig(c.cfg, func(o *ssm.Options) { o.Region = region; o.HTTPClient = c.bounded(jsonAnswer) })
	})
}

func (c *clients) iot(region string) *iot.Client {
	return regional(c.iots, region, func() *iot.Client {
		return iot.NewFromConfig(c.cfg, func(o *iot.Options) { o.Region = region; o.HTTPClient = c.bounded(jsonAnswer) })
	})
}

func (c *clients) cloudformation(region string) *cloudformation.Client {
	return regional(c.cfns, region, func() *cloudformation.Client {
		return cloudformation.NewFromConfig(c.cfg, func(o *cloudformation.Options) { o.Region = region; o.HTTPClient = c.bounded(xmlAnswer) })
	})
}

func (c *clients) route53() *route53.Client {
	if c.r53 == nil {
		c.r53 = route53.NewFromConfig(c.cfg, func(o *route53.Options) { o.Region = route53Region; o.HTTPClient = c.bounded(xmlAnswer) })
	}
	return c.r53
}

func (c *clients) sts(region string) *sts.Client {
	return sts.NewFromConfig(c.cfg, func(o *sts.Options) { o.Region = region; o.HTTPClient = c.bounded(xmlAnswer) })
}

// Errors of an answer whose body breaks the protocol before any decoder
// sees it; explain reports both as malformed answers.
var (
	errMalformedAnswer = errors.New("malformed answer")
	errAnswerTooLarge  = badAnswer(fmt.Sprintf("the answer is larger than %d bytes", MaxAnswerBytes))
)

// badAnswer is an answer that breaks its protocol; it is errMalformedAnswer
// for errors.Is and prints only its own text.
type badAnswer string

func (b badAnswer) Error() string        { return string(b) }
func (b badAnswer) Is(target error) bool { return target == errMalformedAnswer }

// boundedClient caps every response body (a read past max fails with
// errAnswerTooLarge instead of buffering without bound) and, for successful
// answers, checks the body opens the way the service's protocol does ('<'
// for XML, '{' for JSON). Some decoders accept a body in the wrong format
// as an empty answer (an EC2 DescribeAddresses answered with JSON decodes
// as "no addresses"), which would turn a broken proxy into a false "ok".
type boundedClient struct {
	inner  aws.HTTPClient
	max    int64
	expect byte // 0: no check
}

func (b boundedClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := b.inner.Do(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	body := &boundedBody{rc: resp.Body, left: b.max}
	resp.Body = body
	if b.expect != 0 && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		resp.Body = &shapedBody{br: bufio.NewReader(body), c: body, expect: b.expect}
	}
	return resp, nil
}

type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte tells a body of exactly max bytes from a longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errAnswerTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

// shapedBody fails the first read unless the body's first byte after
// whitespace (and a UTF-8 byte order mark) is expect. An empty body passes.
type shapedBody struct {
	br      *bufio.Reader
	c       io.Closer
	expect  byte
	checked bool
	err     error
}

func (s *shapedBody) Read(p []byte) (int, error) {
	if !s.checked {
		s.checked = true
		s.err = s.check()
	}
	if s.err != nil {
		return 0, s.err
	}
	return s.br.Read(p)
}

func (s *shapedBody) check() error {
	if bom, err := s.br.Peek(3); err == nil && string(bom) == "\xef\xbb\xbf" {
		_, _ = s.br.Discard(3)
	}
	for {
		b, err := s.br.Peek(1)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			_, _ = s.br.Discard(1)
			continue
		case s.expect:
			return nil
		}
		format := "XML"
		if s.expect == '{' {
			format = "JSON"
		}
		return badAnswer(fmt.Sprintf("the body is not %s (it starts with %q)", format, b[0]))
	}
}

func (s *shapedBody) Close() error { return s.c.Close() }
