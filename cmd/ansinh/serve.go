package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/ansinh/ansinh/api"
	"github.com/ansinh/ansinh/api/users"
	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/ledger"
	"github.com/ansinh/ansinh/projections/audit"
)

type serveConfig struct {
	addr            string
	storeConfig     storeConfig
	jwtKeyFile      string
	jwtIssuer       string
	jwtAudience     string
	logFormat       string
	logLevel        string
	shutdownTimeout time.Duration
	sealEvery       int
	sealInterval    time.Duration
	sealTrust       string  // comma-separated PEM files of other sealers' public keys
	rateLimit       float64 // requests a second per user; bursts of twice that
	debugAddr       string  // Go's pprof profiles; empty: off
	cacheMiB        int     // block caches of the read models and the embedded store
}

// HTTP server limits. The write timeout must outlast the longest wait for
// the projections (api.Config.WaitMax, 5 s by default) plus the work.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	maxShutdown       = 5 * time.Minute
	maxRateLimit      = 100_000
	// defaultCacheMiB: Hanoi's 300,000 beneficiaries make read models of
	// about 100 MB on disk (Snappy-compressed; the cache holds blocks
	// uncompressed), so 1 GiB keeps a city's balances in memory. With 64
	// MiB a third of a balance query's CPU went to reading and
	// decompressing blocks again.
	defaultCacheMiB = 1024
	// serveGCPercent is the garbage collector's target when GOGC is not
	// set. The server's live Go heap is small (Pebble keeps its caches
	// outside it), and each query allocates its answer and throws it away:
	// at Go's default of 100 the collector ran several times a second
	// under load and took 10 to 25 % of a balance query's CPU. 400 lets
	// the heap grow to five times what is live; GOGC or GOMEMLIMIT in the
	// environment still decide when set.
	serveGCPercent = 400
	// serveHeapHeadroom is what the soft memory limit allows beyond the
	// block caches when GOMEMLIMIT is not set: the ledger's state cache
	// (about 100 MB), answers in flight and garbage.
	serveHeapHeadroom = 1 << 30
)

func parseServe(args []string, stdout io.Writer, getenv func(string) string) (serveConfig, error) {
	var cfg serveConfig
	fs := newFlagSet("serve", stdout)
	fs.StringVar(&cfg.addr, "addr", ":8080", "listen address; port 0 picks a free port (the log says which)")
	fs.fromEnv("addr", "ANSINH_ADDR")
	addStoreFlags(fs, &cfg.storeConfig)
	fs.StringVar(&cfg.jwtKeyFile, "jwt-key", "", "PEM file of the Ed25519 public key of the identity provider; empty accepts no JWTs")
	fs.fromEnv("jwt-key", "ANSINH_JWT_KEY")
	fs.StringVar(&cfg.jwtIssuer, "jwt-issuer", "", "required iss claim of JWTs (empty: not checked)")
	fs.fromEnv("jwt-issuer", "ANSINH_JWT_ISSUER")
	fs.StringVar(&cfg.jwtAudience, "jwt-audience", "", "required aud claim of JWTs (empty: not checked)")
	fs.fromEnv("jwt-audience", "ANSINH_JWT_AUDIENCE")
	fs.StringVar(&cfg.logFormat, "log-format", "auto", "log format: json, text, or auto (text on a terminal, json otherwise)")
	fs.fromEnv("log-format", "ANSINH_LOG_FORMAT")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.fromEnv("log-level", "ANSINH_LOG_LEVEL")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long to let requests in flight finish on SIGTERM")
	fs.IntVar(&cfg.sealEvery, "seal-every", 10_000, "seal the log every this many events (2 to 20000)")
	fs.fromEnv("seal-every", "ANSINH_SEAL_EVERY")
	fs.DurationVar(&cfg.sealInterval, "seal-interval", 5*time.Minute, "seal new events at least this often (at least 1s)")
	fs.fromEnv("seal-interval", "ANSINH_SEAL_INTERVAL")
	fs.StringVar(&cfg.sealTrust, "seal-trust", "", "comma-separated PEM files of other instances' seal public keys, trusted besides this one's")
	fs.fromEnv("seal-trust", "ANSINH_SEAL_TRUST")
	fs.Float64Var(&cfg.rateLimit, "rate-limit", 20, "requests a second each user may send (bursts of twice that), 1 to 100000")
	fs.fromEnv("rate-limit", "ANSINH_RATE_LIMIT")
	fs.IntVar(&cfg.cacheMiB, "cache-mib", defaultCacheMiB, "MiB of memory for block caches: three quarters for the read models, a quarter for the embedded event store (16 to 65536)")
	fs.fromEnv("cache-mib", "ANSINH_CACHE_MIB")
	fs.StringVar(&cfg.debugAddr, "debug-addr", "", "listen address of Go's pprof profiles (/debug/pprof/), unauthenticated: keep it on loopback; empty: off")
	fs.fromEnv("debug-addr", "ANSINH_DEBUG_ADDR")
	if err := fs.parse(args, getenv); err != nil {
		return cfg, err
	}
	// A seal is an event too: sealing every single event would seal each
	// seal in turn, forever.
	if cfg.sealEvery < 2 || cfg.sealEvery > audit.MaxSealEvents {
		return cfg, usagef("--seal-every %d: want 2 to %d", cfg.sealEvery, audit.MaxSealEvents)
	}
	// The upper bound keeps the burst (twice the rate) within what
	// api.RateLimitConfig accepts; NaN fails both comparisons, hence the !.
	if !(cfg.rateLimit >= 1 && cfg.rateLimit <= maxRateLimit) {
		return cfg, usagef("--rate-limit %v: want 1 to %d requests a second", cfg.rateLimit, maxRateLimit)
	}
	if cfg.cacheMiB < 16 || cfg.cacheMiB > 65536 {
		return cfg, usagef("--cache-mib %d: want 16 to 65536", cfg.cacheMiB)
	}
	cfg.storeConfig.cacheBytes = int64(cfg.cacheMiB) << 20 / 4
	if cfg.sealInterval < time.Second {
		return cfg, usagef("--seal-interval %s: want at least 1s", cfg.sealInterval)
	}
	if cfg.storeConfig.data == "" {
		// Also with EventStoreDB: the read models and the seal key are local.
		return cfg, usagef("--data is empty; name the data directory (read models, seal key, embedded store)")
	}
	if cfg.shutdownTimeout <= 0 || cfg.shutdownTimeout > maxShutdown {
		return cfg, usagef("--shutdown-timeout %s: want more than 0 and at most %s", cfg.shutdownTimeout, maxShutdown)
	}
	if cfg.jwtKeyFile == "" && (cfg.jwtIssuer != "" || cfg.jwtAudience != "") {
		return cfg, usagef("--jwt-issuer and --jwt-audience need --jwt-key")
	}
	return cfg, cfg.storeConfig.validate()
}

// newLogger builds the structured logger on stderr: JSON for machines (a
// container's log collector), text for a person at a terminal.
func newLogger(format, level string, stderr io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "auto" {
		format = "json"
		if isTerminal(stderr) {
			format = "text"
		}
	}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	}
	return nil, usagef("--log-format %q: want json, text or auto", format)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func jwtConfig(cfg serveConfig) (*api.JWTConfig, error) {
	if cfg.jwtKeyFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(cfg.jwtKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--jwt-key: %w", err)
	}
	key, err := api.ParseJWTKey(pem)
	if err != nil {
		return nil, fmt.Errorf("--jwt-key %s: %w", cfg.jwtKeyFile, err)
	}
	return &api.JWTConfig{Key: key, Issuer: cfg.jwtIssuer, Audience: cfg.jwtAudience}, nil
}

// serve runs the API until ctx ends (SIGINT or SIGTERM), then stops
// accepting connections, lets the requests in flight finish within
// --shutdown-timeout, stops the background work (calculations,
// verifications, then the read models and the sealer), closes the read
// models' database, and closes the event store last, so that nothing loses
// its store halfway.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (err error) {
	cfg, err := parseServe(args, stdout, getenv)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.logFormat, cfg.logLevel, stderr)
	if err != nil {
		return err
	}
	jwtCfg, err := jwtConfig(cfg)
	if err != nil {
		return err
	}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		// Built without cgo (the container image), Pebble's block caches
		// live on the Go heap, and GOGC 400 alone would let the heap grow
		// to five times them: the soft limit makes the collector work
		// harder instead as the heap nears caches plus headroom.
		debug.SetMemoryLimit(int64(cfg.cacheMiB)<<20 + serveHeapHeadroom)
	}

	raw, err := openStore(ctx, cfg.storeConfig, log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := raw.Close(); cerr != nil {
			log.Error("closing the event store", "err", cerr)
			err = errors.Join(err, fmt.Errorf("close event store: %w", cerr))
		}
	}()
	metrics := api.NewMetrics()
	store := metrics.InstrumentStore(raw)

	dir, err := users.Open(ctx, store, log.With("component", "users"))
	if err != nil {
		return err
	}
	if err := bootstrapAdmin(ctx, dir, stderr, log); err != nil {
		return err
	}

	// The starter catalogue (programs and base levels of DOMAIN.md) is
	// seeded on every start: what is already there is left alone.
	led := ledger.New(store, ledger.DefaultConfig())
	seeded, err := led.SeedCatalogue(ctx)
	if err != nil {
		return err
	}
	if seeded > 0 {
		log.Info("seeded the starter catalogue", "events", seeded)
	}

	rm, err := startReadModels(cfg, store, log)
	if err != nil {
		return err
	}
	// Deferred before srv.Close, so it runs after it: calculations and
	// verifications use the read models until they stop.
	defer func() {
		if cerr := rm.close(); cerr != nil {
			log.Error("closing the read models", "err", cerr)
			err = errors.Join(err, cerr)
		}
	}()

	rateLimit := api.RateLimitConfig{PerSecond: cfg.rateLimit, Burst: int(2 * cfg.rateLimit)}
	srv, err := api.New(api.Config{Version: versionString(), JWT: jwtCfg, RateLimit: rateLimit}, api.Deps{
		Store: store, Users: dir, Ledger: led, Metrics: metrics, Logger: log,
		ReadModels: rm.set, SealKeys: rm.keys, Sealer: rm.sealer,
	})
	if err != nil {
		return err
	}
	// Runs after the HTTP server stopped and before the read models and
	// the store close: background calculations and verifications are
	// cancelled (a calculation resumes on the next calculate) and waited
	// for.
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	// The users directory follows writes by other processes (a shared
	// EventStoreDB) until shutdown.
	followCtx, stopFollow := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := dir.Follow(followCtx); err != nil {
			log.Error("following the users stream stopped", "err", err)
		}
	})
	defer func() {
		stopFollow()
		wg.Wait()
	}()

	if cfg.debugAddr != "" {
		_, stopDebug, err := serveDebug(cfg.debugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "store", cfg.storeConfig.describe(),
		"version", versionString(), "jwt", jwtCfg != nil)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.shutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		_ = httpSrv.Close()
		return fmt.Errorf("requests still running after %s were cut off: %w", cfg.shutdownTimeout, err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// bootstrapAdmin creates the first admin of a store that has no user and
// prints its token on stderr, outside the structured log: log lines are
// shipped and kept, and a credential must not be. It is shown once; a lost
// one is replaced with `ansinh users token --name admin`.
func bootstrapAdmin(ctx context.Context, dir *users.Directory, stderr io.Writer, log *slog.Logger) error {
	token, err := dir.Bootstrap(ctx, domain.Metadata{Actor: domain.Actor{UserID: "ansinh", Role: domain.RoleSystem}})
	if err != nil {
		return fmt.Errorf("create the first admin: %w", err)
	}
	if token == "" {
		return nil
	}
	log.Warn("no users existed: created user admin; its API token is printed on stderr once")
	banner := strings.Repeat("=", 72)
	fmt.Fprintf(stderr, "%s\nansinh: created the first user, \"admin\" (role admin). Its API token is shown only now:\nadmin token: %s\nKeep it in a password manager. Lost it? Stop the server and run: ansinh users token --name admin\n%s\n",
		banner, token, banner)
	return nil
}
