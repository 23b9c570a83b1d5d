package domain

import (
	"time"
)

// Role is what a user may do. Four eyes rules compare users, not roles.
type Role string

const (
	RoleRegistrar      Role = "registrar"
	RoleFinanceOfficer Role = "finance_officer"
	RoleApprover       Role = "approver"
	RoleAuditor        Role = "auditor"
	RoleAdmin          Role = "admin"
	// RoleSystem is the service itself (seals, scheduled expiry), never a person.
	RoleSystem Role = "system"
)

// Actor is who issued a command.
type Actor struct {
	UserID string `json:"user_id"`
	Role   Role   `json:"role"`
}

// Metadata travels with every event: who, when, why, and how it relates to
// other events. It is what an auditor reads next to the event itself.
type Metadata struct {
	Actor Actor `json:"actor"`
	// RecordedAt is when the service decided the command. The store also
	// stamps its own time; this one is the service's clock at decision.
	RecordedAt time.Time `json:"recorded_at"`
	// EffectiveAt is the business time: when the fact happened in the world
	// (a death on a date, a decree from a date). Zero when it equals RecordedAt.
	EffectiveAt time.Time `json:"effective_at,omitzero"`
	// Reason is why a person acted, required where the rules say so
	// (corrections, suspensions, reversals).
	Reason string `json:"reason,omitempty"`
	// CorrelationID ties together everything one request caused;
	// CausationID is the event or command that directly caused this event.
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	// SchemaVersion of the event's data, so old shapes are upcast on read.
	SchemaVersion int `json:"schema_version"`
	// CommandID is the client's idempotency key for the command that
	// produced this event (empty when the client sent none); CommandHash is a
	// digest of that command's content. A command re-sent with the same ID
	// and hash is answered from the events already written; the same ID with
	// another hash is refused.
	CommandID   string `json:"command_id,omitempty"`
	CommandHash string `json:"command_hash,omitempty"`
}
