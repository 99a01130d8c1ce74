package preflightstandin

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// ec2Version is the EC2 API version every EC2 query request names.
const ec2Version = "2016-11-15"

var ec2Ops = map[string]handlerFunc{
	// DescribeAddresses (Amazon EC2 API Reference): <addressesSet> of
	// <item> with publicIp, allocationId, domain and <tagSet>.
	"DescribeAddresses": func(_ *Server, reg *Region, req *request) ([]byte, *apiError) {
		if req.form.Get("Version") != ec2Version {
			return nil, &apiError{http.StatusBadRequest, "InvalidParameterValue", "unsupported Version " + req.form.Get("Version")}
		}
		var b strings.Builder
		fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<DescribeAddressesResponse xmlns="http://ec2.amazonaws.com/doc/%s/"><requestId>%s</requestId><addressesSet>`, ec2Version, requestID)
		for _, a := range reg.Addresses {
			domain := a.Domain
			if domain == "" {
				domain = "vpc"
			}
			fmt.Fprintf(&b, `<item><publicIp>%s</publicIp><allocationId>%s</allocationId><domain>%s</domain><networkBorderGroup>%s</networkBorderGroup>%s</item>`,
				xmlEscape(a.PublicIP), xmlEscape(a.AllocationID), domain, xmlEscape(req.region), ec2Tags(a.Tags))
		}
		b.WriteString(`</addressesSet></DescribeAddressesResponse>`)
		return []byte(b.String()), nil
	},
	// DescribeVpcEndpointServices (Amazon EC2 API Reference): names come
	// as ServiceName.N; an unknown name answers InvalidServiceName; details
	// list <availabilityZoneSet>.
	"DescribeVpcEndpointServices": func(_ *Server, reg *Region, req *request) ([]byte, *apiError) {
		var names []string
		for i := 1; ; i++ {
			n := req.form.Get(fmt.Sprintf("ServiceName.%d", i))
			if n == "" {
				break
			}
			names = append(names, n)
		}
		for _, n := range names {
			if _, ok := reg.EndpointServices[n]; !ok {
				return nil, &apiError{http.StatusBadRequest, "InvalidServiceName", fmt.Sprintf("The Vpc Endpoint Service '%s' does not exist", n)}
			}
		}
		var b strings.Builder
		fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<DescribeVpcEndpointServicesResponse xmlns="http://ec2.amazonaws.com/doc/%s/"><requestId>%s</requestId><serviceNameSet>`, ec2Version, requestID)
		for _, n := range names {
			fmt.Fprintf(&b, `<item>%s</item>`, xmlEscape(n))
		}
		b.WriteString(`</serviceNameSet><serviceDetailSet>`)
		for _, n := range names {
			fmt.Fprintf(&b, `<item><serviceName>%s</serviceName><serviceType><item><serviceType>Interface</serviceType></item></serviceType><availabilityZoneSet>`, xmlEscape(n))
			for _, z := range reg.EndpointServices[n] {
				fmt.Fprintf(&b, `<item>%s</item>`, xmlEscape(z))
			}
			b.WriteString(`</availabilityZoneSet><owner>amazon</owner><acceptanceRequired>false</acceptanceRequired></item>`)
		}
		b.WriteString(`</serviceDetailSet></DescribeVpcEndpointServicesResponse>`)
		return []byte(b.String()), nil
	},
}

func ec2Tags(tags map[string]string) string {
	if len(tags) == 0 {
		return ""
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("<tagSet>")
	for _, k := range keys {
		fmt.Fprintf(&b, "<item><key>%s</key><value>%s</value></item>", xmlEscape(k), xmlEscape(tags[k]))
	}
	b.WriteString("</tagSet>")
	return b.String()
}

// Service Quotas (API Reference, GetServiceQuota and
// GetAWSDefaultServiceQuota): {"Quota": {..., "Value": n}};
// NoSuchResourceException when the quota has no applied value.
var quotaOps = map[string]handlerFunc{
	"GetServiceQuota": func(_ *Server, reg *Region, req *request) ([]byte, *apiError) {
		if aerr := checkEIPQuotaRequest(req); aerr != nil {
			return nil, aerr
		}
		if reg.EIPQuota == nil {
			return nil, &apiError{http.StatusBadRequest, "NoSuchResourceException", "The request failed because the specified service quota does not exist."}
		}
		return quotaDoc(req.region, *reg.EIPQuota), nil
	},
	"GetAWSDefaultServiceQuota": func(_ *Server, reg *Region, req *request) ([]byte, *apiError) {
		if aerr := checkEIPQuotaRequest(req); aerr != nil {
			return nil, aerr
		}
		return quotaDoc(req.region, reg.DefaultEIPQuota), nil
	},
}

func checkEIPQuotaRequest(req *request) *apiError {
	var in struct{ ServiceCode, QuotaCode string }
	if err := jsonUnmarshal(req.body, &in); err != nil || in.ServiceCode != "ec2" || in.QuotaCode != "L-0263D0A3" {
		return &apiError{http.StatusBadRequest, "NoSuchResourceException", "only ec2/L-0263D0A3 is served here"}
	}
	return nil
}

func quotaDoc(region string, value float64) []byte {
	return jsonDoc(map[string]any{"Quota": map[string]any{
		"ServiceCode": "ec2", "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
		"QuotaArn":  "arn:aws:servicequotas:" + region + "::ec2/L-0263D0A3",
		"QuotaCode": "L-0263D0A3", "QuotaName": "EC2-VPC Elastic IPs",
		"Value": value, "Unit": "None", "Adjustable": true, "GlobalQuota": false,
	}})
}

// SSM GetParameter (AWS Systems Manager API Reference): {"Parameter":
// {...}}; ParameterNotFound for a missing name.
var ssmOps = map[string]handlerFunc{
	"GetParameter": func(s *Server, reg *Region, req *request) ([]byte, *apiError) {
		var in struct{ Name string }
		if err := jsonUnmarshal(req.body, &in); err != nil || in.Name == "" {
			return nil, &apiError{http.StatusBadRequest, "ValidationException", "Name is required"}
		}
		v, ok := reg.Parameters[in.Name]
		if !ok {
			return nil, &apiError{http.StatusBadRequest, "ParameterNotFound", ""}
		}
		return jsonDoc(map[string]any{"Parameter": map[string]any{
			"Name": in.Name, "Type": "String", "Value": v, "Version": 1, "DataType": "text",
			"ARN":              "arn:aws:ssm:" + req.region + ":" + s.Account + ":parameter" + in.Name,
			"LastModifiedDate": 1.7e9,
		}}), nil
	},
}

// routeIoT maps IoT's REST paths to operations (AWS IoT API Reference).
func routeIoT(r *request) (string, handlerFunc) {
	if r.http.Method != http.MethodGet {
		return r.http.Method + " " + r.http.URL.Path, nil
	}
	switch r.http.URL.Path {
	case "/v2LoggingOptions":
		return "GetV2LoggingOptions", getV2LoggingOptions
	case "/audit/configuration":
		return "DescribeAccountAuditConfiguration", describeAccountAuditConfiguration
	case "/endpoint":
		return "DescribeEndpoint", describeEndpoint
	}
	return "GET " + r.http.URL.Path, nil
}

// GetV2LoggingOptions: NotConfiguredException (404) when logging was never set.
func getV2LoggingOptions(_ *Server, reg *Region, _ *request) ([]byte, *apiError) {
	if reg.Logging == nil {
		return nil, &apiError{http.StatusNotFound, "NotConfiguredException", "Logging options are not configured."}
	}
	return jsonDoc(map[string]any{"roleArn": reg.Logging.RoleArn, "defaultLogLevel": reg.Logging.DefaultLogLevel, "disableAllLogs": reg.Logging.DisableAllLogs}), nil
}

// DescribeAccountAuditConfiguration never answers "not found": an
// unconfigured account has no roleArn and every check disabled (the
// AWS::IoT::AccountAuditConfiguration resource handler relies on this).
func describeAccountAuditConfiguration(_ *Server, reg *Region, _ *request) ([]byte, *apiError) {
	checks := map[string]any{}
	for _, c := range []string{"LOGGING_DISABLED_CHECK", "DEVICE_CERTIFICATE_SHARED_CHECK", "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"} {
		checks[c] = map[string]bool{"enabled": reg.AuditRoleArn != ""}
	}
	doc := map[string]any{"auditCheckConfigurations": checks}
	if reg.AuditRoleArn != "" {
		doc["roleArn"] = reg.AuditRoleArn
	}
	return jsonDoc(doc), nil
}

func describeEndpoint(_ *Server, reg *Region, req *request) ([]byte, *apiError) {
	typ := req.http.URL.Query().Get("endpointType")
	addr, ok := reg.Endpoints[typ]
	if !ok {
		return nil, &apiError{http.StatusBadRequest, "InvalidRequestException", "unknown endpointType " + typ}
	}
	return jsonDoc(map[string]string{"endpointAddress": addr}), nil
}

// routeRoute53 maps GET /2013-04-01/hostedzone/{Id} (Amazon Route 53 API
// Reference, GetHostedZone).
func routeRoute53(r *request) (string, handlerFunc) {
	const prefix = "/2013-04-01/hostedzone/"
	if r.http.Method == http.MethodGet && strings.HasPrefix(r.http.URL.Path, prefix) && !strings.Contains(r.http.URL.Path[len(prefix):], "/") {
		return "GetHostedZone", getHostedZone
	}
	return r.http.Method + " " + r.http.URL.Path, nil
}

// GetHostedZone: NoSuchHostedZone (404) for an unknown ID.
func getHostedZone(s *Server, _ *Region, req *request) ([]byte, *apiError) {
	id := strings.TrimPrefix(req.http.URL.Path, "/2013-04-01/hostedzone/")
	z, ok := s.zones[id]
	if !ok {
		return nil, &apiError{http.StatusNotFound, "NoSuchHostedZone", "No hosted zone found with ID: " + id}
	}
	return []byte(fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<GetHostedZoneResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><HostedZone><Id>/hostedzone/%s</Id><Name>%s</Name><CallerReference>preflight</CallerReference><Config><PrivateZone>%t</PrivateZone></Config><ResourceRecordSetCount>2</ResourceRecordSetCount></HostedZone><DelegationSet><NameServers><NameServer>ns-1.awsdns-01.org</NameServer></NameServers></DelegationSet></GetHostedZoneResponse>`,
		xmlEscape(z.ID), xmlEscape(z.Name), z.Private)), nil
}

// STS GetCallerIdentity (AWS STS API Reference).
var stsOps = map[string]handlerFunc{
	"GetCallerIdentity": func(s *Server, _ *Region, _ *request) ([]byte, *apiError) {
		return []byte(fmt.Sprintf(`<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult><Arn>%s</Arn><UserId>AIDAPREFLIGHT</UserId><Account>%s</Account></GetCallerIdentityResult>
  <ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>`, xmlEscape(s.CallerArn), xmlEscape(s.Account), requestID)), nil
	},
}

// CloudFormation ListStackResources (AWS CloudFormation API Reference):
// StackResourceSummaries in pages with NextToken; a name with no live stack
// answers ValidationError "Stack with id NAME does not exist".
var cfnOps = map[string]handlerFunc{
	"ListStackResources": func(s *Server, reg *Region, req *request) ([]byte, *apiError) {
		name := req.form.Get("StackName")
		resources, ok := reg.Stacks[name]
		if !ok {
			return nil, &apiError{http.StatusBadRequest, "ValidationError", fmt.Sprintf("Stack with id %s does not exist", name)}
		}
		start := 0
		if t := req.form.Get("NextToken"); t != "" {
			n, err := strconv.Atoi(t)
			if err != nil || n < 0 || n > len(resources) {
				return nil, &apiError{http.StatusBadRequest, "ValidationError", "Invalid NextToken"}
			}
			start = n
		}
		end := min(start+max(s.StackPageSize, 1), len(resources))
		var b strings.Builder
		b.WriteString(`<ListStackResourcesResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><ListStackResourcesResult><StackResourceSummaries>`)
		for _, r := range resources[start:end] {
			fmt.Fprintf(&b, `<member><LogicalResourceId>%s</LogicalResourceId><PhysicalResourceId>%s-physical</PhysicalResourceId><ResourceType>%s</ResourceType><LastUpdatedTimestamp>2026-01-02T03:04:05.000Z</LastUpdatedTimestamp><ResourceStatus>%s</ResourceStatus><DriftInformation><StackResourceDriftStatus>NOT_CHECKED</StackResourceDriftStatus></DriftInformation></member>`,
				xmlEscape(r.LogicalID), xmlEscape(r.LogicalID), xmlEscape(r.Type), xmlEscape(r.Status))
		}
		b.WriteString(`</StackResourceSummaries>`)
		if end < len(resources) {
			fmt.Fprintf(&b, `<NextToken>%d</NextToken>`, end)
		}
		fmt.Fprintf(&b, `</ListStackResourcesResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></ListStackResourcesResponse>`, requestID)
		return []byte(b.String()), nil
	},
}
