// Package presence is the layout of the presence table, shared by the
// dataplane construct that creates it, the presence Lambda that writes it
// (lambda/internal/presence) and agentgate-admin that reads it. It imports
// nothing.
//
// One item per agent, keyed by customer (partition) and thing (sort), and
// one item per customer with thing CountThing holding the number of its
// connected agents.
package presence

// Key attributes (strings).
const (
	KeyCustomer = "customer"
	KeyThing    = "thing"
)

// CountThing is the sort key of a customer's count item; no thing name can
// equal it ('#' is not allowed in one).
const CountThing = "#connected"

// Attributes of an agent's item.
const (
	// AttrConnected (BOOL) is whether the agent is connected.
	AttrConnected = "connected"
	// AttrSince (N) is when the current state began, ms since the epoch.
	AttrSince = "since"
	// AttrLastDisconnectReason (S) is the disconnectReason of the latest
	// disconnect seen.
	AttrLastDisconnectReason = "lastDisconnectReason"
	// AttrAtTimestamp, AttrAtVersion (N) and AttrAtDisconnect (BOOL) are
	// the position of the event the item was last written from.
	AttrAtTimestamp  = "atTimestamp"
	AttrAtVersion    = "atVersion"
	AttrAtDisconnect = "atDisconnect"
	// AttrClientVersion (S) is the client version the agent last announced
	// on its status topic (contract/status); absent until it announces one.
	AttrClientVersion = "clientVersion"
	// AttrClientVersionAt (N) is when IoT received that announcement, ms
	// since the epoch; a status received earlier never replaces it.
	AttrClientVersionAt = "clientVersionAt"
)

// AttrConnectedCount (N) is the count item's number of connected agents.
const AttrConnectedCount = "connectedCount"
