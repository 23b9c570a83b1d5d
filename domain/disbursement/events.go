package disbursement

import "github.com/ansinh/ansinh/domain"

// RegisterEvents adds every event type of this package to c.
func RegisterEvents(c *domain.Codec) {
	domain.Register[PaymentIssued](c)
	domain.Register[PaymentCancelled](c)
	domain.Register[PaymentReleased](c)
	domain.Register[PaymentSettled](c)
	domain.Register[PaymentFailed](c)
	domain.Register[PaymentReturned](c)
	domain.Register[PaymentReversed](c)

	domain.Register[PayoutRunOpened](c)
	domain.Register[PayoutRunPageStarted](c)
	domain.Register[PayoutRunPaymentsCalculated](c)
	domain.Register[PayoutRunCalculated](c)
	domain.Register[PayoutRunApproved](c)
	domain.Register[PayoutRunReleased](c)
	domain.Register[PayoutRunCancelled](c)
	domain.Register[PayoutRunClosed](c)
	domain.Register[PaymentsReconciled](c)

	domain.Register[TopUpGranted](c)
	domain.Register[RecoveryRaised](c)
	domain.Register[RecoveryOffsetReserved](c)
	domain.Register[RecoveryOffsetReleased](c)

	domain.Register[CorrectionRequested](c)
	domain.Register[CorrectionApproved](c)
	domain.Register[CorrectionRejected](c)

	domain.Register[StatementImported](c)
	domain.Register[StatementLinesMatched](c)
	domain.Register[ReconciliationCompleted](c)
}
