// Package entitlement holds programs, amount rules, base-level schedules,
// entitlements, and the pure functions that say what is owed. It does no
// I/O; everything it needs comes in as values.
//
// # Programs and rates are data
//
// A program (Program) has a code, a name, a kind and an amount rule, and is
// defined by a ProgramDefined event, not by code. Kinds: monthly (owed every
// period), annual (owed once a year, in the start month), one_time (owed
// once in a lifetime) and gift (owed once; at most one per program and
// calendar year). Rules: "fixed" (an amount per grant, or the program's
// default, or one of its tiers: the President's Tet gift pays 600,000 or
// 300,000) and "base_times_coefficient" (a base level in force in the period
// times the grant's coefficient, rounded once to whole dong, half away from
// zero). A base level (BaseLevel) is a schedule of rates with effective
// periods and decree references; a rate change is a BaseLevelRateSet event,
// so every computed amount is traced to the rate and decree that applied.
// Definitions and rates are never edited: re-sending the same one is a no-op
// (which makes StarterCatalogue safe to seed on every start), a different
// one under the same code or period is a Conflict.
//
// All programs and base levels live in one stream, "catalogue"
// (CatalogueStream): a single small consistency boundary, loaded with one
// read. StarterCatalogue holds DOMAIN.md's programs: SOCIAL_MONTHLY
// (SOCIAL_ASSISTANCE_BASE: 360,000 from 2021-07, 500,000 from 2024-07),
// MERIT_MONTHLY (PREFERENTIAL_STANDARD: 2,055,000 from 2023-07, 2,789,000
// from 2024-07; relatives of 1/2/3+ martyrs as coefficients 1/2/3),
// RESISTANCE_ONE_TIME and MARTYR_WORSHIP (amount per grant) and
// PRESIDENT_TET_GIFT (tiers).
//
// # Entitlements
//
// An entitlement is one beneficiary's right to one program from a start
// period to an optional end period. Entitlements live in the beneficiary's
// stream as a Book (package registry folds the events), and get IDs E1, E2,
// ... in grant order. Commands, each decided by Decide(book, holder, env,
// command):
//
//   - Grant: a coefficient (base-level programs) or an amount (fixed ones).
//     A start before today is retroactive: the months since become owed
//     (arrears). After death or a move nothing can start, and a grant's end
//     is cut to the last period. The same program may not be granted twice
//     for overlapping periods; a one-time program only once; a gift once a
//     year, and when a person is eligible for a higher tier the existing gift
//     is raised (EntitlementAdjusted), never doubled.
//   - Adjust: new terms from a period; terms from that period on are
//     replaced.
//   - Suspend / Resume: a suspended period is not owed; resuming from a
//     past period makes the months between owed again.
//   - End: the last period owed; ending one period before the start cancels
//     a grant made in error.
//
// Amounts are positive, whole dong and at most Limits.AmountCap (default
// 50,000,000 VND a line), checked at grant and adjustment against every rate
// the terms will meet, and checked again when owed is computed (a rate set
// later could break it: that is an error, not a silent payment).
//
// # What is owed
//
// OwedIn(book, holder, catalogue, period) and OwedThrough(..., period)
// return Lines: beneficiary, entitlement, program, period, amount, and a
// Trace (rule, terms in force and since when, coefficient or fixed amount,
// base level, its rate, effective period and decree). OwedThrough's total is
// the sum of OwedIn over the periods up to P; what has been paid is the
// disbursement package's concern. Nothing is owed after the holder's last
// period, in a suspended period, or, for a once-owed entitlement, in any
// period but its due period (the first unsuspended period from its start).
//
// Property tests (pgregory.net/rapid) drive random command sequences with a
// death at a random step and check after every step: no two live
// entitlements of one program overlap, nothing runs or is owed after death,
// every line is positive whole dong under the cap, a once-owed entitlement
// is owed at most once, and the total up to P is the sum per period.
package entitlement
