// Package disbursement holds the pure rules of paying beneficiaries: payout
// runs, payments and their attempts, bank settlement, reconciliation of bank
// statements, corrections, and the double-entry postings every money event
// maps to. It does no I/O; the ledger package loads state from the event
// store, calls the deciders here, and appends what they return.
//
// The unit of "no double payment" is the obligation: what one beneficiary is
// owed for one program and one period (or one approved top-up). Its stream
// name is derived from that identity (ObligationKey.Stream), so every run,
// every replica and every retry that wants to pay it appends to the same
// stream with an expected revision, and only one of them can claim it. A
// payment, as the bank sees it, groups one payee's obligation lines of one
// run into one transfer (PaymentID); it is a view of the run, not a stream.
//
// See docs/disbursement.md for the lifecycle, the file layouts and a worked
// example with every posting.
package disbursement
