// Package ledger turns commands into events in the event store. It is the
// only place where the pure domain (packages registry, entitlement,
// disbursement) meets the store (package eventstore).
//
// # Load, decide, append
//
// Every command runs the same loop (Handle): read the aggregate's stream from
// the start in pages and fold its events into a state (Load; at most
// MaxStreamEvents); call the pure decider; append the decided events with the
// revision that was loaded as the expected revision (NoStream for a new
// stream). If another writer appended in between, the store answers
// ErrWrongExpectedRevision and nothing was written: the loop loads and
// decides again, at most Config.MaxAttempts times (default 5), then gives up
// with ErrTooManyConflicts. A decider's error (a *domain.RuleError) is
// returned as is and nothing is appended. A decider that decides no events
// is a successful no-op. The Result carries the state the command left, so
// that callers answer without reading the stream again.
//
// The state of beneficiaries commanded recently is kept
// (Config.StateCacheEntries, 50,000 by default; statecache.go; not payout
// runs, whose Evolve shares maps between states), and the first round decides on it
// without reading the stream. That is safe because the append still expects
// the cached revision (a write by anyone else makes it fail and the command
// runs again from a load), because a refusal or a no-op decided on a cached
// state is checked by a round from a load before it is answered, and because
// a command whose ID already wrote to the stream always loads (a replay).
//
// Streams: "beneficiary-<CCCD>" (registration, bank account, proxies and
// entitlements of one person) and "catalogue" (programs and base levels).
//
// # What a caller sends: Request
//
// Actor (user and role; required), Reason (recorded in metadata),
// CorrelationID and CausationID (default: the command ID), EffectiveAt
// (business time), and two optional controls:
//
//   - CommandID: an idempotency key. Event IDs are derived from it
//     (UUIDv5 of stream, command ID and index), and the metadata records it
//     with a SHA-256 of the command. A command re-sent with the same ID and
//     content returns the first Result with Replayed set and writes nothing;
//     the same ID with other content is the Conflict "command_id_reused".
//     The key is scoped to the stream the command writes.
//   - ExpectedRevision (HTTP If-Match): the command is decided only if the
//     stream is still at that revision, and is not retried; a mismatch is a
//     *RevisionMismatchError (errors.Is ErrRevisionMismatch).
//
// Roles: registry and entitlement commands need registrar, admin or system;
// catalogue commands admin or system. Anything else is a Forbidden
// RuleError ("role_not_allowed", or "unauthenticated" with no valid actor).
//
// # What a caller gets: Result
//
// The appended events (ID, type, revision, decoded event), the stream's
// revision after the command (the ETag; for a no-op the current one, -1 for
// no stream) and the global position of the last event (for
// read-your-writes: a projection that has reached it shows the change).
//
// # Handlers
//
//	Register(ctx, req, registry.Register)                      (Result, error)
//	Beneficiary(ctx, req, citizenID, registry.Command)          (Result, error)
//	Entitlement(ctx, req, citizenID, entitlement.Command)       (Result, error)
//	ChangeCatalogue(ctx, req, entitlement.CatalogueCommand)     (Result, error)
//	SeedCatalogue(ctx)                                          (appended int, error)
//	LoadBeneficiary(ctx, citizenID)        (Loaded[registry.Beneficiary], error)
//	Catalogue(ctx)                         (entitlement.Catalogue, revision, error)
//	Owed(ctx, citizenID, period) / OwedThrough(ctx, citizenID, period) ([]entitlement.Line, error)
//
// Errors: *domain.RuleError (Invalid 422, Conflict 409, NotFound 404,
// Forbidden 403), *RevisionMismatchError (412), ErrTooManyConflicts (503,
// retry later); anything else is a store failure (500).
//
// # Events and metadata
//
// NewCodec knows every event type and the upcasters of old versions; event
// data is the event's JSON, and metadata is domain.Metadata (actor,
// recorded_at from the injected Clock, effective_at, reason, correlation and
// causation IDs, schema_version from the type's ".vN", command_id and
// command_hash). Projections decode the global log with Ledger.Codec().
package ledger
