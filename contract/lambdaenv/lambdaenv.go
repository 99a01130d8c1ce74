// Package lambdaenv names the environment variables the control-plane
// construct sets on the publisher Lambdas and the Lambdas read at cold
// start, so a renamed variable cannot leave one side reading what the other
// no longer sets. It imports nothing: run-time and deploy-time code share it.
package lambdaenv

// The configuration publisher's variables.
const (
	// ConfigBucket is the configuration bucket's name.
	ConfigBucket = "CONFIG_BUCKET"
	// FanoutQueueURL is the URL of the queue fan-out messages are sent to:
	// the configuration queue the publisher itself consumes.
	FanoutQueueURL = "FANOUT_QUEUE_URL"
)

// The release publisher's variables.
const (
	// ArtifactsBucket is the artifacts bucket's name.
	ArtifactsBucket = "ARTIFACTS_BUCKET"
	// ReleaseChannels lists the channels the publisher may announce,
	// joined by ListSeparator.
	ReleaseChannels = "RELEASE_CHANNELS"
	// ReleaseSigningKey is the ARN of the KMS key (ECC_NIST_P256,
	// SIGN_VERIFY) that signs release manifests.
	ReleaseSigningKey = "RELEASE_SIGNING_KEY"
)

// IotDataEndpoint is both publishers' optional iot-data (ATS) host. When
// it is empty a publisher asks iot:DescribeEndpoint once per cold start.
const IotDataEndpoint = "IOT_DATA_ENDPOINT"

// ListSeparator joins the values of a list variable.
const ListSeparator = ","

// The pre-provisioning hook's variables.
const (
	// TokenTable is the install-token table's name.
	TokenTable = "TOKEN_TABLE"
	// ProvisioningTemplate is the only template the hook admits requests for.
	ProvisioningTemplate = "PROVISIONING_TEMPLATE"
	// EnrolRatePerMinute caps enrolments admitted per customer and minute.
	EnrolRatePerMinute = "ENROL_RATE_PER_MINUTE"
)
