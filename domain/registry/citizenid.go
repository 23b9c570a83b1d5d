package registry

import (
	"fmt"

	"github.com/ansinh/ansinh/domain"
)

// A citizen ID (căn cước công dân, CCCD) has 12 digits: a 3-digit code of
// the province of birth registration, one digit for sex and century of
// birth, the last two digits of the birth year, and a 6-digit serial
// (Circular 07/2016/TT-BCA). Checking the structure and its agreement with
// the date of birth and sex catches most typing errors before they become a
// second record for the same person.
const CitizenIDLen = 12

// provinceCodes are the 63 province codes a citizen ID may start with.
var provinceCodes = map[string]bool{}

func init() {
	for _, c := range []string{
		"001", "002", "004", "006", "008", "010", "011", "012", "014", "015", "017", "019", "020",
		"022", "024", "025", "026", "027", "030", "031", "033", "034", "035", "036", "037", "038",
		"040", "042", "044", "045", "046", "048", "049", "051", "052", "054", "056", "058", "060",
		"062", "064", "066", "067", "068", "070", "072", "074", "075", "077", "079", "080", "082",
		"083", "084", "086", "087", "089", "091", "092", "093", "094", "095", "096",
	} {
		provinceCodes[c] = true
	}
}

// ValidateCitizenID checks the structure of a citizen ID: 12 digits and a
// known province code. field names the input in the error.
func ValidateCitizenID(field, id string) error {
	if len(id) != CitizenIDLen {
		return domain.Reject("invalid_citizen_id", field, "must be the 12 digits of the citizen ID card (CCCD), got %d characters", len(id))
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return domain.Reject("invalid_citizen_id", field, "must be 12 digits, without spaces or letters")
		}
	}
	if !provinceCodes[id[:3]] {
		return domain.Reject("invalid_citizen_id", field, "starts with %s, which is not a province code; check the first three digits", id[:3])
	}
	return nil
}

// centuryDigit is the 4th digit of a citizen ID: even for men, odd for
// women, 0/1 for births in 1900-1999, 2/3 in 2000-2099, 4/5 in 2100-2199.
func centuryDigit(sex Sex, birthYear int) byte {
	d := byte((birthYear/100 - 19) * 2)
	if sex == Female {
		d++
	}
	return '0' + d
}

// CheckCitizenIDMatches checks that a citizen ID's sex-and-century digit and
// year digits agree with the date of birth and sex.
func CheckCitizenIDMatches(field, id string, dob domain.Date, sex Sex) error {
	if err := ValidateCitizenID(field, id); err != nil {
		return err
	}
	if id[3] != centuryDigit(sex, dob.Year) {
		return domain.Reject("citizen_id_mismatch", field,
			"its 4th digit is %c, but a %s born in %d has %c; check the ID, the sex and the date of birth",
			id[3], sex, dob.Year, centuryDigit(sex, dob.Year))
	}
	if yy := fmt.Sprintf("%02d", dob.Year%100); id[4:6] != yy {
		return domain.Reject("citizen_id_mismatch", field,
			"its 5th and 6th digits are %s, but the year of birth %d ends in %s; check the ID and the date of birth",
			id[4:6], dob.Year, yy)
	}
	return nil
}

// MakeCitizenID builds a well-formed citizen ID, for fixtures and tests:
// province "001" is Hanoi; serial is 0..999999.
func MakeCitizenID(province string, sex Sex, birthYear, serial int) string {
	return fmt.Sprintf("%s%c%02d%06d", province, centuryDigit(sex, birthYear), birthYear%100, serial%1_000_000)
}
