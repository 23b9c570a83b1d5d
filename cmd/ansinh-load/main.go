// Command ansinh-load measures the ansinh API under load on the same
// machine: a closed loop of N connections, each sending its next request as
// soon as the previous answer is read, for a time or a count of requests.
// It prints requests a second, latency percentiles and the answers by
// status. It only ever talks to a loopback address: it is a benchmark
// tool, not a way to load someone else's server.
//
//	ansinh-load --url http://127.0.0.1:8080 --scenario balance --ids people.csv --duration 20s --concurrency 64
//	ansinh-load gen-csv --lines 300000 --out people.csv   the import file of BenchmarkImport
//	ansinh-load wait --url http://127.0.0.1:8080          until /readyz answers 200
//
// The token is read from ANSINH_TOKEN (or --token, which other users of the
// machine can see in the process list). docs/bench/api-load.sh runs the
// whole benchmark; docs/BENCHMARKS.md has the figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

const (
	exitOK      = 0
	exitFailure = 1 // the run could not be made, or a request failed
	exitUsage   = 2
)

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// errRequestsFailed: the run finished, but not every answer was a 2xx.
var errRequestsFailed = errors.New("some requests failed")

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	var err error
	switch {
	case len(args) > 0 && args[0] == "gen-csv":
		err = genCSVCommand(args[1:], stderr)
	case len(args) > 0 && args[0] == "wait":
		err = waitCommand(ctx, args[1:], stderr)
	default:
		err = loadCommand(ctx, args, stdout, stderr, getenv)
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintln(stderr, "ansinh-load: "+err.Error())
		return exitUsage
	default:
		fmt.Fprintln(stderr, "ansinh-load: "+err.Error())
		return exitFailure
	}
}

// Limits on what the command line controls.
const (
	maxConcurrency = 1024
	maxDuration    = time.Hour
	maxWarmup      = 10 * time.Minute
	maxRequests    = 100_000_000
	maxTimeout     = 5 * time.Minute
)

type loadConfig struct {
	url         string
	token       string
	scenario    string
	ids         string
	duration    time.Duration
	warmup      time.Duration
	requests    int
	concurrency int
	timeout     time.Duration
	client      string
	firstSerial int
	seed        uint64
	serverPID   int
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseLoad(args []string, stderr io.Writer, getenv func(string) string) (loadConfig, error) {
	var cfg loadConfig
	fs := newFlagSet("ansinh-load", stderr)
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8080", "the server, on a loopback address")
	fs.StringVar(&cfg.token, "token", "", "API token (default $ANSINH_TOKEN; a flag shows in the process list)")
	fs.StringVar(&cfg.scenario, "scenario", "balance", "balance, register, payment-method or me")
	fs.StringVar(&cfg.ids, "ids", "", "the imported CSV: citizen IDs for balance and payment-method")
	fs.DurationVar(&cfg.duration, "duration", 20*time.Second, "how long to measure, after the warm-up (at most 1h)")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "load sent before measuring, not counted (connections, caches)")
	fs.IntVar(&cfg.requests, "requests", 0, "stop after this many measured requests (0: only --duration bounds the run)")
	fs.IntVar(&cfg.concurrency, "concurrency", 64, "connections, each with one request in flight (1 to 1024)")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "give up on one request after this long (counted as an error)")
	fs.StringVar(&cfg.client, "client", "direct", "direct (a connection per worker, read and written by the worker: lighter) or stdlib (net/http's Transport)")
	fs.IntVar(&cfg.firstSerial, "first-serial", 500_000, "register: citizen ID serials start here; keep them past the imported ones")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the random choices (which person, which ward)")
	fs.IntVar(&cfg.serverPID, "server-pid", 0, "the server's process ID: report its CPU time per measured request (Linux /proc)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return cfg, usagef("unexpected argument %q (see ansinh-load -h)", fs.Arg(0))
	}
	if cfg.token == "" {
		cfg.token = getenv("ANSINH_TOKEN")
	}
	switch {
	case cfg.concurrency < 1 || cfg.concurrency > maxConcurrency:
		return cfg, usagef("--concurrency %d: want 1 to %d", cfg.concurrency, maxConcurrency)
	case cfg.duration <= 0 || cfg.duration > maxDuration:
		return cfg, usagef("--duration %s: want more than 0 and at most %s", cfg.duration, maxDuration)
	case cfg.warmup < 0 || cfg.warmup > maxWarmup:
		return cfg, usagef("--warmup %s: want 0 to %s", cfg.warmup, maxWarmup)
	case cfg.requests < 0 || cfg.requests > maxRequests:
		return cfg, usagef("--requests %d: want 0 to %d", cfg.requests, maxRequests)
	case cfg.timeout <= 0 || cfg.timeout > maxTimeout:
		return cfg, usagef("--timeout %s: want more than 0 and at most %s", cfg.timeout, maxTimeout)
	case cfg.firstSerial < 0 || cfg.firstSerial > maxSerial:
		return cfg, usagef("--first-serial %d: want 0 to %d", cfg.firstSerial, maxSerial)
	case cfg.client != "direct" && cfg.client != "stdlib":
		return cfg, usagef("--client %q: want direct or stdlib", cfg.client)
	case cfg.serverPID < 0:
		return cfg, usagef("--server-pid %d: want a process ID", cfg.serverPID)
	case cfg.token == "":
		return cfg, usagef("no token: set ANSINH_TOKEN (or --token)")
	}
	return cfg, nil
}

// loopbackURL parses the server's URL and refuses anything but http(s) to
// a loopback address: an IP literal, or "localhost". The dialer checks the
// address actually dialled too (loopbackDialer), so a hosts file mapping
// localhost elsewhere is refused as well.
func loopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, usagef("--url %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, usagef("--url %q: want http:// or https://", raw)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, usagef("--url %q: want only a scheme, a host and a port", raw)
	}
	host := u.Hostname()
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, usagef("--url %q: %q is not a loopback address; ansinh-load only loads a server on this machine (127.0.0.1, ::1, localhost)", raw, host)
		}
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// loopbackDialer refuses to connect anywhere but a loopback address,
// whatever a name resolved to.
func loopbackDialer() *net.Dialer {
	return &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return fmt.Errorf("dial %s: %w", address, err)
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("dial %s: not a loopback address; refused", address)
			}
			return nil
		},
	}
}

// newClient keeps one connection per worker alive between requests: a
// closed loop of N workers needs N idle connections, and the default of 2
// per host would open and close a connection per request.
func newClient(concurrency int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               nil, // never through a proxy: the load is for this machine
		DialContext:         loopbackDialer().DialContext,
		MaxIdleConns:        concurrency,
		MaxIdleConnsPerHost: concurrency,
		MaxConnsPerHost:     concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // measure the server's JSON, not gzip in both processes
		ForceAttemptHTTP2:   false,
		// A balance is about 12 KB: read in one system call rather than
		// three or four with the default 4 KiB buffer. The generator
		// shares the machine's cores with the server, and every
		// microsecond it spends is one the server does not get.
		ReadBufferSize: 64 << 10,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		// A redirect could lead off this machine; the API does not send any.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func newScenario(cfg loadConfig, t target) (scenario, error) {
	var ids idSet
	if cfg.scenario == "balance" || cfg.scenario == "payment-method" {
		if cfg.ids == "" {
			return nil, usagef("--scenario %s needs --ids, the imported CSV", cfg.scenario)
		}
		var err error
		if ids, err = readIDs(cfg.ids); err != nil {
			return nil, err
		}
	}
	switch cfg.scenario {
	case "balance":
		return &balanceScenario{target: t, ids: ids.all}, nil
	case "payment-method":
		return &paymentMethodScenario{target: t, banked: ids.banked}, nil
	case "register":
		return newRegisterScenario(t, cfg.firstSerial), nil
	case "me":
		return &meScenario{target: t}, nil
	}
	return nil, usagef("--scenario %q: want balance, register, payment-method or me", cfg.scenario)
}

func loadCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, err := parseLoad(args, stderr, getenv)
	if err != nil {
		return err
	}
	base, err := loopbackURL(cfg.url)
	if err != nil {
		return err
	}
	sc, err := newScenario(cfg, target{base: base, token: cfg.token})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "ansinh-load: %s on %s, %d connections, %s warm-up, %s measured\n",
		cfg.scenario, base, cfg.concurrency, cfg.warmup, cfg.duration)
	addr := base.Host
	if base.Port() == "" {
		addr = net.JoinHostPort(base.Hostname(), "80")
	}
	newDoer := func() doer { return newDirectConn(addr, cfg.timeout) }
	if cfg.client == "stdlib" || base.Scheme != "http" {
		client := newClient(cfg.concurrency, cfg.timeout)
		newDoer = func() doer { return client }
	}
	rep, err := runLoad(ctx, loadRun{
		newDoer: newDoer, scenario: sc, name: cfg.scenario,
		concurrency: cfg.concurrency, warmup: cfg.warmup, duration: cfg.duration,
		requests: cfg.requests, seed: cfg.seed, serverPID: cfg.serverPID,
	})
	if err != nil {
		return err
	}
	rep.write(stdout)
	if rep.requests() == 0 {
		return errors.New("no request was measured")
	}
	if rep.failed() > 0 {
		return fmt.Errorf("%w: %d of %d", errRequestsFailed, rep.failed(), rep.requests())
	}
	return nil
}

type loadRun struct {
	newDoer     func() doer // one per worker
	scenario    scenario
	name        string
	concurrency int
	warmup      time.Duration
	duration    time.Duration
	requests    int // measured requests at most; 0: no bound but the duration
	seed        uint64
	serverPID   int // 0: the server's CPU time is not measured
}

// maxBodyBytes bounds what is read of one answer: a balance is a few KiB.
const maxBodyBytes = 16 << 20

// runLoad runs the closed loop: each worker sends a request, reads the
// whole answer, records it, and sends the next. Requests started during
// the warm-up are not measured; none starts after the duration (or once
// the count is reached), and those in flight then are waited for and
// counted, so the measured window ends at the last answer.
func runLoad(ctx context.Context, lr loadRun) (*report, error) {
	sources := make([]requestSource, lr.concurrency)
	for i := range sources {
		var err error
		rng := rand.New(rand.NewPCG(lr.seed, uint64(i)))
		if sources[i], err = lr.scenario.newWorker(i, lr.concurrency, rng); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	measureFrom := start.Add(lr.warmup)
	end := measureFrom.Add(lr.duration)
	var (
		started  atomic.Int64 // measured requests started
		wg       sync.WaitGroup
		results  = make([]*result, lr.concurrency)
		lastDone = make([]time.Time, lr.concurrency)
		errs     = make([]error, lr.concurrency)
	)
	// The server's CPU time over the measured window: sampled when the
	// warm-up ends and after the last answer.
	var cpuStart time.Duration
	var cpuErr error
	cpuSampled := make(chan struct{})
	if lr.serverPID > 0 {
		go func() {
			defer close(cpuSampled)
			select {
			case <-time.After(time.Until(measureFrom)):
				cpuStart, cpuErr = processCPU(lr.serverPID)
			case <-ctx.Done(): // interrupted during the warm-up: nothing to report
			}
		}()
	} else {
		close(cpuSampled)
	}
	for i := range lr.concurrency {
		results[i] = newResult()
		wg.Go(func() {
			lastDone[i], errs[i] = work(ctx, lr, lr.newDoer(), sources[i], measureFrom, end, &started, results[i])
		})
	}
	wg.Wait()
	<-cpuSampled
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w", err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rep := &report{scenario: lr.name, concurrency: lr.concurrency, result: *newResult()}
	var last time.Time
	for i, r := range results {
		rep.merge(r)
		if lastDone[i].After(last) {
			last = lastDone[i]
		}
	}
	if !last.IsZero() {
		rep.elapsed = last.Sub(measureFrom)
	}
	if lr.serverPID > 0 {
		cpuEnd, err := processCPU(lr.serverPID)
		if err = errors.Join(cpuErr, err); err != nil {
			return nil, err
		}
		rep.serverCPU, rep.serverCPUKnown = cpuEnd-cpuStart, true
	}
	return rep, nil
}

// work is one worker's loop. It returns when the last measured answer was
// read, or an error that stops the run (a request that cannot be built).
func work(ctx context.Context, lr loadRun, client doer, next requestSource, measureFrom, end time.Time, started *atomic.Int64, res *result) (time.Time, error) {
	var last time.Time
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		measured := !now.Before(measureFrom)
		if measured && lr.requests > 0 && started.Add(1) > int64(lr.requests) {
			break
		}
		req, err := next()
		if errors.Is(err, errExhausted) {
			break
		}
		if err != nil {
			return last, err
		}
		t0 := time.Now()
		resp, err := client.Do(req.WithContext(ctx))
		if err == nil {
			_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyBytes))
			resp.Body.Close()
		}
		done := time.Now()
		if !measured || ctx.Err() != nil {
			continue
		}
		d := done.Sub(t0)
		last = done
		res.latency.record(d)
		switch {
		case err != nil:
			res.addError(err)
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			res.status[resp.StatusCode]++
			res.ok.record(d)
		default:
			res.status[resp.StatusCode]++
		}
	}
	return last, nil
}
