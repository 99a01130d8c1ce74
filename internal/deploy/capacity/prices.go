package capacity

// The list prices the cost report uses: one table, region us-east-1, each
// line with its unit, its source page and whether the value was confirmed
// from a source when the table was compiled (PriceDate). Every fleet is
// priced at these us-east-1 rates whatever its region (other regions'
// rates differ; not looked up).
const (
	// PriceRegion is the region every price below is for.
	PriceRegion = "us-east-1"
	// PriceDate is when the table was compiled.
	PriceDate = "2026-12-04"
	// HoursPerMonth is the month the report prices (AWS pricing pages' 730 h).
	HoursPerMonth = 730
)

// Price status: how a value was checked when the table was compiled.
const (
	// Confirmed: read on the source page.
	Confirmed = "confirmed"
	// Secondary: read on a third-party page quoting the source's us-east-1
	// rate (named in Note), not on the source page itself.
	Secondary = "secondary"
	// Unverified: from memory of the source page; not read this time.
	Unverified = "unverified"
)

// Price is one line of the price table.
type Price struct {
	// Key names the price in code.
	Key string
	// What is priced and per what unit.
	What, Unit string
	// USD per Unit.
	USD float64
	// Source is the AWS pricing page.
	Source string
	// Status is Confirmed, Secondary or Unverified.
	Status string
	// Note says where a Secondary value was read, or what is assumed.
	Note string
}

// Source pages.
const (
	elbPricing      = "https://aws.amazon.com/elasticloadbalancing/pricing/"
	fargatePricing  = "https://aws.amazon.com/fargate/pricing/"
	vpcPricing      = "https://aws.amazon.com/vpc/pricing/"
	privatelink     = "https://aws.amazon.com/privatelink/pricing/"
	route53Pricing  = "https://aws.amazon.com/route53/pricing/"
	cloudwatchPrice = "https://aws.amazon.com/cloudwatch/pricing/"
	iotCorePricing  = "https://aws.amazon.com/iot-core/pricing/"
)

// Price keys.
const (
	NLBHour           = "nlb-hour"
	NLCUHour          = "nlcu-hour"
	FargateVCPUHour   = "fargate-arm-vcpu-hour"
	FargateGBHour     = "fargate-arm-gb-hour"
	NATHour           = "nat-hour"
	EndpointAZHour    = "endpoint-az-hour"
	EndpointGB        = "endpoint-gb"
	PublicIPv4Hour    = "ipv4-hour"
	HealthCheck       = "r53-health-check"
	HealthCheckOption = "r53-health-check-option"
	AlarmMonth        = "cw-alarm"
	DashboardMonth    = "cw-dashboard"
	IoTMinutes        = "iot-connect-minutes"
	IoTMessagesTier1  = "iot-messages-1"
	IoTMessagesTier2  = "iot-messages-2"
	IoTMessagesTier3  = "iot-messages-3"
)

// Prices is the table.
var Prices = []Price{
	{NLBHour, "Network Load Balancer", "hour", 0.0225, elbPricing, Unverified, ""},
	{NLCUHour, "NLB capacity unit (TCP: 800 new flows/s, 100,000 active flows or 1 GB/h, whichever is highest)", "NLCU-hour", 0.006, elbPricing, Unverified, ""},
	{FargateVCPUHour, "Fargate Linux/ARM vCPU", "vCPU-hour", 0.03238, fargatePricing, Secondary, "https://www.vantage.sh/blog/fargate-pricing (us-east-1)"},
	{FargateGBHour, "Fargate Linux/ARM memory", "GB-hour", 0.00356, fargatePricing, Secondary, "https://www.vantage.sh/blog/fargate-pricing (us-east-1)"},
	{NATHour, "NAT gateway (data processed not counted)", "hour", 0.045, vpcPricing, Unverified, ""},
	{EndpointAZHour, "Interface VPC endpoint", "endpoint-AZ-hour", 0.01, privatelink, Unverified, ""},
	{EndpointGB, "Interface VPC endpoint data processed", "GB", 0.01, privatelink, Unverified, ""},
	{PublicIPv4Hour, "Public IPv4 address (static IPs, NAT gateways)", "IP-hour", 0.005, vpcPricing, Unverified, "docs/decisions.md quotes the same rate"},
	{HealthCheck, "Route 53 health check, AWS endpoint", "check-month", 0.50, route53Pricing, Unverified, ""},
	{HealthCheckOption, "Route 53 health check optional feature (HTTPS; 10 s interval)", "feature-month", 1.00, route53Pricing, Unverified, ""},
	{AlarmMonth, "CloudWatch standard alarm", "alarm-month", 0.10, cloudwatchPrice, Unverified, ""},
	{DashboardMonth, "CloudWatch dashboard (the 3 free ones not deducted)", "dashboard-month", 3.00, cloudwatchPrice, Unverified, ""},
	{IoTMinutes, "IoT Core connectivity", "million connection-minutes", 0.08, iotCorePricing, Unverified, ""},
	{IoTMessagesTier1, "IoT Core messages, first 1 billion a month (5 KB each)", "million messages", 1.00, iotCorePricing, Unverified, ""},
	{IoTMessagesTier2, "IoT Core messages, next 4 billion", "million messages", 0.80, iotCorePricing, Unverified, ""},
	{IoTMessagesTier3, "IoT Core messages, over 5 billion", "million messages", 0.70, iotCorePricing, Unverified, ""},
}

// PriceOf returns the table's price for key; it panics on a key the table
// lacks (a programming error the tests catch).
func PriceOf(key string) float64 {
	for _, p := range Prices {
		if p.Key == key {
			return p.USD
		}
	}
	panic("capacity: no price " + key)
}

// NLCU dimensions for TCP listeners (elbPricing; unverified like the price).
const (
	NLCUNewFlowsPerSec = 800
	NLCUActiveFlows    = 100000
	NLCUGBPerHour      = 1
)
