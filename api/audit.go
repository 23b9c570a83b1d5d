package api

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections"
	"github.com/ansinh/ansinh/projections/audit"
	"github.com/labstack/echo/v4"
)

// What auditors and operators use to trust the ledger (docs/projections.md,
// "Audit"):
//
//   - GET /v1/seals: the signed seals of the log (audit.Sealer), with
//     whether each is signed by a key this server trusts;
//   - GET /v1/seals/public-key: those keys, as PEM, for checking the seals
//     with tools of one's own;
//   - POST /v1/verifications: re-read the whole log, recompute the hash
//     chain, check every seal, check that the trial balance nets to zero and
//     that every read model equals a fresh replay (projections.Set.Verify).
//     That is a full read of the log and a full rebuild of the read models
//     in memory: minutes on a large log, so it runs in the background, one
//     at a time per server (503 verification_busy), within
//     verificationTimeout; the answer is 202 and Location, and
//     GET /v1/verifications/{id} shows it running, then its report;
//   - GET /v1/projections: where each read model stands (position, lag, the
//     event it stopped on if it failed, a rebuild's progress) and the
//     sealer's progress, for operators.
//
// Auditors and admins only: these show who did what, and verification is
// costly.
var auditors = []domain.Role{domain.RoleAuditor, domain.RoleAdmin}

const (
	verificationTimeout = 2 * time.Hour
	// maxVerificationRecords bounds the finished verifications a server
	// remembers (newest kept).
	maxVerificationRecords = 20
)

func (s *Server) auditRoutes() []Route {
	return append(s.eventRoutes(),
		Route{Method: http.MethodGet, Path: "/v1/seals", Handler: s.listSeals, Roles: auditors},
		Route{Method: http.MethodGet, Path: "/v1/seals/public-key", Handler: s.sealKeys, Roles: AllRoles},
		Route{Method: http.MethodPost, Path: "/v1/verifications", Handler: s.startVerification, Roles: auditors},
		Route{Method: http.MethodGet, Path: "/v1/verifications/:verification_id", Handler: s.getVerification, Roles: auditors},
		Route{Method: http.MethodGet, Path: "/v1/projections", Handler: s.projectionStatus, Roles: auditors},
	)
}

type (
	sealJSON struct {
		Revision uint64              `json:"revision"`
		Position eventstore.Position `json:"position"`
		// Count: the seal covers events 1..count of the log; the events
		// prev_count+1..count are listed in it by digest.
		Count     uint64              `json:"count"`
		PrevCount uint64              `json:"prev_count"`
		Through   eventstore.Position `json:"through"`
		Hash      string              `json:"hash"`
		SealedAt  time.Time           `json:"sealed_at"`
		KeyID     string              `json:"key_id"`
		Signature string              `json:"signature"` // base64
		// DigestsSHA256 is the SHA-256 (hex) of the short digests the seal
		// lists (they are left out here: 8 bytes per event).
		DigestsSHA256 string `json:"digests_sha256"`
		// TrustedKey: signed by a key this server trusts; SignatureValid:
		// the signature checks out against that key. Verification checks
		// far more (the events themselves).
		TrustedKey     bool `json:"trusted_key"`
		SignatureValid bool `json:"signature_valid"`
	}
	sealListJSON struct {
		Items      []sealJSON `json:"items"`
		NextCursor string     `json:"next_cursor,omitempty"`
	}
)

func (s *Server) listSeals(c echo.Context) error {
	page, err := ParsePage(c)
	if err != nil {
		return err
	}
	from := uint64(0)
	if page.After != "" {
		n, err := strconv.ParseUint(page.After, 10, 63)
		if err != nil {
			msg := "pass back next_cursor of the previous page unchanged"
			return NewProblem(http.StatusBadRequest, "invalid_cursor", "cursor: "+msg).WithField("cursor", msg)
		}
		from = n
	}
	recs, err := s.deps.Store.ReadStream(c.Request().Context(), audit.SealStream,
		eventstore.ReadStreamOptions{Direction: eventstore.Forwards, From: from, Limit: page.Limit + 1})
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		return err
	}
	out := sealListJSON{Items: make([]sealJSON, 0, min(len(recs), page.Limit))}
	if len(recs) > page.Limit {
		recs = recs[:page.Limit]
		out.NextCursor = NextCursor(strconv.FormatUint(recs[len(recs)-1].Revision+1, 10))
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range s.deps.SealKeys {
		keys[audit.KeyID(k)] = k
	}
	for _, r := range recs {
		if r.Type != audit.SealedEventType {
			continue
		}
		seal, err := audit.DecodeSeal(r.Data)
		if err != nil {
			// A seal that does not decode is a finding for verification,
			// not a reason to hide the others.
			Logger(c).Warn("a seal does not decode", "position", r.Position.String(), "err", err)
			continue
		}
		digests := sha256.Sum256(seal.Digests)
		item := sealJSON{Revision: r.Revision, Position: r.Position, Count: seal.Count, PrevCount: seal.PrevCount,
			Through: seal.Through, Hash: seal.Hash, SealedAt: seal.SealedAt, KeyID: seal.KeyID,
			Signature: base64.StdEncoding.EncodeToString(seal.Signature), DigestsSHA256: hex.EncodeToString(digests[:])}
		if pub, ok := keys[seal.KeyID]; ok {
			item.TrustedKey = true
			if msg, err := seal.SigningBytes(); err == nil {
				item.SignatureValid = ed25519.Verify(pub, msg, seal.Signature)
			}
		}
		out.Items = append(out.Items, item)
	}
	return c.JSON(http.StatusOK, out)
}

type (
	sealKeyJSON struct {
		KeyID        string `json:"key_id"`
		Algorithm    string `json:"algorithm"`
		PublicKeyPEM string `json:"public_key_pem"`
	}
	sealKeysJSON struct {
		Keys []sealKeyJSON `json:"keys"`
	}
)

// sealKeys lists the public keys seals are checked against. They are not
// secret (the point is that anyone can check a seal), so any role may read
// them.
func (s *Server) sealKeys(c echo.Context) error {
	out := sealKeysJSON{Keys: make([]sealKeyJSON, len(s.deps.SealKeys))}
	for i, k := range s.deps.SealKeys {
		pem, err := audit.EncodePublicKey(k)
		if err != nil {
			return err
		}
		out.Keys[i] = sealKeyJSON{KeyID: audit.KeyID(k), Algorithm: "Ed25519", PublicKeyPEM: string(pem)}
	}
	return c.JSON(http.StatusOK, out)
}

type (
	problemFoundJSON struct {
		Position eventstore.Position `json:"position"`
		Count    uint64              `json:"count"`
		Seal     eventstore.Position `json:"seal"`
		Reason   string              `json:"reason"`
	}
	projectionCheckJSON struct {
		Name       string              `json:"name"`
		Position   eventstore.Position `json:"position"`
		Matches    bool                `json:"matches"`
		Difference string              `json:"difference"`
	}
	verificationReportJSON struct {
		// OK: the log is exactly what its seals say, the books net to zero,
		// and every read model equals a replay.
		OK            bool                `json:"ok"`
		Events        uint64              `json:"events"`
		Head          eventstore.Position `json:"head"`
		Hash          string              `json:"hash"`
		Seals         int                 `json:"seals"`
		SealedThrough uint64              `json:"sealed_through"`
		Unsealed      uint64              `json:"unsealed"`
		// FirstProblem is the earliest finding (null when none); Problems
		// lists up to audit.MaxProblems in log order.
		FirstProblem      *problemFoundJSON     `json:"first_problem"`
		Problems          []problemFoundJSON    `json:"problems"`
		ProblemsTruncated bool                  `json:"problems_truncated"`
		TrialBalanced     bool                  `json:"trial_balance_nets_to_zero"`
		TrialTotal        moneyJSON             `json:"trial_balance_total"`
		Projections       []projectionCheckJSON `json:"projections"`
	}
	verificationJSON struct {
		VerificationID      string                  `json:"verification_id"`
		State               string                  `json:"state"` // running, succeeded, failed
		StartedAt           time.Time               `json:"started_at"`
		StartedBy           string                  `json:"started_by"`
		RequestID           string                  `json:"request_id"`
		ExpectSealedThrough uint64                  `json:"expect_sealed_through"`
		FinishedAt          *time.Time              `json:"finished_at"`
		Error               *calculationErrorJSON   `json:"error"`
		Report              *verificationReportJSON `json:"report"`
	}
)

// verifications are the background verifications of one server (one at
// a time: each reads the whole log).
type verifications = backgroundJobs[verificationJSON]

var errVerificationBusy = NewProblem(http.StatusServiceUnavailable, "verification_busy",
	"a verification is already running on this server (it reads the whole log); wait for it (GET /v1/verifications/{id}) or retry later").
	WithHeader("Retry-After", "60")

type verifyRequest struct {
	// ExpectSealedThrough is the count of the last seal the auditor saw
	// before: a log whose seals stop short of it lost its tail.
	ExpectSealedThrough uint64 `json:"expect_sealed_through"`
}

func (s *Server) startVerification(c echo.Context) error {
	var in verifyRequest
	if err := decodeOptional(c, &in); err != nil {
		return err
	}
	set := s.deps.ReadModels
	if set == nil {
		return errNoReadModels
	}
	id, err := newJobID("ver-")
	if err != nil {
		return err
	}
	job := &verificationJSON{VerificationID: id, State: "running", StartedAt: s.now().UTC(),
		StartedBy: ActorOf(c).UserID, RequestID: RequestID(c), ExpectSealedThrough: in.ExpectSealedThrough}
	ctx, cancel, err := s.reads.verifications.begin(job.VerificationID, job, errVerificationBusy, verificationTimeout)
	if err != nil {
		return err
	}
	log := Logger(c).With("verification_id", job.VerificationID)
	log.Info("verification started", "expect_sealed_through", in.ExpectSealedThrough)
	started := s.reads.verifications.view(job.VerificationID) // before it can end
	go func() {
		defer cancel()
		s.verify(ctx, log, set, job, in)
	}()
	c.Response().Header().Set(echo.HeaderLocation, "/v1/verifications/"+job.VerificationID)
	return c.JSON(http.StatusAccepted, started)
}

// verify is the background job.
func (s *Server) verify(ctx context.Context, log *slog.Logger, set *projections.Set, job *verificationJSON, in verifyRequest) {
	rep, err := set.Verify(ctx, s.deps.Store, s.codec(), s.deps.SealKeys, audit.VerifyOptions{ExpectSealedThrough: in.ExpectSealedThrough})
	at := s.now().UTC()
	if err != nil {
		jobErr := calculationErrorJSON{Code: "verification_failed", Detail: "the verification stopped on an internal error (logged with the request_id); start it again"}
		switch {
		case errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded):
			jobErr = calculationErrorJSON{Code: "verification_timeout", Detail: "the verification did not finish within " + verificationTimeout.String()}
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			jobErr = calculationErrorJSON{Code: "verification_interrupted", Detail: "the server stopped during the verification; start it again"}
		}
		s.reads.verifications.end(job.VerificationID, maxVerificationRecords, func(j *verificationJSON) {
			j.FinishedAt, j.State, j.Error = &at, "failed", &jobErr
		})
		log.Error("verification failed", "code", jobErr.Code, "err", err)
		return
	}
	out := toVerificationReportJSON(&rep)
	s.reads.verifications.end(job.VerificationID, maxVerificationRecords, func(j *verificationJSON) {
		j.FinishedAt, j.State, j.Report = &at, "succeeded", out
	})
	level := slog.LevelInfo
	if !out.OK {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, "verification finished", "ok", out.OK, "events", out.Events, "seals", out.Seals, "problems", len(out.Problems))
}

func toVerificationReportJSON(r *projections.AuditReport) *verificationReportJSON {
	out := &verificationReportJSON{
		OK: r.OK(), Events: r.Chain.Events, Head: r.Chain.Head, Hash: r.Chain.Hash, Seals: r.Chain.Seals,
		SealedThrough: r.Chain.SealedThrough, Unsealed: r.Chain.Unsealed,
		Problems: make([]problemFoundJSON, len(r.Chain.Problems)), ProblemsTruncated: r.Chain.Truncated,
		TrialBalanced: r.TrialBalance.Balanced, TrialTotal: toMoneyJSON(r.TrialBalance.Total),
		Projections: make([]projectionCheckJSON, len(r.Projections)),
	}
	for i, p := range r.Chain.Problems {
		out.Problems[i] = problemFoundJSON{Position: p.Position, Count: p.Count, Seal: p.Seal, Reason: p.Reason}
	}
	if len(out.Problems) > 0 {
		first := out.Problems[0]
		out.FirstProblem = &first
	}
	for i, p := range r.Projections {
		out.Projections[i] = projectionCheckJSON{Name: p.Name, Position: p.Position, Matches: p.Matches, Difference: p.Difference}
	}
	return out
}

func (s *Server) getVerification(c echo.Context) error {
	id := c.Param("verification_id")
	if !strings.HasPrefix(id, "ver-") || len(id) > 40 {
		return verificationNotFound(id)
	}
	v := s.reads.verifications.view(id)
	if v == nil {
		return verificationNotFound(id)
	}
	return c.JSON(http.StatusOK, v)
}

// toFailureJSON is a projection's failure as GET /v1/projections shows it;
// nil for none.
func toFailureJSON(f *projections.Failure) *failureJSON {
	if f == nil {
		return nil
	}
	msg := ""
	if f.Err != nil {
		msg = f.Err.Error()
	}
	return &failureJSON{Position: f.Position, Stream: f.StreamID, Revision: f.Revision, Type: f.EventType,
		EventID: f.EventID.String(), Error: msg, StoppedAt: f.At}
}

func verificationNotFound(id string) error {
	return Problemf(http.StatusNotFound, "verification_not_found",
		"this server has no verification %q: verifications live in the memory of the server that ran them (the last %d are kept)", clip(id), maxVerificationRecords).
		WithField("verification_id", "unknown")
}

type (
	failureJSON struct {
		Position  eventstore.Position `json:"position"`
		Stream    string              `json:"stream"`
		Revision  uint64              `json:"revision"`
		Type      string              `json:"type"`
		EventID   string              `json:"event_id"`
		Error     string              `json:"error"`
		StoppedAt time.Time           `json:"stopped_at"`
	}
	rebuildJSON struct {
		Generation   uint64              `json:"generation"`
		Position     eventstore.Position `json:"position"`
		Applied      uint64              `json:"applied"`
		EventsBehind int64               `json:"events_behind"`
	}
	projectionJSON struct {
		Name         string              `json:"name"`
		Version      int                 `json:"version"`
		Generation   uint64              `json:"generation"`
		Position     eventstore.Position `json:"position"`
		Applied      uint64              `json:"applied"`
		Behind       bool                `json:"behind"`
		EventsBehind int64               `json:"events_behind"`
		Failure      *failureJSON        `json:"failure"`
		Rebuild      *rebuildJSON        `json:"rebuild"`
	}
	sealerJSON struct {
		Position     eventstore.Position `json:"position"`
		Count        uint64              `json:"count"`
		LastSeal     uint64              `json:"last_seal"`
		LastSealAt   *time.Time          `json:"last_seal_at"`
		SealsWritten int                 `json:"seals_written"`
		Pending      bool                `json:"pending"`
	}
	projectionsJSON struct {
		Head     eventstore.Position `json:"head"`
		Position eventstore.Position `json:"position"`
		Behind   bool                `json:"behind"`
		// EventsBehind is -1 with EventStoreDB, whose positions do not
		// count events.
		EventsBehind int64 `json:"events_behind"`
		// LagSeconds is the age of the oldest event not applied yet (what
		// /readyz checks).
		LagSeconds  float64          `json:"lag_seconds"`
		Live        bool             `json:"live"`
		Failed      []string         `json:"failed"`
		Projections []projectionJSON `json:"projections"`
		Sealer      *sealerJSON      `json:"sealer"`
	}
)

func (s *Server) projectionStatus(c echo.Context) error {
	set := s.deps.ReadModels
	if set == nil {
		return errNoReadModels
	}
	ctx := c.Request().Context()
	lag, err := set.Lag(ctx)
	if err != nil {
		return err
	}
	age, err := s.projectionLag(ctx)
	if err != nil {
		return err
	}
	out := projectionsJSON{Head: lag.Head, Position: lag.Position, Behind: lag.Behind, EventsBehind: lag.EventsBehind,
		LagSeconds: age.Seconds(), Live: lag.Live, Failed: append([]string{}, lag.Failed...), Projections: make([]projectionJSON, len(lag.Projections))}
	for i, p := range lag.Projections {
		pj := projectionJSON{Name: p.Name, Version: p.Version, Generation: p.Generation, Position: p.Position, Applied: p.Applied,
			Behind: p.Behind, EventsBehind: p.EventsBehind}
		pj.Failure = toFailureJSON(p.Failure)
		if r := p.Rebuild; r != nil {
			pj.Rebuild = &rebuildJSON{Generation: r.Generation, Position: r.Position, Applied: r.Applied, EventsBehind: r.EventsBehind}
		}
		out.Projections[i] = pj
	}
	if sl := s.deps.Sealer; sl != nil {
		st := sl.Status()
		out.Sealer = &sealerJSON{Position: st.Position, Count: st.Count, LastSeal: st.LastSeal, LastSealAt: timeOrNil(st.LastSealAt),
			SealsWritten: st.SealsWritten, Pending: st.Pending}
	}
	return c.JSON(http.StatusOK, out)
}
