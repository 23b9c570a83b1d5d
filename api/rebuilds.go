package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/projections"
	"github.com/labstack/echo/v4"
)

// Rebuilding read models while the server keeps serving (docs/api.md,
// "Rebuilding read models while serving"):
//
//   - POST /v1/rebuilds {"projections": ["registry"]}: rebuild the named
//     read models (all of them when the list is empty or the body absent)
//     from the first event of the log into new generations, while the
//     current ones keep answering queries and following live writes, and
//     switch each one over, in one atomic step, when it has caught up
//     (projections.Runner.RebuildAll: one pass over the log for all of
//     them). A read model that fails on an event keeps its generation. It
//     runs in the background, one at a time per server (503 rebuild_busy),
//     within rebuildTimeout: 202 and Location; GET /v1/rebuilds/{id} shows
//     it running, then how each read model ended, and GET /v1/projections
//     its progress. A read model the server is rebuilding already refuses
//     the whole request (409 rebuild_in_progress) and nothing starts.
//
// Admins only: a rebuild reads the whole log and holds every named read
// model's batch and cache in memory at once. Each server has read models of
// its own (docs/deploy.md), so a rebuild is one server's.
var rebuilders = []domain.Role{domain.RoleAdmin}

const (
	rebuildTimeout = 2 * time.Hour
	// maxRebuildRecords bounds the finished rebuilds a server remembers.
	maxRebuildRecords = 20
	// maxRebuildNames bounds the list a request may send.
	maxRebuildNames = 16
)

func (s *Server) rebuildRoutes() []Route {
	return []Route{
		{Method: http.MethodPost, Path: "/v1/rebuilds", Handler: s.startRebuild, Roles: rebuilders},
		{Method: http.MethodGet, Path: "/v1/rebuilds/:rebuild_id", Handler: s.getRebuild, Roles: rebuilders},
	}
}

type (
	rebuildRequest struct {
		// Projections names the read models; empty: all.
		Projections []string `json:"projections"`
	}
	rebuildOutcomeJSON struct {
		Projection string `json:"projection"`
		// Rebuilt: switched to a new generation built from the first event
		// (or, for a read model that held nothing, caught up from it).
		Rebuilt bool `json:"rebuilt"`
		// Generation serves the read model now.
		Generation uint64 `json:"generation"`
		// Error says why it was not rebuilt (it kept its generation).
		Error *rebuildErrorJSON `json:"error"`
	}
	rebuildErrorJSON struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
		// Failure is the event the new generation stopped on, as GET
		// /v1/projections shows a stopped read model (code
		// projection_failed).
		Failure *failureJSON `json:"failure"`
	}
	rebuildJobJSON struct {
		RebuildID   string               `json:"rebuild_id"`
		Projections []string             `json:"projections"`
		State       string               `json:"state"` // running, succeeded, failed
		StartedAt   time.Time            `json:"started_at"`
		StartedBy   string               `json:"started_by"`
		RequestID   string               `json:"request_id"`
		FinishedAt  *time.Time           `json:"finished_at"`
		Outcomes    []rebuildOutcomeJSON `json:"outcomes"` // null while running
	}
)

// rebuilds are the background rebuilds of one server.
type rebuilds = backgroundJobs[rebuildJobJSON]

var errRebuildBusy = NewProblem(http.StatusServiceUnavailable, "rebuild_busy",
	"a rebuild is already running on this server; wait for it (GET /v1/rebuilds/{id}) or retry later").
	WithHeader("Retry-After", "60")

func (s *Server) startRebuild(c echo.Context) error {
	var in rebuildRequest
	if err := decodeOptional(c, &in); err != nil {
		return err
	}
	set := s.deps.ReadModels
	if set == nil {
		return errNoReadModels
	}
	names, err := rebuildNames(in.Projections, set.Runner().Names())
	if err != nil {
		return err
	}
	id, err := newJobID("reb-")
	if err != nil {
		return err
	}
	job := &rebuildJobJSON{RebuildID: id, Projections: names, State: "running",
		StartedAt: s.now().UTC(), StartedBy: ActorOf(c).UserID, RequestID: RequestID(c)}
	ctx, cancel, err := s.reads.rebuilds.begin(job.RebuildID, job, errRebuildBusy, rebuildTimeout)
	if err != nil {
		return err
	}
	before := generations(set)
	// All or nothing: a read model the server is rebuilding already (its
	// own upgrade at start-up, say) refuses the request.
	wait, err := set.Runner().TryRebuild(ctx, names)
	if err != nil {
		s.reads.rebuilds.abort(job.RebuildID)
		cancel()
		if errors.Is(err, projections.ErrRebuildInProgress) {
			return Problemf(http.StatusConflict, "rebuild_in_progress",
				"%s; wait for it (GET /v1/projections shows its progress), then ask again", err).WithHeader("Retry-After", "60")
		}
		return err
	}
	log := Logger(c).With("rebuild_id", job.RebuildID)
	log.Info("rebuild started", "projections", names)
	started := s.reads.rebuilds.view(job.RebuildID) // before it can end
	go func() {
		defer cancel()
		s.rebuild(ctx, log, set, job.RebuildID, names, before, wait)
	}()
	c.Response().Header().Set(echo.HeaderLocation, "/v1/rebuilds/"+job.RebuildID)
	return c.JSON(http.StatusAccepted, started)
}

// generations are the generations serving each read model now, read
// without the log.
func generations(set *projections.Set) map[string]uint64 {
	gens := map[string]uint64{}
	for _, st := range set.Runner().Statuses() {
		gens[st.Name] = st.Generation
	}
	return gens
}

// rebuildNames checks the names a request sent against the read models
// there are; none means all of them.
func rebuildNames(asked, known []string) ([]string, error) {
	if len(asked) == 0 {
		return known, nil
	}
	if len(asked) > maxRebuildNames {
		return nil, Problemf(http.StatusUnprocessableEntity, "too_many_projections",
			"projections: at most %d names, got %d", maxRebuildNames, len(asked)).
			WithField("projections", "at most "+strconv.Itoa(maxRebuildNames)+" names")
	}
	for i, name := range asked {
		field := "projections[" + strconv.Itoa(i) + "]"
		switch {
		case !slices.Contains(known, name):
			msg := "want one of " + strings.Join(known, ", ")
			return nil, Problemf(http.StatusUnprocessableEntity, "invalid_projection", "%s: no read model %q; %s", field, clip(name), msg).
				WithField(field, msg)
		case slices.Contains(asked[:i], name):
			return nil, Problemf(http.StatusUnprocessableEntity, "invalid_projection", "%s: %q is named twice", field, clip(name)).
				WithField(field, "named twice")
		}
	}
	return asked, nil
}

// rebuild is the background job: it waits for the rebuild's outcome.
func (s *Server) rebuild(ctx context.Context, log *slog.Logger, set *projections.Set, id string, names []string,
	before map[string]uint64, wait func() []error) {
	errs := wait()
	after := generations(set)
	out := make([]rebuildOutcomeJSON, len(names))
	state := "succeeded"
	for i, name := range names {
		err := errs[i]
		if err != nil && ctx.Err() != nil && after[name] > before[name] {
			// Handed over before the deadline or the shutdown, and
			// switched (StartRebuild): rebuilt all the same.
			err = nil
		}
		out[i] = rebuildOutcomeJSON{Projection: name, Rebuilt: err == nil, Generation: after[name]}
		if err != nil {
			state = "failed"
			out[i].Error = rebuildError(ctx, err)
			log.Error("read model not rebuilt", "projection", name, "code", out[i].Error.Code, "err", err)
		}
	}
	at := s.now().UTC()
	s.reads.rebuilds.end(id, maxRebuildRecords, func(j *rebuildJobJSON) {
		j.FinishedAt, j.State, j.Outcomes = &at, state, out
	})
	log.Info("rebuild finished", "state", state)
}

// rebuildError says why a read model was not rebuilt, without the text of
// errors the client cannot act on (those are logged with the request_id).
func rebuildError(ctx context.Context, err error) *rebuildErrorJSON {
	var f *projections.Failure
	switch {
	case errors.As(err, &f):
		return &rebuildErrorJSON{Code: "projection_failed", Failure: toFailureJSON(f),
			Detail: "the new generation stopped on an event (failure); it was dropped and the read model kept its generation"}
	case errors.Is(err, projections.ErrRebuildInProgress):
		return &rebuildErrorJSON{Code: "rebuild_in_progress", Detail: "another rebuild of this read model started first"}
	case errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &rebuildErrorJSON{Code: "rebuild_timeout", Detail: "not finished within " + rebuildTimeout.String()}
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return &rebuildErrorJSON{Code: "rebuild_interrupted", Detail: "the server stopped during the rebuild; start it again"}
	}
	return &rebuildErrorJSON{Code: "rebuild_failed", Detail: "the rebuild stopped on an internal error (logged with the request_id); start it again"}
}

func (s *Server) getRebuild(c echo.Context) error {
	id := c.Param("rebuild_id")
	if !strings.HasPrefix(id, "reb-") || len(id) > 40 {
		return rebuildNotFound(id)
	}
	if v := s.reads.rebuilds.view(id); v != nil {
		return c.JSON(http.StatusOK, v)
	}
	return rebuildNotFound(id)
}

func rebuildNotFound(id string) error {
	return Problemf(http.StatusNotFound, "rebuild_not_found",
		"this server has no rebuild %q: rebuilds are remembered by the server that ran them (the last %d)", clip(id), maxRebuildRecords).
		WithField("rebuild_id", "unknown")
}
