package domain

import (
	"errors"
	"fmt"
)

// Kind classifies why a command was rejected, so that every transport maps it
// the same way (HTTP: Invalid 422, Conflict 409, NotFound 404, Forbidden 403).
type Kind int

const (
	// Invalid: the command breaks a rule or has bad input; the user fixes it.
	Invalid Kind = iota + 1
	// Conflict: the command does not fit the aggregate's current state
	// (already approved, already registered, ...).
	Conflict
	// NotFound: the command names something that does not exist.
	NotFound
	// Forbidden: the actor may not do this (self-approval, wrong role).
	Forbidden
)

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case Conflict:
		return "conflict"
	case NotFound:
		return "not found"
	case Forbidden:
		return "forbidden"
	}
	return "unknown"
}

// RuleError is a rejected command, in words a registrar or finance officer
// understands. Code is stable (clients and docs key on it); Message says what
// is wrong and how to fix it; Field names the input at fault, if one is.
type RuleError struct {
	Kind    Kind
	Code    string // e.g. "citizen_id_taken"
	Field   string // e.g. "citizen_id"; empty when no single field is at fault
	Message string
}

func (e *RuleError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Reject builds an Invalid RuleError.
func Reject(code, field, format string, args ...any) *RuleError {
	return &RuleError{Kind: Invalid, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Rejectf builds a RuleError of any kind.
func Rejectf(kind Kind, code, field, format string, args ...any) *RuleError {
	return &RuleError{Kind: kind, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// AsRuleError finds a RuleError in err's chain.
func AsRuleError(err error) (*RuleError, bool) {
	var re *RuleError
	ok := errors.As(err, &re)
	return re, ok
}
