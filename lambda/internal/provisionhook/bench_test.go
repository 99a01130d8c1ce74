package provisionhook_test

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkAdmission is one admitted enrolment through the hook against the
// DynamoDB and IoT stand-ins (real SDK clients over loopback HTTP): it
// reports the AWS calls each admission makes.
func BenchmarkAdmission(b *testing.B) {
	w := newWorld(b)
	w.h.RatePerMinute = 1 << 30
	tok := w.issue(b, "acme", 10000)
	getBefore, updBefore, descBefore := w.db.Count("GetItem"), w.db.Count("UpdateItem"), w.aws.Count("DescribeThing")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, _ := w.h.Handle(context.Background(), event(params(fmt.Sprintf("agent-%d", i), tok)))
		if !resp.AllowProvisioning {
			b.Fatalf("admission %d refused: %s", i, w.logs.String())
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(w.db.Count("GetItem")-getBefore)/n, "GetItem/op")
	b.ReportMetric(float64(w.db.Count("UpdateItem")-updBefore)/n, "UpdateItem/op")
	b.ReportMetric(float64(w.aws.Count("DescribeThing")-descBefore)/n, "DescribeThing/op")
}
