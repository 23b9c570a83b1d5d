package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/ledger"
	"github.com/ansinh/ansinh/projections"
	"github.com/ansinh/ansinh/projections/audit"
)

// readModels are the background parts of serve that follow the log: the
// read models (projections.Set) and the sealer, both keeping their state in
// <data>/projections, local to this instance also when the log is in
// EventStoreDB (they can always be rebuilt from the log).
type readModels struct {
	db     *projections.DB
	set    *projections.Set
	sealer *audit.Sealer
	keys   []ed25519.PublicKey // this instance's seal key first, then --seal-trust
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// startReadModels opens the read models' database and the seal key
// (<data>/seal-key.pem, created with mode 0600 on first start, with the
// public key beside it in seal-key.pub.pem for auditors), and starts the
// read models and the sealer. Queries answer from the stored state at once;
// the read models then catch up with the log from their checkpoints.
func startReadModels(cfg serveConfig, store eventstore.Store, log *slog.Logger) (_ *readModels, err error) {
	trusted, err := readTrustedKeys(cfg.sealTrust)
	if err != nil {
		return nil, err
	}
	key, err := audit.LoadOrCreateKey(cfg.storeConfig.data)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.storeConfig.data, "projections")
	db, err := projections.OpenDB(dir, projections.DBOptions{Logger: log, CacheBytes: int64(cfg.cacheMiB) << 20 * 3 / 4})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = db.Close()
		}
	}()
	plog := log.With("component", "projections")
	set, err := projections.NewSet(db, store, ledger.NewCodec(), projections.SetOptions{Runner: projections.Options{
		// The embedded store numbers events one by one, so lag can be
		// told in events; EventStoreDB's positions are byte offsets.
		CountablePositions: cfg.storeConfig.store == "",
		// After an upgrade, a read model whose new version reads the
		// state of the earlier one (the registry of version 1) keeps
		// serving it while Run rebuilds it beside (docs/deploy.md).
		RebuildUpgraded: true,
		Logger:          plog,
	}})
	if err != nil {
		return nil, err
	}
	sealLog := log.With("component", "sealer")
	sealer, err := audit.NewSealer(store, db.Pebble(), projections.ComponentPrefix("sealer"), key,
		audit.SealerOptions{Every: cfg.sealEvery, Interval: cfg.sealInterval, Logger: sealLog})
	if err != nil {
		return nil, err
	}
	pub := key.Public().(ed25519.PublicKey)
	rm := &readModels{db: db, set: set, sealer: sealer, keys: append([]ed25519.PublicKey{pub}, trusted...)}
	ctx, stop := context.WithCancel(context.Background())
	rm.stop = stop
	start := set.Position()
	rm.wg.Go(func() {
		if err := set.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			plog.Error("the read models stopped following the log", "err", err)
		}
	})
	rm.wg.Go(func() {
		if err := sealer.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			sealLog.Error("the sealer stopped", "err", err)
		}
	})
	rm.wg.Go(func() {
		if logCaughtUp(ctx, store, set, plog) {
			warmCache(ctx, db, int64(cfg.cacheMiB)<<20*3/4, plog)
		}
	})
	log.Info("read models started", "dir", dir, "position", start.String(), "seal_key_id", audit.KeyID(pub),
		"seal_every", cfg.sealEvery, "seal_interval", cfg.sealInterval.String(), "trusted_seal_keys", len(rm.keys))
	return rm, nil
}

// logCaughtUp says once when the read models have reached the head of the
// log as it was at start: until then queries answer from older figures,
// and an operator wants to know how long that lasted. It reports whether
// they did.
func logCaughtUp(ctx context.Context, store eventstore.Store, set *projections.Set, log *slog.Logger) bool {
	start := time.Now()
	head, err := store.Head(ctx)
	if err != nil {
		return false
	}
	for ctx.Err() == nil {
		// WaitFor gives up after the runner's MaxWait; ask again.
		if err := set.WaitFor(ctx, head); err == nil {
			log.Info("read models caught up", "position", head.String(), "duration_ms", time.Since(start).Milliseconds())
			return true
		} else if !errors.Is(err, context.DeadlineExceeded) {
			if ctx.Err() == nil {
				log.Warn("read models not caught up", "err", err)
			}
			return false
		}
	}
	return false
}

// warmCache loads the read models into the block cache once they have
// caught up, so that the first queries after a restart do not each read
// and decompress their blocks from the files (projections.DB.WarmCache).
// It runs beside the queries and stops at shutdown.
func warmCache(ctx context.Context, db *projections.DB, limit int64, log *slog.Logger) {
	start := time.Now()
	n, err := db.WarmCache(ctx, limit)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("warming the block cache failed; queries read from the files until it fills", "err", err)
		}
		return
	}
	log.Info("block cache warmed", "mib", n>>20, "duration_ms", time.Since(start).Milliseconds())
}

// close stops the read models and the sealer, waits for them, and closes
// their database. Call it after the HTTP server and the API's background
// jobs have stopped, before the event store closes.
func (rm *readModels) close() error {
	rm.stop()
	rm.wg.Wait()
	if err := rm.db.Close(); err != nil {
		return fmt.Errorf("close the read models: %w", err)
	}
	return nil
}

// readTrustedKeys reads the PEM public keys of --seal-trust: the keys of
// other instances sealing the same log (EventStoreDB), whose seals
// verification accepts too.
func readTrustedKeys(list string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, path := range strings.Split(list, ",") {
		path = strings.TrimSpace(path)
		if path == "" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--seal-trust: %w", err)
		}
		k, err := audit.ParsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("--seal-trust %s: %w", path, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
