// Package registry is the beneficiary registry: who receives benefits, where
// they live, how they are paid and who may receive for them. It is pure: no
// I/O, no clock (today's date comes in Env), so every rule is tested without
// a store.
//
// # One stream per person
//
// A beneficiary is an aggregate whose events live in the stream
// "beneficiary-<citizen ID>" (Stream). Keying the stream by the 12-digit
// citizen ID (CCCD) makes the ID unique across the registry by construction:
// a registration is appended only where no stream exists, and a second one
// is refused with the Conflict "citizen_id_taken". The same stream holds the
// person's entitlements (package entitlement), so that "nothing is owed after
// death" and "no two active entitlements of one program" are checked inside
// one consistency boundary.
//
// # Decide and evolve
//
// Decide(state, env, command) returns the events a command causes, or a
// *domain.RuleError that says, in a registrar's words, what is wrong
// (Kind Invalid, Conflict, NotFound or Forbidden; a stable Code; the Field at
// fault). Beneficiary.Evolve(event) returns the next state and never changes
// the one it was called on. A command that changes nothing (choosing the
// payment method already chosen) decides no events; a correction that
// changes nothing is refused ("no_change"), so that history only records
// real changes.
//
// # The rules
//
//   - Register: a CCCD of 12 digits whose province code exists and whose
//     4th to 6th digits agree with the sex and year of birth (Circular
//     07/2016/TT-BCA); a full name of letters, cleaned to Unicode NFC with
//     single spaces (domain.CleanText); a date of birth not in the future; an
//     address whose district and ward exist together in the embedded
//     catalogue; a category; a household ID for near-poor households. The
//     address records the names and the catalogue version it was checked
//     against, because units change (wards merged in 2025, districts
//     abolished on 2025-07-01).
//   - CorrectDetails: a correction event with a reason, never an edit; only
//     the changed fields are recorded, and the result is checked as a whole
//     (the CCCD must still agree with sex and birth year).
//   - RecordDeath / RecordMoveAway: the period of the date is the last
//     period anything is owed; the same decision ends every entitlement that
//     ran past it (EntitlementEnded with cause "death" or "moved_away").
//   - Bank account: link, replace, unlink; the bank code comes from the
//     embedded starter list (Banks); the account number is 6 to 20 digits;
//     the holder must be the beneficiary or the proxy whose authorization
//     applies today, compared without diacritics (NameKey: banks write
//     "NGUYEN THI AN"). An account in use for bank transfer cannot be
//     unlinked; bank transfer needs a linked account.
//   - Proxies: an authorization names the proxy (name, CCCD other than the
//     beneficiary's, relationship), a reason (illness or immobility, no legal
//     capacity, minor with guardian, other with a note), a document
//     reference and a validity from/to of at most ten years. Only one applies
//     at a time: a new one must start after the current one's last day.
//     Whether an authorization applies on a day is a pure function
//     (Proxy.ActiveOn): an expired one stops applying on its own, without an
//     event. Revoking ends it from a day (default today).
//
// PayeeOn(day) answers who is paid and how: by transfer to the linked
// account (refused if it is a proxy's and that proxy's authorization no
// longer applies), or in cash to the active proxy, else to the beneficiary.
//
// # Reference data
//
// The administrative-units catalogue (hanoi-admin-units-2025-03: Hanoi's 30
// district-level units and 526 wards, General Statistics Office, 2025-03-01)
// and the bank list (banks-2025, a starter list) are JSON files under
// refdata/, embedded with go:embed: read at compile time, not at run time.
// A new catalogue is a new file and version; recorded addresses keep theirs.
//
// # Events and versions
//
// Event types are past tense plus a version ("BeneficiaryRegistered.v2").
// A stored type is never reshaped: a new shape is a new version, and the old
// one is upcast on read (RegisterEvents installs the upcaster of
// BeneficiaryRegistered.v1, whose address was flat and had no catalogue).
// Every event carries the citizen ID, so a projection needs only the event.
package registry
