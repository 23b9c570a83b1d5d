package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/ledger"
	"github.com/ansinh/ansinh/projections"
)

const rebuildAbout = `
Rebuilds read models (the projections behind search, balances, payment
history, the district report and the trial balance) from the first event
of the log into a new generation, then switches to it and drops the old
one. Use it after an upgrade that fixes a read model, or when ansinh verify
reports a read model that differs from a replay. Nothing in the event log
changes. If a rebuild fails or is interrupted, the previous generation is
kept.

A read model that holds nothing (after an upgrade that changed its
version, or an import) is replayed from the first event in the generation
it has, named or not; the named read models that held something are
rebuilt in the same pass over the log.

It works offline on <data>/projections: stop the server first. With the
embedded store the server holds the event store too; with EventStoreDB the
log is remote but the projections database is still held by the server.
Progress is shown on stderr; the last line on stdout gives the rate in
events per second. See docs/audit.md.
`

type rebuildConfig struct {
	store storeConfig
	names []string
}

func parseRebuild(args []string, stdout io.Writer, getenv func(string) string) (rebuildConfig, error) {
	var cfg rebuildConfig
	var which string
	all := readModelNames()
	fs := newFlagSet("rebuild", stdout)
	addStoreFlags(fs, &cfg.store)
	fs.StringVar(&which, "projection", "all", "the read models to rebuild: all, or a comma-separated list of "+strings.Join(all, ", "))
	if err := fs.parse(args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, rebuildAbout)
		}
		return cfg, err
	}
	if strings.TrimSpace(which) == "all" {
		cfg.names = all
	} else {
		for n := range strings.SplitSeq(which, ",") {
			n = strings.TrimSpace(n)
			switch {
			case !slices.Contains(all, n):
				return cfg, usagef("--projection %q: want all or one of %s", clipText(n), strings.Join(all, ", "))
			case !slices.Contains(cfg.names, n):
				cfg.names = append(cfg.names, n)
			}
		}
	}
	return cfg, cfg.store.validate()
}

// readModelNames are the read models, in the order they are applied.
func readModelNames() []string {
	var names []string
	for _, p := range projections.ReadModels() {
		names = append(names, p.Name())
	}
	return names
}

func rebuildCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (err error) {
	cfg, err := parseRebuild(args, stdout, getenv)
	if err != nil {
		return err
	}
	if err := requireLog(cfg.store); err != nil {
		return err
	}
	store, err := openStore(ctx, cfg.store, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer closeInto(&err, "event store", store)
	db, err := openReadModels(cfg.store, true)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close read models: %w", cerr))
		}
	}()
	set, err := projections.NewSet(db, store, ledger.NewCodec(), projections.SetOptions{Runner: readModelOptions(cfg.store)})
	if err != nil {
		return err
	}
	before, err := set.Lag(ctx)
	if err != nil {
		return err
	}
	rb := &rebuilder{set: set, names: cfg.names, before: map[string]projections.Status{}, stderr: stderr,
		total: eventsInLog(cfg.store, before.Head), head: before.Head}
	for _, st := range before.Projections {
		rb.before[st.Name] = st
	}
	if rb.fresh, err = set.Runner().FromNothing(ctx); err != nil {
		return err
	}
	start := time.Now()
	results := rb.run(ctx)
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return fmt.Errorf("rebuild interrupted: %w; the read models not yet switched keep their previous generation", ctx.Err())
	}
	after, lagErr := set.Lag(ctx)
	if lagErr != nil {
		return errors.Join(errors.Join(results...), lagErr)
	}
	return rb.report(stdout, after, results, elapsed)
}

// rebuilder runs the rebuilds of one command and shows their progress.
type rebuilder struct {
	set    *projections.Set
	names  []string
	before map[string]projections.Status
	stderr io.Writer
	total  int64 // events in the log when known, for the progress
	head   eventstore.Position
	// fresh are the read models, named or not, whose generation holds
	// nothing while the log does: their version changed (an upgrade; the
	// runner started them again from zero when it opened them) or nothing
	// has caught them up since an import. The Run loop replays them from
	// the first event as soon as it starts: that is their rebuild, and the
	// named ones that held something are built in the same pass
	// (Runner.StartRebuild). caught holds how the ones not named ended.
	fresh  []string
	caught map[string]error
}

// run rebuilds the named read models in one pass over the log while the
// Run loop, which must run for the hand-over, follows the log. One pass
// rather than one read model after the other: each pass reads and decodes
// the whole log, and at Hanoi scale (ten million events) five passes took
// 137 s where one takes 59. The price is memory: every read model's batch
// and cache at once (docs/deploy.md). The rebuild starts before the Run
// loop, so that when some read model holds nothing, the Run loop's first
// pass, which replays it from the first event, builds the named ones too
// (Runner.StartRebuild; when the command waited for that replay and then
// rebuilt the others, it read the log twice). It returns one error per name, then the Run loop's own if
// it failed.
func (rb *rebuilder) run(ctx context.Context) []error {
	// Waiting ends with the Run loop: nothing else would apply the new
	// generations.
	waitCtx, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	wait := rb.set.Runner().StartRebuild(waitCtx, rb.names)
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var runErr error
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		runErr = rb.set.Run(runCtx)
		stopWaiting()
	}()

	var others []string // not named, and held nothing: caught up in the same pass
	for _, name := range rb.fresh {
		if !slices.Contains(rb.names, name) {
			others = append(others, name)
		}
	}
	label := "rebuild " + strings.Join(rb.names, ", ")
	if len(others) > 0 {
		label += " and catch up " + strings.Join(others, ", ")
	}
	prog := newProgress(rb.stderr, isTerminal(rb.stderr), time.Now, label, "events", rb.total, rb.total)
	stopProg := prog.run(ctx)
	watched := append(slices.Clone(rb.names), others...)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var shown int64
	var watch sync.WaitGroup
	watch.Go(func() {
		t := time.NewTicker(progressDrawEvery)
		defer t.Stop()
		for {
			select {
			case <-watchCtx.Done():
				return
			case <-t.C:
				rb.poll(watchCtx, watched, prog, &shown)
			}
		}
	})
	results := wait()
	if len(others) > 0 {
		rb.caught = rb.catchUp(waitCtx, others)
	}
	stopWatch()
	watch.Wait()
	rb.poll(context.WithoutCancel(ctx), watched, prog, &shown) // the last count, after the switch
	stopProg()
	prog.finish()

	stopRun()
	<-runDone
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		results = append(results, fmt.Errorf("following the log: %w", runErr))
	}
	return results
}

// catchUp waits until the Run loop has replayed each of names from the
// first event up to the head of the log as it was at the start (or the
// read model failed: its failure is its result), or ctx ends.
func (rb *rebuilder) catchUp(ctx context.Context, names []string) map[string]error {
	caught := map[string]error{}
	for {
		if lag, err := rb.set.Lag(ctx); err == nil {
			for _, st := range lag.Projections {
				switch {
				case !slices.Contains(names, st.Name):
				case st.Position.Compare(rb.head) >= 0:
					caught[st.Name] = nil
				case st.Failure != nil:
					caught[st.Name] = st.Failure
				}
			}
			if len(caught) == len(names) {
				return caught
			}
		}
		select {
		case <-ctx.Done():
			for _, name := range names {
				if _, ok := caught[name]; !ok {
					caught[name] = ctx.Err()
				}
			}
			return caught
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// poll moves the progress to the events the slowest of the rebuilds and
// catch-ups has applied and committed: their checkpoints, which advance at
// each commit of a batch.
func (rb *rebuilder) poll(ctx context.Context, names []string, prog *progress, shown *int64) {
	lag, err := rb.set.Lag(ctx)
	if err != nil {
		return // the display waits for the next tick
	}
	applied := int64(-1)
	for _, st := range lag.Projections {
		if !slices.Contains(names, st.Name) {
			continue
		}
		var n int64
		switch {
		case st.Generation > rb.before[st.Name].Generation, slices.Contains(rb.fresh, st.Name): // switched, or replayed in place
			n = int64(st.Applied)
		case st.Rebuild != nil:
			n = int64(st.Rebuild.Applied)
		default:
			continue // failed, or not started: not what the others wait for
		}
		if applied < 0 || n < applied {
			applied = n
		}
	}
	if applied > *shown {
		prog.add(applied-*shown, applied-*shown)
		*shown = applied
	}
}

// report prints one line per read model and the rate, and returns the
// failures as one error.
func (rb *rebuilder) report(stdout io.Writer, after projections.Lag, results []error, elapsed time.Duration) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "READ MODEL\tGENERATION\tEVENTS\tPOSITION\tRESULT")
	var failed []string
	var firstErr error
	var events uint64
	var others []error // read models caught up without being named
	for _, st := range after.Projections {
		i := slices.Index(rb.names, st.Name)
		caughtErr, caught := rb.caught[st.Name]
		if i < 0 && !caught {
			continue
		}
		old := rb.before[st.Name].Generation
		var result string
		var err error
		switch {
		case i < 0: // not named, but it held nothing: the Run loop replayed it
			result, err = "caught up from the first event (it held nothing)", caughtErr
			if err != nil {
				result = "stopped: " + oneLine(err.Error())
				others = append(others, fmt.Errorf("catching up %s: %w", st.Name, err))
			}
		case slices.Contains(rb.fresh, st.Name): // named, and it held nothing: replayed in its own generation
			result, err = "rebuilt from the first event (it held nothing)", results[i]
			if err != nil {
				result = "stopped: " + oneLine(err.Error())
			}
		default:
			result, err = "rebuilt", results[i]
			if err != nil {
				result = "kept the previous generation: " + oneLine(err.Error())
			}
		}
		if i >= 0 {
			if err != nil {
				failed = append(failed, st.Name)
				if firstErr == nil {
					firstErr = fmt.Errorf("rebuild of %s: %w", st.Name, err)
				}
			} else {
				events = max(events, st.Applied)
			}
		}
		fmt.Fprintf(tw, "%s\t%d -> %d\t%d\t%s\t%s\n", st.Name, old, st.Generation, st.Applied, st.Position, result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	extra := errors.Join(append(others, results[len(rb.names):]...)...)
	if firstErr != nil || extra != nil {
		if firstErr == nil {
			return extra
		}
		return errors.Join(fmt.Errorf("%d of %d read models not rebuilt (%s); the first: %w", len(failed), len(rb.names), strings.Join(failed, ", "), firstErr), extra)
	}
	fmt.Fprintf(stdout, "rebuilt %d read models from %d events in %s (%s events/s)\n",
		len(rb.names), events, roundDuration(elapsed), rate(int64(events), elapsed))
	return nil
}
