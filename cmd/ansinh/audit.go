package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections"
)

// What the operator and auditor commands (rebuild, replay, verify) share:
// where the read models live, how they are opened offline, and a view of
// the store that counts what a long read has done.

// readModelsDirName is the projections database inside the data directory,
// beside the embedded store's "events" (docs/projections.md, "Wiring"). It
// stays local with EventStoreDB too: the log is remote, the read models are
// not.
const readModelsDirName = "projections"

func readModelsDir(cfg storeConfig) string { return filepath.Join(cfg.data, readModelsDirName) }

// errNoReadModels: the data directory has no projections database.
var errNoReadModels = errors.New("no read models")

// openReadModels opens the projections database of the data directory.
// Without create, a directory that does not exist is errNoReadModels
// rather than an empty database made on the spot: verify must not invent
// read models to compare.
func openReadModels(cfg storeConfig, create bool) (*projections.DB, error) {
	dir := readModelsDir(cfg)
	if !create {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", dir, errNoReadModels)
		}
	}
	db, err := projections.OpenDB(dir, projections.DBOptions{})
	if err != nil {
		if isLocked(err) {
			return nil, fmt.Errorf("%w; %s", err, heldHint)
		}
		return nil, err
	}
	return db, nil
}

// isLocked tells a database held by another process (the fcntl lock:
// EAGAIN or EACCES) or by this one (Pebble's own check) from other errors.
func isLocked(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) ||
		strings.Contains(err.Error(), "lock held by current process")
}

// requireLog refuses a data directory without an embedded event store.
// openStore would create an empty one, and a typo in --data would then
// verify an empty log as intact, or replay nothing.
func requireLog(cfg storeConfig) error {
	if cfg.store != "" {
		return nil
	}
	dir := filepath.Join(cfg.data, "events")
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--data %s: no event store there (%s does not exist); name the server's data directory", cfg.data, dir)
	}
	return nil
}

// readModelOptions are the runner options for the configured store: the
// embedded store numbers its events one by one, so progress and lag can be
// told in events; EventStoreDB's positions are byte offsets.
func readModelOptions(cfg storeConfig) projections.Options {
	return projections.Options{CountablePositions: cfg.store == ""}
}

// eventsInLog is the number of events up to head when the store's
// positions count them, else 0 (unknown), for a progress display.
func eventsInLog(cfg storeConfig, head eventstore.Position) int64 {
	if cfg.store != "" {
		return 0
	}
	return int64(head.Commit)
}

// watchedStore passes the store through and watches the global log as it
// is read: it counts the events for the progress display and, for a
// replay, remembers the last event before the replay's end (the event an
// as-of answer reflects, and when it was recorded). Its ReadAll may be
// called from a reader goroutine while the command reads last; hence mu.
type watchedStore struct {
	eventstore.Store
	until projections.Until // where a replay stops; zero: never
	prog  *progress

	mu      sync.Mutex
	stopped bool // an event past until was seen: later pages are read ahead and not applied
	last    eventstore.Position
	lastAt  time.Time
}

func (w *watchedStore) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	page, err := w.Store.ReadAll(ctx, after, limit)
	w.mu.Lock()
	defer w.mu.Unlock()
	n := int64(0)
	for i := range page {
		if w.stopped || w.past(&page[i]) {
			w.stopped = true
			break
		}
		w.last, w.lastAt = page[i].Position, page[i].RecordedAt
		n++
	}
	if w.prog != nil && n > 0 {
		w.prog.add(n, n)
	}
	return page, err
}

// past mirrors projections.Until: a replay applies events up to and
// including Position, and stops at the first event recorded after Time.
func (w *watchedStore) past(ev *eventstore.RecordedEvent) bool {
	if !w.until.Position.IsStart() && ev.Position.Compare(w.until.Position) > 0 {
		return true
	}
	return !w.until.Time.IsZero() && ev.RecordedAt.After(w.until.Time)
}

// lastEvent is the last event before the replay's end: its position and
// when the store recorded it (zero when nothing was read).
func (w *watchedStore) lastEvent() (eventstore.Position, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.lastAt
}

// vnTime shows an instant as people in Vietnam read it.
func vnTime(t time.Time) string {
	return t.In(domain.VietnamZone).Format(time.RFC3339Nano)
}

// headOf is the head of the log.
func headOf(ctx context.Context, store eventstore.Store) (eventstore.Position, error) {
	h, err := store.Head(ctx)
	if err != nil {
		return h, fmt.Errorf("head of the log: %w", err)
	}
	return h, nil
}
