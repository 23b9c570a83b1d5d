package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

func (s *Server) healthRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/healthz", Handler: s.healthz, Public: true},
		{Method: http.MethodGet, Path: "/readyz", Handler: s.readyz, Public: true},
		{Method: http.MethodGet, Path: "/metrics", Handler: echo.WrapHandler(s.metrics.handler()), Public: true},
	}
}

type healthBody struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

// healthz says the process is alive and serving; it checks nothing else, so
// that an orchestrator does not restart a healthy process because the event
// store is down.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, healthBody{Status: "ok", Version: s.cfg.Version})
}

type readyCheck struct {
	Name       string   `json:"name"`
	OK         bool     `json:"ok"`
	Detail     string   `json:"detail,omitempty"`
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
}

type readyBody struct {
	Status string       `json:"status"`
	Checks []readyCheck `json:"checks"`
}

// readyz says whether this instance should get traffic: the event store
// answers, and the projections (once there are any) are less than
// Config.ReadyLagMax behind.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.ReadyTimeout)
	defer cancel()
	var checks []readyCheck
	store := readyCheck{Name: "eventstore", OK: true}
	if _, err := s.deps.Store.Head(ctx); err != nil {
		store.OK, store.Detail = false, "the event store does not answer: "+err.Error()
		Logger(c).Warn("readiness: event store", "err", err)
	}
	checks = append(checks, store)
	if s.deps.Projections != nil {
		proj := readyCheck{Name: "projections", OK: true}
		lag, err := s.projectionLag(ctx)
		if err != nil {
			proj.OK, proj.Detail = false, "the projection lag could not be measured: "+err.Error()
		} else {
			secs := lag.Seconds()
			proj.LagSeconds = &secs
			if lag > s.cfg.ReadyLagMax {
				proj.OK, proj.Detail = false, "the projections are "+lag.Round(1e9).String()+" behind, over "+s.cfg.ReadyLagMax.String()
			}
		}
		checks = append(checks, proj)
	}
	var failed []string
	for _, ch := range checks {
		if !ch.OK {
			failed = append(failed, ch.Name+": "+ch.Detail)
		}
	}
	if len(failed) > 0 {
		return NewProblem(http.StatusServiceUnavailable, "not_ready", strings.Join(failed, "; ")).
			WithHeader("Retry-After", "5")
	}
	return c.JSON(http.StatusOK, readyBody{Status: "ready", Checks: checks})
}
