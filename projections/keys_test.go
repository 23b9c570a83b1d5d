package projections

import (
	"testing"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
)

// The keys built in stack buffers are the keys built before with string
// concatenation and Period.String.
func TestKeysBuiltInBuffers(t *testing.T) {
	for _, y := range []int{-1, 0, 9, 2024, 9999, 10000} {
		for _, m := range []int{-1, 0, 1, 12, 99, 100} {
			p := domain.Period{Year: y, Month: time.Month(m)}
			var kb [keyBytes]byte
			if got, want := string(appendPeriod(kb[:0], p)), p.String(); got != want {
				t.Errorf("appendPeriod(%d, %d) = %q, want %q", y, m, got, want)
			}
		}
	}
	ch := attemptChange{ref: disbursement.AttemptRef{Attempt: 258, RunID: "R-1", PaymentID: "P-9"}, stream: "payment-001050000001-SOCIAL_MONTHLY-2024-01"}
	var kb [4]byte // too small: the key is still right
	got := string(appendRunLineKey(kb[:0], &ch))
	want := "r/R-1/P-9/payment-001050000001-SOCIAL_MONTHLY-2024-01/\x00\x00\x01\x02"
	if got != want {
		t.Errorf("run line key %q, want %q", got, want)
	}
	if got, want := string(attemptKey(ch.stream, 258)), "a/"+ch.stream+"/\x00\x00\x01\x02"; got != want {
		t.Errorf("attempt key %q, want %q", got, want)
	}
}
