package agent

import (
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/agentgate/agentgate/agent/credentials"
)

// Credentials reuse. The credentials provider's role credentials last the
// role alias's credentialDurationSeconds: 3,600 s unless the alias sets
// another value in 900..43,200 s (AWS IoT API Reference, CreateRoleAlias,
// https://docs.aws.amazon.com/iot/latest/apireference/API_CreateRoleAlias.html).
// Fetching them before every connection made every reconnect of a fleet a
// credentials-provider call, so a fleet-wide reconnect (a relay task
// replaced, a zone lost) spent the account's credentials-provider rate
// for nothing. The agent therefore keeps them in an aws.CredentialsCache
// and reuses them across reconnects while they are valid:
//
//   - Refresh ahead of expiry, with jitter: the cache treats credentials as
//     expired DefaultCredentialsRefreshWindow (5 min) minus a uniformly
//     random part of up to CredentialsRefreshJitterFrac of it before they
//     really expire, i.e. at a random point 2.5 to 5 min before expiry
//     (aws.CredentialsCacheOptions.ExpiryWindow and ExpiryWindowJitterFrac).
//     At least 2.5 min of life is left whenever credentials are used, so
//     IoT still accepts them at the upgrade on a slow connection or with a
//     local clock somewhat behind AWS's; the jitter spreads a fleet that
//     fetched together (after a storm) over 2.5 min when they renew. The
//     refresh happens at
//     the next use (a reconnect, or an SDK call through Credentials):
//     a connected agent needs no credentials, IoT checks them only at the
//     WebSocket upgrade.
//   - Invalidate once on refusal: when IoT refuses the upgrade for the
//     credentials (HTTP 401 or 403 that is not a clock problem), or a caller
//     reports an AWS refusal through CredentialsRejected, the cache is
//     invalidated once for those credentials (by access key ID) and Dial
//     fetches new ones and tries once more. A second refusal of the same
//     credentials invalidates nothing, and a refused new set is retried
//     only at the next reconnect, after the backoff: never a loop.
//   - A 401/403 from the credentials provider itself is not retried inside
//     Dial: the cache caches no error, so the next reconnect attempt (after
//     the backoff) asks again.
//
// What reuse changes: a revoked certificate or a changed role takes effect
// at the latest when the cached credentials expire (within the role alias's
// duration), no longer at the next reconnect. Credentials already issued
// stay valid until they expire whatever the agent does, so the window for
// what the credentials grant is the same.

// CredentialsRefreshJitterFrac is the share of DefaultCredentialsRefreshWindow
// that is randomized per fetch: credentials are refreshed at a random point
// between (1-CredentialsRefreshJitterFrac)·window and window before expiry.
const CredentialsRefreshJitterFrac = 0.5

// credsCache is the agent's credentials cache and the one-invalidation-per-
// refusal bookkeeping.
type credsCache struct {
	*aws.CredentialsCache
	mu sync.Mutex
	// rejected is the access key ID last invalidated on a refusal.
	rejected string
	// last is the access key ID last handed to a connection attempt.
	last string
}

func newCredsCache(p *credentials.Provider) *credsCache {
	return &credsCache{CredentialsCache: aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = DefaultCredentialsRefreshWindow
		o.ExpiryWindowJitterFrac = CredentialsRefreshJitterFrac
	})}
}

// CredentialsRejected tells the agent that AWS refused c (for example an S3
// request signed with credentials from Credentials answered 403
// AccessDenied or ExpiredToken, or IoT refused a presigned URL). The first
// report for an access key ID invalidates the cache, so the next Retrieve
// fetches new credentials, and returns true; later reports for the same
// key, or for credentials the cache no longer holds, return false and
// invalidate nothing, so a caller that retries on refusal cannot turn it
// into a loop of credentials-provider calls. It returns false on the
// certificate transport, which has no role credentials.
func (a *Agent) CredentialsRejected(c aws.Credentials) bool {
	if a.creds == nil || c.AccessKeyID == "" {
		return false
	}
	a.creds.mu.Lock()
	defer a.creds.mu.Unlock()
	if c.AccessKeyID == a.creds.rejected {
		return false
	}
	a.creds.rejected = c.AccessKeyID
	a.creds.Invalidate()
	return true
}

// noteCredentials records the credentials a connection attempt uses and
// says whether they were reused or newly fetched, for the event.
func (a *Agent) noteCredentials(c aws.Credentials) string {
	a.creds.mu.Lock()
	defer a.creds.mu.Unlock()
	reused := c.AccessKeyID == a.creds.last
	a.creds.last = c.AccessKeyID
	if reused {
		return "reused,"
	}
	return "fetched,"
}
