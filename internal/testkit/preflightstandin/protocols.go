package preflightstandin

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
)

// requestID is what every answer carries as its request ID.
const requestID = "6f1a2b3c-0000-4000-8000-preflight000"

// protocol writes answers the way one AWS wire protocol does.
type protocol struct {
	contentType string
	writeError  func(w http.ResponseWriter, e apiError)
	// garbage is a 200 body in the wrong format (an HTML error page from a
	// proxy for a JSON service, JSON for an XML service).
	garbage func() []byte
	// pad makes a valid document of at least n bytes.
	pad func(doc []byte, n int) []byte
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// padXML inserts whitespace before the closing tag of the root element: the
// document stays valid XML.
func padXML(doc []byte, n int) []byte {
	i := bytes.LastIndex(doc, []byte("</"))
	if i < 0 {
		return append(doc, bytes.Repeat([]byte(" "), n)...)
	}
	out := make([]byte, 0, len(doc)+n)
	out = append(out, doc[:i]...)
	out = append(out, bytes.Repeat([]byte(" "), n)...)
	return append(out, doc[i:]...)
}

// padJSON inserts whitespace after the opening brace: still the same valid
// JSON value, but a decoder must read all of it to reach the members.
func padJSON(doc []byte, n int) []byte {
	i := bytes.IndexByte(doc, '{') + 1
	out := make([]byte, 0, len(doc)+n)
	out = append(out, doc[:i]...)
	out = append(out, bytes.Repeat([]byte(" "), n)...)
	return append(out, doc[i:]...)
}

func htmlGarbage() []byte {
	return []byte("<html><head><title>502 Bad Gateway</title></head><body>bad gateway</body></html>")
}

func jsonGarbage() []byte { return []byte(`{"message": "not what you asked for"`) }

// ec2Protocol: EC2 query errors are <Response><Errors><Error> with a
// <RequestID> (Amazon EC2 API Reference, "Error codes": "Error response").
var ec2Protocol = protocol{
	contentType: "text/xml;charset=UTF-8",
	writeError: func(w http.ResponseWriter, e apiError) {
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(e.status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>`,
			e.code, xmlEscape(e.message), requestID)
	},
	garbage: jsonGarbage,
	pad:     padXML,
}

// queryProtocol: the AWS query protocol's errors are
// <ErrorResponse><Error><Type><Code><Message></Error><RequestId> in the
// service's namespace (STS and CloudFormation API References, "Common
// Errors"; Route 53's REST-XML errors have the same shape).
func queryProtocol(namespace string) protocol {
	return protocol{
		contentType: "text/xml",
		writeError: func(w http.ResponseWriter, e apiError) {
			typ := "Sender"
			if e.status >= 500 {
				typ = "Receiver"
			}
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(e.status)
			fmt.Fprintf(w, `<ErrorResponse xmlns="%s">
  <Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error>
  <RequestId>%s</RequestId>
</ErrorResponse>`, namespace, typ, e.code, xmlEscape(e.message), requestID)
		},
		garbage: jsonGarbage,
		pad:     padXML,
	}
}

var (
	stsProtocol     = queryProtocol("https://sts.amazonaws.com/doc/2011-06-15/")
	cfnProtocol     = queryProtocol("http://cloudformation.amazonaws.com/doc/2010-05-15/")
	route53Protocol = queryProtocol("https://route53.amazonaws.com/doc/2013-04-01/")
)

// json11Protocol: AWS JSON 1.1 errors name their type in the body's
// "__type", which may carry a namespace prefix ("ns#Code"; Smithy's
// awsJson1_1 protocol, "Operation error serialization").
var json11Protocol = protocol{
	contentType: "application/x-amz-json-1.1",
	writeError: func(w http.ResponseWriter, e apiError) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(e.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.coral.service#" + e.code, "message": e.message})
	},
	garbage: htmlGarbage,
	pad:     padJSON,
}

// restJSONProtocol: REST-JSON errors name their type in the
// X-Amzn-ErrorType header, which may carry a ":"-suffixed URI (Smithy's
// restJson1 protocol, "Operation error serialization"), with the message in
// the body.
var restJSONProtocol = protocol{
	contentType: "application/json",
	writeError: func(w http.ResponseWriter, e apiError) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-ErrorType", e.code+":http://internal.amazon.com/coral/com.amazonaws.iot/")
		w.WriteHeader(e.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": e.message})
	},
	garbage: htmlGarbage,
	pad:     padJSON,
}

// jsonDoc encodes an answer document; the stand-in's own values always encode.
func jsonDoc(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("preflightstandin: " + err.Error())
	}
	return b
}

// jsonUnmarshal decodes a request body.
func jsonUnmarshal(body []byte, v any) error { return json.Unmarshal(body, v) }
