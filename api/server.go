// Package api is ansinh's REST API (Echo v4): the wire types, the routes,
// and the cross-cutting rules every route follows — authentication and
// roles, RFC 9457 problems, strict JSON, idempotency keys, ETags and
// If-Match, read-your-writes positions, rate limits, metrics, and a contract
// (openapi.yaml) that the tests hold every request and response to.
//
// Adding a resource: write api/<resource>.go with a method that returns its
// []Route, add that method to Server.routes, describe the operations in
// openapi.yaml, and test them through the contract-checking test client.
// docs/api.md walks through it.
package api

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"time"

	"github.com/ansinh/ansinh/api/users"
	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/ledger"
	"github.com/ansinh/ansinh/projections"
	"github.com/ansinh/ansinh/projections/audit"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

// Config holds the API's settings. Zero fields take the documented default;
// New rejects values outside the documented ranges.
type Config struct {
	// Version is reported by /healthz.
	Version string

	// BodyMaxBytes bounds a request body; a Route may set its own
	// (uploads). Default 1 MiB, at most 64 MiB.
	BodyMaxBytes int64

	Idempotency IdempotencyConfig
	RateLimit   RateLimitConfig

	// WaitMax bounds how long a query waits for the projections to reach
	// the position a client asks for (?min_position=). Default 5s, at most
	// 60s.
	WaitMax time.Duration

	// ReadyLagMax is the projection lag past which /readyz reports the
	// instance not ready. Default 30s.
	ReadyLagMax time.Duration
	// ReadyTimeout bounds each check of /readyz. Default 2s.
	ReadyTimeout time.Duration

	// RequestTimeout bounds the work of one request (its context's
	// deadline); a Route may set its own. Past it the answer is 503
	// timeout, never a silent hang. Default 30s, at most 10m.
	RequestTimeout time.Duration

	// JWT, when set, accepts bearer JWTs from an external identity provider
	// besides the API tokens of the users directory.
	JWT *JWTConfig
}

const (
	defaultBodyMaxBytes = 1 << 20
	maxBodyMaxBytes     = 64 << 20
	defaultWaitMax      = 5 * time.Second
	maxWaitMax          = 60 * time.Second
	defaultReadyLagMax  = 30 * time.Second
	defaultReadyTimeout = 2 * time.Second
	defaultTimeout      = 30 * time.Second
	maxTimeout          = 10 * time.Minute
)

func (c Config) withDefaults() (Config, error) {
	if c.BodyMaxBytes == 0 {
		c.BodyMaxBytes = defaultBodyMaxBytes
	}
	if c.WaitMax == 0 {
		c.WaitMax = defaultWaitMax
	}
	if c.ReadyLagMax == 0 {
		c.ReadyLagMax = defaultReadyLagMax
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = defaultReadyTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultTimeout
	}
	switch {
	case c.RequestTimeout < 0 || c.RequestTimeout > maxTimeout:
		return c, fmt.Errorf("api: RequestTimeout %s, want up to %s", c.RequestTimeout, maxTimeout)
	case c.BodyMaxBytes < 1 || c.BodyMaxBytes > maxBodyMaxBytes:
		return c, fmt.Errorf("api: BodyMaxBytes %d, want 1 to %d", c.BodyMaxBytes, maxBodyMaxBytes)
	case c.WaitMax < 0 || c.WaitMax > maxWaitMax:
		return c, fmt.Errorf("api: WaitMax %s, want up to %s", c.WaitMax, maxWaitMax)
	case c.ReadyLagMax < 0:
		return c, fmt.Errorf("api: ReadyLagMax %s is negative", c.ReadyLagMax)
	case c.ReadyTimeout < 0:
		return c, fmt.Errorf("api: ReadyTimeout %s is negative", c.ReadyTimeout)
	}
	var err error
	if c.Idempotency, err = c.Idempotency.withDefaults(); err != nil {
		return c, err
	}
	if c.RateLimit, err = c.RateLimit.withDefaults(); err != nil {
		return c, err
	}
	if c.JWT != nil {
		if err := c.JWT.validate(); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Deps are the parts of the service the API drives. New resources add
// theirs here (the ledger's command handlers, the projections' read models).
type Deps struct {
	// Store is the event store, wrapped by Metrics.InstrumentStore when the
	// caller wants append latencies measured. Required.
	Store eventstore.Store
	// Users authenticates API tokens and backs /v1/users. Required.
	Users *users.Directory
	// Ledger runs the commands of the domain's resources (beneficiaries,
	// entitlements, payouts). Required by the routes that write; nil only
	// in tests of the cross-cutting machinery.
	Ledger *ledger.Ledger
	// Roster lists the beneficiaries a payout run's calculation visits (a
	// registry projection). Nil: each calculation scans the whole log
	// (ledger.ScanRoster), which is for tests and small installations.
	Roster ledger.Roster
	// Projections serves read-your-writes waits, /readyz's lag check and the
	// lag gauge. Nil until the projections exist: queries that need it then
	// answer 503. When nil and ReadModels is set, ReadModels serves.
	Projections Projections
	// ReadModels answer the read side (search, balances, histories,
	// reports, the projection-backed trial balance, verification). Nil:
	// those routes answer 503 projections_unavailable. When Roster is nil,
	// ReadModels is the payout calculations' roster too.
	ReadModels *projections.Set
	// SealKeys are the Ed25519 public keys whose seals verification
	// trusts (the sealer's own first), and that GET /v1/seals/public-key
	// hands to auditors.
	SealKeys []ed25519.PublicKey
	// Sealer, when this process seals the log, reports its progress in
	// GET /v1/projections. Nil: not shown.
	Sealer *audit.Sealer
	// Metrics is where the API registers its collectors; nil makes a fresh
	// registry.
	Metrics *Metrics
	// Logger receives one line per request and the errors. Nil discards.
	Logger *slog.Logger
	// Now is the clock of rate limits and idempotency expiry. Nil means
	// time.Now; tests pass a fake one.
	Now func() time.Time
}

// Server is the API. It is an http.Handler.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	now     func() time.Time
	echo    *echo.Echo
	metrics *Metrics
	routes  []Route
	// routePaths are the route templates, the only values the metrics'
	// route label takes.
	routePaths map[string]bool

	idempotency *idempotencyStore
	limiter     *rateLimiter
	jwt         *jwtVerifier
	calcs       calculations // background run calculations; Close stops them
	reads       readSide     // as-of replays and verifications (readside.go)

	spec     *openapi3.T
	docsHTML []byte
}

// Route is one operation of the API. Every route is declared through one,
// so that the rules below cannot be forgotten route by route.
type Route struct {
	Method  string
	Path    string // Echo syntax: /v1/users/:name
	Handler echo.HandlerFunc

	// Roles may call the route. Required unless Public: an empty list is a
	// programming error, not "everyone" (use AllRoles for that), so that a
	// route never becomes open by omission. Roles are not ranked: an admin
	// manages users and nothing else unless a route lists it.
	Roles []domain.Role
	// Public routes skip authentication (health, metrics, the spec).
	Public bool
	// BodyMaxBytes overrides Config.BodyMaxBytes (file uploads).
	BodyMaxBytes int64
	// Timeout overrides Config.RequestTimeout (a large batch).
	Timeout time.Duration
}

// AllRoles is every role a person can have: for routes any user may call.
var AllRoles = users.Roles

// New builds the API.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Users == nil {
		return nil, errors.New("api: Deps.Store and Deps.Users are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics()
	}
	if deps.ReadModels != nil {
		if deps.Projections == nil {
			deps.Projections = deps.ReadModels
		}
		if deps.Roster == nil {
			deps.Roster = deps.ReadModels
		}
	}
	s := &Server{
		cfg:         cfg,
		deps:        deps,
		log:         deps.Logger,
		now:         deps.Now,
		metrics:     deps.Metrics,
		idempotency: newIdempotencyStore(cfg.Idempotency),
		limiter:     newRateLimiter(cfg.RateLimit),
		routePaths:  make(map[string]bool),
	}
	if cfg.JWT != nil {
		s.jwt = newJWTVerifier(*cfg.JWT, deps.Now)
	}
	if s.spec, err = loadSpec(); err != nil {
		return nil, err
	}
	if s.docsHTML, err = renderDocs(s.spec); err != nil {
		return nil, err
	}
	if deps.Projections != nil {
		if err := s.metrics.watchProjections(s.projectionLag); err != nil {
			return nil, err
		}
	}
	if deps.ReadModels != nil {
		if err := s.metrics.watchReadModels(deps.ReadModels.Lag, deps.ReadModels.Runner().Statuses); err != nil {
			return nil, err
		}
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.JSONSerializer = jsonSerializer{}
	e.Pre(s.requestID)
	e.Use(s.accessLog, s.recoverPanic)
	s.echo = e
	for _, group := range [][]Route{
		s.healthRoutes(),
		s.docsRoutes(),
		s.meRoutes(),
		s.userRoutes(),
		s.beneficiaryRoutes(),
		s.entitlementRoutes(),
		s.catalogueRoutes(),
		s.runRoutes(),
		s.paymentRoutes(),
		s.settlementRoutes(),
		s.reconciliationRoutes(),
		s.correctionRoutes(),
		s.trialBalanceRoutes(),
		s.balanceRoutes(),
		s.reportRoutes(),
		s.auditRoutes(),
		s.rebuildRoutes(),
		// New resources add their routes here.
	} {
		for _, r := range group {
			s.handle(r)
		}
	}
	return s, nil
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Routes are the routes the server serves.
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

// handle registers a route behind the middleware its declaration asks for,
// outermost first: deadline, authentication, rate limit, role check, body
// limit, idempotency (POST).
func (s *Server) handle(r Route) {
	if !r.Public && len(r.Roles) == 0 {
		panic(fmt.Sprintf("api: route %s %s declares no roles (use AllRoles or Public)", r.Method, r.Path))
	}
	for _, role := range r.Roles {
		if !users.ValidRole(role) {
			panic(fmt.Sprintf("api: route %s %s lists unknown role %q", r.Method, r.Path, role))
		}
	}
	if r.Timeout < 0 || r.Timeout > maxTimeout || r.BodyMaxBytes < 0 || r.BodyMaxBytes > maxBodyMaxBytes {
		panic(fmt.Sprintf("api: route %s %s: timeout %s or body limit %d out of range", r.Method, r.Path, r.Timeout, r.BodyMaxBytes))
	}
	timeout := r.Timeout
	if timeout == 0 {
		timeout = s.cfg.RequestTimeout
	}
	mw := []echo.MiddlewareFunc{withTimeout(timeout)}
	if r.Timeout > 0 {
		mw = append(mw, extendConnection(timeout))
	}
	if !r.Public {
		mw = append(mw, s.authenticate, s.rateLimit, authorize(r.Roles))
	}
	limit := r.BodyMaxBytes
	if limit == 0 {
		limit = s.cfg.BodyMaxBytes
	}
	mw = append(mw, bodyLimit(limit))
	if r.Method == http.MethodPost {
		mw = append(mw, s.idempotent)
	}
	s.echo.Add(r.Method, r.Path, r.Handler, mw...)
	s.routes = append(s.routes, r)
	s.routePaths[r.Path] = true
}

// accessLog writes one line per request and feeds the request metrics. It
// renders errors itself (c.Error) so that it logs the status the client got.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		elapsed := time.Since(start)
		status := c.Response().Status
		route := s.routeLabel(c)
		s.metrics.observeRequest(route, c.Request().Method, status, elapsed)
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		Logger(c).LogAttrs(c.Request().Context(), level, "request",
			slog.String("method", c.Request().Method),
			slog.String("path", clip(c.Request().URL.Path)),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Int64("bytes_out", c.Response().Size),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		)
		return nil
	}
}

// routeLabel is the route template of a matched request, or "unmatched":
// metrics labels must come from a bounded set, never from the raw path.
func (s *Server) routeLabel(c echo.Context) string {
	if path := c.Path(); s.routePaths[path] {
		return path
	}
	return "unmatched"
}

// recoverPanic turns a handler's panic into a 500 with the stack in the log.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler { //nolint:errorlint // sentinel value compare, as net/http does
				panic(r)
			}
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}()
		return next(c)
	}
}

// withTimeout puts a deadline on the request's context: the store and the
// ledger give up when it passes, and the client gets 503 timeout.
func withTimeout(d time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			ctx, cancel := context.WithTimeout(c.Request().Context(), d)
			defer cancel()
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}

// bodyLimit caps the request body. Reading past the cap fails with an
// *http.MaxBytesError, which the error handler answers with 413; a declared
// Content-Length over the cap is refused before anything is read.
func bodyLimit(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > limit {
				return Problemf(http.StatusRequestEntityTooLarge, "body_too_large",
					"the request body has %d bytes, at most %d are accepted here; send less (split a batch into pages)", req.ContentLength, limit)
			}
			req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
			return next(c)
		}
	}
}
