package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/eventstore/esdb"
	"github.com/ansinh/ansinh/eventstore/pebble"
)

// storeConfig says where the events are.
type storeConfig struct {
	// data is the service's directory. The embedded store keeps its
	// files in data/events.
	data string
	// store is empty for the embedded store, or an EventStoreDB connection
	// string (esdb://host:2113?tls=false, esdb+discover://...).
	store string
	// cacheBytes is the embedded store's block cache; 0: its default.
	cacheBytes int64
}

func addStoreFlags(fs *flagSet, cfg *storeConfig) {
	fs.StringVar(&cfg.data, "data", "./data", "the service's data directory (the embedded event store lives in <data>/events)")
	fs.StringVar(&cfg.store, "store", "", "event store: empty for the embedded store in --data, or an EventStoreDB connection string esdb://...")
	fs.fromEnv("data", "ANSINH_DATA")
	fs.fromEnv("store", "ANSINH_STORE")
}

func (c storeConfig) validate() error {
	switch {
	case c.store == "":
		if c.data == "" {
			return usagef("--data is empty; name the data directory of the embedded store")
		}
	case strings.HasPrefix(c.store, "esdb://"), strings.HasPrefix(c.store, "esdb+discover://"):
	default:
		return usagef("--store %q: want empty (the embedded store) or an esdb:// connection string", c.store)
	}
	return nil
}

// describe names the store for logs without the credentials an EventStoreDB
// connection string may carry.
func (c storeConfig) describe() string {
	if c.store == "" {
		return "embedded pebble in " + filepath.Join(c.data, "events")
	}
	scheme, rest, _ := strings.Cut(c.store, "://")
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = "***@" + rest[at+1:]
	}
	return scheme + "://" + rest
}

// heldHint follows the error of a data directory held by another process:
// with the embedded store (and for the read models with any store) that is
// normally a running server, which owns them until it stops.
const heldHint = "if `ansinh serve` runs on this data directory, stop it first, or use the API"

// openStore opens the configured event store.
func openStore(ctx context.Context, cfg storeConfig, log *slog.Logger) (eventstore.Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.store != "" {
		s, err := esdb.Open(ctx, cfg.store, esdb.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("event store %s: %w", cfg.describe(), err)
		}
		return s, nil
	}
	if err := os.MkdirAll(cfg.data, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	s, err := pebble.Open(filepath.Join(cfg.data, "events"), pebble.Options{Logger: log, CacheBytes: cfg.cacheBytes})
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("%w; %s", err, heldHint)
		}
		return nil, err
	}
	return s, nil
}

// closeInto closes c when a command ends and adds a failure to close to the
// command's error (*err), so that a store that could not flush its last
// writes never fails silently. Use it as: defer closeInto(&err, "event store", store).
func closeInto(err *error, what string, c io.Closer) {
	if cerr := c.Close(); cerr != nil {
		*err = errors.Join(*err, fmt.Errorf("close %s: %w", what, cerr))
	}
}
