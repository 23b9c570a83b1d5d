package ledger

import (
	"fmt"
	"testing"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
)

// BenchmarkCalculateRun measures a run's calculation per beneficiary (one
// allowance line each, a third paid by bank) at two sizes: the time per
// beneficiary should not grow with the run. Each iteration calculates a new
// month, so every line is claimed for real.
//
//	go test -run '^$' -bench CalculateRun ./ledger/
func BenchmarkCalculateRun(b *testing.B) {
	for _, n := range []int{250, 1000} {
		b.Run(fmt.Sprintf("beneficiaries=%d", n), func(b *testing.B) {
			f := newPayoutFixture(b)
			ids, _ := f.crowd(n)
			roster := NewStaticRoster(ids...)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				id := fmt.Sprintf("BENCH-%d", i)
				p := domain.MustPeriod("2024-03").AddMonths(i)
				f.open(id, []domain.Period{p}, entitlement.SocialMonthly)
				s, err := f.l.CalculateRun(f.ctx, thu, id, roster, CalculateOptions{})
				if err != nil || s.Lines != n {
					b.Fatalf("run %s: %+v %v", id, s, err)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N*n), "µs/beneficiary")
		})
	}
}
