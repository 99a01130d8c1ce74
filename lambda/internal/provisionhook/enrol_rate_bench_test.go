package provisionhook_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentgate/agentgate/agent/enroll"
)

// benchConcurrency is how many agents enrol at once in
// BenchmarkEnrolAtDocumentedRates: an installer rolling out a site, not
// the whole fleet at one instant.
const benchConcurrency = 32

// BenchmarkEnrolAtDocumentedRates enrols b.N agents, benchConcurrency at a
// time, through the relay against the fleet-provisioning stand-in
// throttling at the documented default rates
// (provisionstandin.LimitAtDocumentedRates) on the wall clock, each agent
// with the shipped retry settings (enroll.DefaultTimeout,
// DefaultThrottleRetries, full-jitter backoff). An agent that gives up
// (ErrThrottled) is run again, as its installer would. It reports the
// total time and, per agent, the requests of each operation (throttled
// ones included), the throttling rejections, the runs, the DynamoDB calls
// of the hook and the connections. The whole run takes at least
// b.N / RegisterThingTPS seconds.
func BenchmarkEnrolAtDocumentedRates(b *testing.B) {
	e := startBenchLab(b)
	w, fleet := e.world, e.fleet
	fleet.LimitAtDocumentedRates()
	tok := w.issue(b, "acme", b.N+10)
	var runs atomic.Int64
	jobs := make(chan int)
	errs := make(chan error, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	for range benchConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				cfg := e.config(filepath.Join(b.TempDir(), fmt.Sprint(i)), tok.String())
				cfg.Timeout = enroll.DefaultTimeout
				var err error
				for run := 0; run < 5; run++ {
					runs.Add(1)
					if _, err = enroll.Enrol(context.Background(), cfg); !errors.Is(err, enroll.ErrThrottled) {
						break
					}
				}
				if err != nil {
					errs <- fmt.Errorf("enrolment %d: %w", i, err)
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	n := float64(b.N)
	csr, reg := fleet.Calls("CreateCertificateFromCsr"), fleet.Calls("RegisterThing")
	tcsr, treg := fleet.Throttled("CreateCertificateFromCsr"), fleet.Throttled("RegisterThing")
	b.ReportMetric(b.Elapsed().Seconds(), "s-total")
	b.ReportMetric(n/b.Elapsed().Seconds(), "agents/s")
	b.ReportMetric(float64(csr)/n, "CreateCertificateFromCsr/agent")
	b.ReportMetric(float64(reg)/n, "RegisterThing/agent")
	b.ReportMetric(float64(tcsr)/n, "CSR-throttled/agent")
	b.ReportMetric(float64(treg)/n, "RegisterThing-throttled/agent")
	b.ReportMetric(float64(runs.Load())/n, "runs/agent")
	b.ReportMetric(float64(w.db.Count("GetItem")+w.db.Count("UpdateItem"))/n, "DynamoDB/agent")
	b.ReportMetric(float64(e.lab.Gateway.CertificateConnections())/n, "connections/agent")
	if len(fleet.Things()) != b.N || csr-tcsr != b.N || reg-treg != b.N {
		b.Fatalf("%d things, %d certificates, %d registrations for %d enrolments", len(fleet.Things()), csr-tcsr, reg-treg, b.N)
	}
}
