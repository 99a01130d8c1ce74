package storm

// The account-level rates a reconnect storm spends, as AWS IoT Core's
// defaults, printed next to what the stand-ins measured. The deployment's
// own budget lives in its config (the capacity report); these are only
// the documented defaults the storm report compares against.
//
// Source: AWS General Reference, "AWS IoT Core endpoints and quotas",
// Message broker limits,
// https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits
// ("Connect requests per second per account", "Subscriptions per second
// per account": each topic filter counts, so one SUBSCRIBE with the
// agent's two filters counts 2). The revision read for this lists 500 for
// both; later revisions list 3,000 connects per second in most regions,
// with lower defaults in some: which default an account has is
// unverified here (Service Quotas shows the applied value), so the report
// uses the lower, 500.
const (
	// QuotaConnectsPerSecond is "Connect requests per second per account".
	QuotaConnectsPerSecond = 500
	// QuotaSubscriptionsPerSecond is "Subscriptions per second per
	// account" (topic filters).
	QuotaSubscriptionsPerSecond = 500
	// QuotaCredentialsPerSecond is the credentials provider's account rate:
	// unverified, the revision of the quotas page read for this lists none,
	// so 0 prints as "not documented".
	QuotaCredentialsPerSecond = 0
)
