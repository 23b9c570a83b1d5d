package disbursement

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ansinh/ansinh/domain"
)

// Limits on identifiers a client chooses. They keep stream names well under
// the store's 200-byte limit: the longest stream, a top-up obligation, is
// "payment-" + 12 + 1 + program + 1 + 7 + "-topup-" + correction ID.
const (
	MaxIDBytes          = 40 // run, correction and statement IDs
	MaxProgramCodeBytes = 40
	CitizenIDDigits     = 12
)

// ValidateID checks a client-chosen identifier (run, correction, statement):
// 1 to MaxIDBytes ASCII letters, digits, '-', '_' or '.', starting with a
// letter or digit. These are the characters a stream name may hold, minus ':'
// and '@' which the ledger keeps for its own separators; the first character
// keeps IDs safe in spreadsheet cells (no leading '-').
func ValidateID(field, id string) error {
	if id == "" {
		return domain.Reject("required", field, "is required")
	}
	if len(id) > MaxIDBytes {
		return domain.Reject("too_long", field, "must be at most %d characters", MaxIDBytes)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(isAlnum(c) || i > 0 && (c == '-' || c == '_' || c == '.')) {
			return domain.Reject("invalid_id", field, "may hold only letters, digits, '-', '_' and '.', starting with a letter or digit")
		}
	}
	return nil
}

// ValidateCitizenID checks a 12-digit citizen ID (CCCD).
func ValidateCitizenID(field, id string) error {
	if len(id) != CitizenIDDigits {
		return domain.Reject("invalid_citizen_id", field, "must be %d digits", CitizenIDDigits)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return domain.Reject("invalid_citizen_id", field, "must be %d digits", CitizenIDDigits)
		}
	}
	return nil
}

// ValidateProgramCode checks a program code as it appears in stream names:
// letters, digits and '_' only. A '-' would make "payment-<cid>-<program>-
// <period>" ambiguous (program "a-2024" and period "01" vs program "a" ...).
func ValidateProgramCode(field, code string) error {
	if code == "" {
		return domain.Reject("required", field, "is required")
	}
	if len(code) > MaxProgramCodeBytes {
		return domain.Reject("too_long", field, "must be at most %d characters", MaxProgramCodeBytes)
	}
	for i := 0; i < len(code); i++ {
		if !(isAlnum(code[i]) || code[i] == '_') {
			return domain.Reject("invalid_program", field, "may hold only letters, digits and '_'")
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Stream name prefixes. Projections subscribe by prefix, so they are part of
// the contract with them.
const (
	PaymentStreamPrefix        = "payment-"
	RunStreamPrefix            = "run-"
	CorrectionStreamPrefix     = "correction-"
	AdjustmentsStreamPrefix    = "adjustments-"
	ReconciliationStreamPrefix = "reconciliation-"
)

// RunStream is the stream of payout run id.
func RunStream(runID string) string { return RunStreamPrefix + runID }

// CorrectionStream is the stream of correction id.
func CorrectionStream(id string) string { return CorrectionStreamPrefix + id }

// AdjustmentsStream holds one beneficiary's approved top-ups and recoveries:
// the only place where a calculation finds money owed or due outside the
// entitlement rules, read once per beneficiary.
func AdjustmentsStream(citizenID string) string { return AdjustmentsStreamPrefix + citizenID }

// ReconciliationStream is the stream of one imported bank statement.
func ReconciliationStream(id string) string { return ReconciliationStreamPrefix + id }

// ObligationKey names one thing owed: a beneficiary's amount of one program
// for one period, or an approved top-up (TopUp is then the correction ID).
type ObligationKey struct {
	CitizenID string        `json:"citizen_id"`
	Program   string        `json:"program"`
	Period    domain.Period `json:"period"`
	TopUp     string        `json:"top_up,omitempty"`
}

// Validate checks every part of k.
func (k ObligationKey) Validate() error {
	if err := ValidateCitizenID("citizen_id", k.CitizenID); err != nil {
		return err
	}
	if err := ValidateProgramCode("program", k.Program); err != nil {
		return err
	}
	if k.Period.IsZero() {
		return domain.Reject("required", "period", "is required")
	}
	if k.TopUp != "" {
		return ValidateID("top_up", k.TopUp)
	}
	return nil
}

// Stream is the obligation's stream name: payment-<citizenID>-<program>-
// <YYYY-MM>, with -topup-<correctionID> for a top-up. Deriving it from the
// identity is what makes a second payment impossible: whoever pays it appends
// here, with the revision they loaded.
func (k ObligationKey) Stream() string {
	s := PaymentStreamPrefix + k.CitizenID + "-" + k.Program + "-" + k.Period.String()
	if k.TopUp != "" {
		s += "-topup-" + k.TopUp
	}
	return s
}

func (k ObligationKey) String() string { return k.Stream() }

// Less orders keys by stream name: the one deterministic order in which a
// calculation plans lines and spends offsets, so that a resumed or racing
// calculation makes the same plan.
func (k ObligationKey) Less(o ObligationKey) bool { return k.Stream() < o.Stream() }

// PaymentID is the ID of one transfer (or one cash handout) in a run: one
// payee, one destination. It is <runID>-<payee citizen ID>-<b|c><6 hex>, the
// hex a digest of the destination (bank and account, or district and ward),
// so a recalculation or a racing replica derives the same ID for the same
// payee and destination, and a payee paid into two accounts gets two IDs.
// Lines fully kept back by recoveries travel in a payment of their own ("o"),
// which is never sent.
func PaymentID(runID string, p Payee) string {
	h := sha256.New()
	var tag string
	switch p.Method {
	case MethodBank:
		tag = "b"
		fmt.Fprintf(h, "bank\x00%s\x00%s", p.BankCode, p.AccountNumber)
	case MethodOffset:
		tag = "o"
		fmt.Fprintf(h, "offset")
	default:
		tag = "c"
		fmt.Fprintf(h, "cash\x00%s\x00%s", p.District, p.Ward)
	}
	return runID + "-" + p.CitizenID + "-" + tag + hex.EncodeToString(h.Sum(nil))[:6]
}

// RunOfPayment reads the run ID back from a payment ID, so that a bank answer
// or a statement line naming a payment leads to the run that holds it.
func RunOfPayment(paymentID string) (string, error) {
	// Cut from the right: run IDs may contain '-'.
	i := strings.LastIndexByte(paymentID, '-')
	if i <= 0 {
		return "", domain.Reject("invalid_payment_id", "payment_id", "%q is not a payment ID (<run>-<citizen ID>-<destination>)", clipID(paymentID))
	}
	j := strings.LastIndexByte(paymentID[:i], '-')
	if j <= 0 || i-j-1 != CitizenIDDigits || len(paymentID)-i-1 != 7 {
		return "", domain.Reject("invalid_payment_id", "payment_id", "%q is not a payment ID (<run>-<citizen ID>-<destination>)", clipID(paymentID))
	}
	run := paymentID[:j]
	if err := ValidateID("payment_id", run); err != nil {
		return "", domain.Reject("invalid_payment_id", "payment_id", "%q is not a payment ID (<run>-<citizen ID>-<destination>)", clipID(paymentID))
	}
	return run, nil
}

func clipID(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
