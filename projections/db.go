package projections

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// DB is the projections' own Pebble database. It is separate from the event
// store (a directory of its own, e.g. <data>/projections) because with
// EventStoreDB the log is remote while the read models stay local, and
// because the read models can always be thrown away and rebuilt from the log.
//
// Key layout. Every key starts with a family letter and '/':
//
//	m/<name>                      -> JSON meta: active and building generation
//	c/<name>/<gen:8>              -> checkpoint: position (16) + applied count (8)
//	s/<name>/<gen:8>/<key>        -> the projection's own state
//	x/<component>/<key>           -> components outside the runner (the sealer)
//
// A generation is one build of a projection's state from zero; a rebuild
// writes a new generation beside the serving one and switches over when it
// has caught up. The checkpoint and the state of a generation are only ever
// written in the same Pebble batch, which is what makes a crash harmless.
type DB struct {
	pdb *pebble.DB
}

// DBOptions configure the projections database.
type DBOptions struct {
	// InMemory keeps everything in memory (tests, as-of replays).
	InMemory bool
	// CacheBytes is Pebble's block cache. Default 64 MiB.
	CacheBytes int64
	// MemTableBytes is one Pebble memtable. Default 128 MiB (see
	// defaultMemTableBytes).
	MemTableBytes uint64
	// Logger receives Pebble's own messages; nil discards them.
	Logger *slog.Logger
}

// defaultMemTableBytes is the memtable a rebuild writes into. A rebuild
// writes every projection's state in random order of citizen ID, in batches
// of up to the runner's BatchKeys, and a batch larger than half a memtable
// is flushed on its own. With 64 MiB memtables a rebuild of the Hanoi-scale
// log (10.1M events) flushed 102 times for 2.9 GB written, many of the
// tables small and each one spanning the whole key space, so every L0 ->
// Lbase compaction rewrote most of Lbase for a little new data: compactions
// were a third of the rebuild's CPU. With 128 MiB it flushes 33 times, the
// L0 compactions take in more at once, Pebble writes 5.4 GB of tables
// instead of 6.2 GB, compactions take a quarter less CPU (27-28 s instead
// of 36-37 s) and the rebuild 9.4 instead of 10.6-10.8 CPU-µs per event
// (docs/BENCHMARKS.md, BenchmarkReadModelsRebuild). Once compacted a
// database has the same shape either way: BenchmarkBalanceQuery over read
// models of 1.1M events cost 92-98 CPU-µs a query against 100-103.
//
// The cost is memory while writing fast: Pebble starts a memtable at
// 256 KiB and doubles it up to this size, so an idle or lightly written
// database stays small, and a rebuild holds at most two full memtables
// (Pebble's MemTableStopWritesThreshold default), 256 MiB instead of 128.
// 256 MiB memtables alone saved no more CPU, within the noise.
const defaultMemTableBytes = 128 << 20

// OpenDB opens (or creates) the projections database in dir. With
// opts.InMemory, dir is ignored.
func OpenDB(dir string, opts DBOptions) (*DB, error) {
	if opts.CacheBytes == 0 {
		opts.CacheBytes = 64 << 20
	}
	if opts.MemTableBytes == 0 {
		opts.MemTableBytes = defaultMemTableBytes
	}
	if opts.CacheBytes < 0 || opts.MemTableBytes < 1<<20 {
		return nil, fmt.Errorf("projections: CacheBytes %d must be positive and MemTableBytes %d at least 1 MiB", opts.CacheBytes, opts.MemTableBytes)
	}
	po := pebbleOptions(opts)
	cache := pebble.NewCache(opts.CacheBytes)
	defer cache.Unref() // the DB holds its own reference
	po.Cache = cache
	if opts.InMemory {
		po.FS = vfs.NewMem()
		dir = ""
	} else {
		if dir == "" {
			return nil, errors.New("projections: a directory is required unless InMemory")
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("projections: create %s: %w", dir, err)
		}
		dir = filepath.Clean(dir)
	}
	pdb, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("projections: open %s: %w", dir, err)
	}
	return &DB{pdb: pdb}, nil
}

// pebbleOptions are the Pebble settings of the projections database, less
// the cache and the file system. Everything not set here is Pebble's
// default, on purpose, after measuring the alternatives on a Hanoi-scale
// rebuild (BenchmarkReadModelsRebuild, 10.1M events, in CPU-µs per event):
//
//   - Compression stays snappy and the format major version stays Pebble's
//     minimum (row-oriented tables). The event store's MinLZ needs table
//     format v6, whose blocks are columnar; with it a rebuild cost 11.5
//     instead of 10.9, the columnar blocks costing more to write and merge
//     than MinLZ saves, and the tables were 9% larger. No compression
//     writes tables four times as large (214 MB against 49 MB after a
//     1.1M-event rebuild) for no CPU saved.
//   - L0CompactionThreshold stays 4. 8 or 16 saved a further 3% and 7%,
//     but a database at rest keeps up to threshold-1 sublevels in L0 and
//     every query's iterator merges each of them.
//   - LBaseMaxBytes 256 MiB saved about 2%, within the noise, for an
//     Lbase as large as L6 (more space held by overwritten versions).
//   - CompactionConcurrencyRange is (1, GOMAXPROCS/2): one compaction at a
//     time, and up to one for every two cores when Pebble finds level 0 or
//     its compaction debt growing, as a rebuild makes them. On two cores
//     that is Pebble's default (1, 1), where a second compaction would only
//     take CPU from the rebuild. With more cores one compaction at a time
//     would be the rebuild's first limit: compactions alone (flushes run
//     apart) cost 1.7 to 2.3 CPU-µs per event of the ten-million rebuild
//     (a fifth of its CPU in the profiles), so one core compacting keeps
//     up with 440,000 to 590,000 events/s, about the 500,000 goal,
//     whatever the other cores do. Not measured beyond two cores: this
//     machine has two.
//
// None of these settings is persisted in a way that stops an existing
// database from opening: a database written with the earlier options opens
// and reads with these (TestOpensDatabaseOfEarlierOptions).
func pebbleOptions(opts DBOptions) *pebble.Options {
	po := &pebble.Options{
		MemTableSize: opts.MemTableBytes,
		Logger:       pebbleLogger{opts.Logger},
		CompactionConcurrencyRange: func() (int, int) {
			return 1, compactionsUpTo(runtime.GOMAXPROCS(0))
		},
	}
	for i := range po.Levels {
		// Queries and Apply do point reads of keys that mostly exist, but
		// a rebuild's Apply looks up many keys that do not exist yet.
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return po
}

// compactionsUpTo is the most compactions Pebble may run at once on procs
// cores: one for every two, at least one.
func compactionsUpTo(procs int) int { return max(1, procs/2) }

// Close closes the database.
func (db *DB) Close() error {
	if err := db.pdb.Close(); err != nil {
		return fmt.Errorf("projections: close: %w", err)
	}
	return nil
}

// Pebble exposes the underlying database to components that keep their own
// keyspace under x/<component>/ (the sealer). Nothing else may write to it.
func (db *DB) Pebble() *pebble.DB { return db.pdb }

// ComponentPrefix is the keyspace of a component outside the runner.
func ComponentPrefix(component string) []byte {
	return []byte("x/" + component + "/")
}

// The projection name is part of every key, so it must not contain the
// separator, and it is kept short.
var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,39}$`)

func validateName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("projections: name %q: want 1 to 40 of a-z, 0-9, _ and -, starting with a letter", name)
	}
	return nil
}

func metaKey(name string) []byte { return []byte("m/" + name) }

func checkpointKey(name string, gen uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("c/"+name+"/"), gen)
}

func statePrefix(name string, gen uint64) []byte {
	k := binary.BigEndian.AppendUint64([]byte("s/"+name+"/"), gen)
	return append(k, '/')
}

// prefixEnd is the smallest key greater than every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// generation identifies one build of a projection.
type generation struct {
	Gen     uint64 `json:"gen"`
	Version int    `json:"version"`
}

// meta is what m/<name> holds.
type meta struct {
	Active   generation  `json:"active"`
	Building *generation `json:"building,omitempty"`
}

func (db *DB) readMeta(name string) (meta, bool, error) {
	var m meta
	v, closer, err := db.pdb.Get(metaKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("projections: read meta of %s: %w", name, err)
	}
	defer closer.Close()
	if err := json.Unmarshal(v, &m); err != nil {
		return m, false, fmt.Errorf("projections: meta of %s is corrupt: %w", name, err)
	}
	return m, true, nil
}

func setMeta(b *pebble.Batch, name string, m meta) error {
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("projections: encode meta of %s: %w", name, err)
	}
	return b.Set(metaKey(name), v, nil)
}

// checkpoint is the last event a generation applied, and how many events it
// has applied in all (so that a count-based check can prove exactly-once).
type checkpoint struct {
	Position eventstore.Position
	Applied  uint64
}

const checkpointBytes = 24

func (c checkpoint) encode() []byte {
	b := make([]byte, 0, checkpointBytes)
	b = binary.BigEndian.AppendUint64(b, c.Position.Commit)
	b = binary.BigEndian.AppendUint64(b, c.Position.Prepare)
	return binary.BigEndian.AppendUint64(b, c.Applied)
}

func decodeCheckpoint(b []byte) (checkpoint, error) {
	if len(b) != checkpointBytes {
		return checkpoint{}, fmt.Errorf("projections: checkpoint has %d bytes, want %d", len(b), checkpointBytes)
	}
	return checkpoint{
		Position: eventstore.Position{Commit: binary.BigEndian.Uint64(b[0:8]), Prepare: binary.BigEndian.Uint64(b[8:16])},
		Applied:  binary.BigEndian.Uint64(b[16:24]),
	}, nil
}

func (db *DB) readCheckpoint(name string, gen uint64) (checkpoint, error) {
	v, closer, err := db.pdb.Get(checkpointKey(name, gen))
	if errors.Is(err, pebble.ErrNotFound) {
		return checkpoint{}, nil
	}
	if err != nil {
		return checkpoint{}, fmt.Errorf("projections: read checkpoint of %s: %w", name, err)
	}
	defer closer.Close()
	return decodeCheckpoint(v)
}

// dropGeneration deletes a generation's state and checkpoint in b. A range
// deletion is one tombstone, so dropping a large generation is instant; the
// space is reclaimed by compaction.
func dropGeneration(b *pebble.Batch, name string, gen uint64) error {
	p := statePrefix(name, gen)
	if err := b.DeleteRange(p, prefixEnd(p), nil); err != nil {
		return err
	}
	return b.Delete(checkpointKey(name, gen), nil)
}

// pebbleLogger routes Pebble's messages to slog, or nowhere.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l != nil {
		p.l.Info(fmt.Sprintf(format, args...), "component", "projections/pebble")
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	if p.l != nil {
		p.l.Error(fmt.Sprintf(format, args...), "component", "projections/pebble")
	}
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.Errorf(format, args...)
	os.Exit(1)
}

// closeQuietly closes a Pebble value handle; its error carries nothing a
// reader could act on.
func closeQuietly(c io.Closer) { _ = c.Close() }
