package lambdaenv

// The presence handler's variable.
const (
	// PresenceTable is the name of the DynamoDB table of agents' presence
	// (layout: contract/presence).
	PresenceTable = "PRESENCE_TABLE"
)
