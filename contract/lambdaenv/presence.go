package lambdaenv

// The presence handler's variable and its table's key, which the dataplane
// construct creates and the handler writes.
const (
	// PresenceTable is the name of the DynamoDB table of agents' presence.
	PresenceTable = "PRESENCE_TABLE"
	// PresenceKeyCustomer and PresenceKeyThing are the table's partition
	// and sort key attributes (strings).
	PresenceKeyCustomer = "customer"
	PresenceKeyThing    = "thing"
)
