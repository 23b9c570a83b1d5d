package pebble

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configure a Store. The zero value of every field but InMemory means
// the documented default; Open rejects values outside the documented ranges.
type Options struct {
	// InMemory keeps everything in memory (pebble's vfs.NewMem): nothing
	// touches the disk and everything is lost at Close. For tests.
	InMemory bool

	// CacheBytes is pebble's block cache. Default 64 MiB.
	CacheBytes int64
	// MemTableBytes is the size of one pebble memtable. Default 32 MiB.
	MemTableBytes uint64

	// QueueLength bounds the appends waiting for the writer; a caller past
	// the bound waits (or gives up with its context). Default 4096.
	QueueLength int
	// GroupAppendsMax, GroupEventsMax and GroupBytesMax bound one group
	// commit. Defaults 1024 appends, 20,000 events, 32 MiB of event data; the
	// event and byte bounds may not be lower than one maximal Append.
	GroupAppendsMax int
	GroupEventsMax  int
	GroupBytesMax   int

	// Logger receives pebble's own messages. Nil discards them (tests).
	Logger *slog.Logger
}

const (
	defaultCacheBytes      = 64 << 20
	defaultMemTableBytes   = 32 << 20
	defaultQueueLength     = 4096
	defaultGroupAppendsMax = 1024
	defaultGroupEventsMax  = 20_000
	defaultGroupBytesMax   = 32 << 20

	// headsCacheMax bounds the writer's cache of stream heads. Past it the
	// cache is simply dropped and refilled from disk on demand: a cold miss
	// costs one point read.
	headsCacheMax = 1 << 16

	// readBytesMax bounds the event bytes one ReadAll or ReadStream page or
	// one subscription refill holds, whatever the event count limit: 10,000
	// events of 256 KiB would otherwise be 2.5 GiB. A page always holds at
	// least one event.
	readBytesMax = 64 << 20
)

// tableCompression compresses the blocks of new tables (the other levels
// inherit level 0's settings). Pebble's "Fastest" profile is MinLZ on amd64
// (snappy on arm64, where MinLZ has no assembly). A scan of the log spent
// about 0.14 CPU-µs per event in snappy, an eighth of the scan; MinLZ
// takes about 0.10 on the same blocks and its tables are 13% smaller (26.1
// against 30.1 MB for a log of 217,441 ledger events; uncompressed, 144 MB,
// five times the disk and the page cache for no CPU saved).
// Each block records its own compression, so a store keeps reading the
// snappy tables it already has; they are rewritten only as compactions
// reach them. A variable so that a test can write tables as earlier
// versions did.
var tableCompression = sstable.FastestCompression

func (o Options) withDefaults() (Options, error) {
	setDefault(&o.CacheBytes, defaultCacheBytes)
	setDefault(&o.MemTableBytes, defaultMemTableBytes)
	setDefault(&o.QueueLength, defaultQueueLength)
	setDefault(&o.GroupAppendsMax, defaultGroupAppendsMax)
	setDefault(&o.GroupEventsMax, defaultGroupEventsMax)
	setDefault(&o.GroupBytesMax, defaultGroupBytesMax)
	switch {
	case o.CacheBytes < 0:
		return o, fmt.Errorf("eventstore/pebble: CacheBytes %d is negative", o.CacheBytes)
	case o.MemTableBytes < 1<<20:
		return o, fmt.Errorf("eventstore/pebble: MemTableBytes %d, want at least 1 MiB", o.MemTableBytes)
	case o.QueueLength < 1 || o.QueueLength > 1<<20:
		return o, fmt.Errorf("eventstore/pebble: QueueLength %d, want 1 to %d", o.QueueLength, 1<<20)
	case o.GroupAppendsMax < 1 || o.GroupAppendsMax > 1<<16:
		return o, fmt.Errorf("eventstore/pebble: GroupAppendsMax %d, want 1 to %d", o.GroupAppendsMax, 1<<16)
	case o.GroupEventsMax < eventstore.MaxAppendEvents:
		return o, fmt.Errorf("eventstore/pebble: GroupEventsMax %d, want at least %d (one maximal append)", o.GroupEventsMax, eventstore.MaxAppendEvents)
	case o.GroupBytesMax < eventstore.MaxAppendBytes:
		return o, fmt.Errorf("eventstore/pebble: GroupBytesMax %d, want at least %d (one maximal append)", o.GroupBytesMax, eventstore.MaxAppendBytes)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

func setDefault[T int | int64 | uint64](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Store is the embedded event store. It implements eventstore.Store.
type Store struct {
	db   *pebble.DB
	lock *pebble.Lock // nil in memory
	dir  string       // absolute; "" in memory
	opts Options

	// The writer: Append hands requests to one goroutine through queue.
	queue      chan *appendRequest
	stopping   chan struct{} // closed by Close: writer stops, waiters wake
	writerDone chan struct{} // closed when the writer has answered everything
	w          writer

	// committed is the seq of the last event of the last committed group.
	// Only the writer advances it, and only after the group's batch is
	// synced, so every reader sees whole groups and never a gap.
	committed atomic.Uint64

	// notify is closed and replaced after every commit; subscribers at the
	// head wait on it. The mutex is held only to swap the channel, so the
	// writer never waits on a reader.
	notifyMu sync.Mutex
	notify   chan struct{}

	// mu guards db against Close while a read runs: readers hold it shared.
	mu     sync.RWMutex
	closed bool

	closeOnce sync.Once
	closeErr  error

	stats struct {
		appends, events, commits, idempotent, rejected atomic.Uint64
	}
}

var _ eventstore.Store = (*Store)(nil)

// openDirs holds the directories this process has open, so that a second Open
// of the same directory fails with a clear message. The kernel's fcntl lock
// that pebble takes does not stop the process that holds it from taking it
// again, and pebble's own check compares path strings, which a symlink or a
// bind mount defeats; os.SameFile compares the directories themselves.
var openDirs struct {
	sync.Mutex
	dirs map[string]os.FileInfo
}

// Open opens (creating if needed) the store in dir, or a fresh in-memory
// store when opts.InMemory is set (dir is then only a name). A directory that
// another process, or another open Store in this process, holds is refused.
func Open(dir string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{
		opts:       opts,
		queue:      make(chan *appendRequest, opts.QueueLength),
		stopping:   make(chan struct{}),
		writerDone: make(chan struct{}),
		notify:     make(chan struct{}),
	}
	fs := vfs.Default
	if opts.InMemory {
		fs = vfs.NewMem()
		if dir == "" {
			dir = "memory"
		}
	} else {
		if s.dir, err = claimDir(dir); err != nil {
			return nil, err
		}
		if s.lock, err = lockDir(s.dir); err != nil {
			releaseDir(s.dir)
			return nil, err
		}
		dir = s.dir
	}
	s.db, err = pebble.Open(dir, s.pebbleOptions(fs))
	if err != nil {
		s.releaseLock()
		return nil, fmt.Errorf("eventstore/pebble: open %q: %w", dir, err)
	}
	head, err := recoverHead(s.db)
	if err != nil {
		_ = s.db.Close()
		s.releaseLock()
		return nil, err
	}
	s.committed.Store(head)
	s.w = newWriter(s, head)
	go s.runWriter()
	return s, nil
}

// pebbleOptions spells out the pebble settings the store relies on rather
// than leaning on the library's defaults, which change between versions.
func (s *Store) pebbleOptions(fs vfs.FS) *pebble.Options {
	o := &pebble.Options{
		FS:                          fs,
		Lock:                        s.lock,
		CacheSize:                   s.opts.CacheBytes,
		MemTableSize:                s.opts.MemTableBytes,
		MemTableStopWritesThreshold: 4,
		// The WAL is what makes an acknowledged append durable: every group
		// is applied with pebble.Sync, which fsyncs it.
		DisableWAL:         false,
		WALMinSyncInterval: nil, // no artificial delay: grouping happens in the writer
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{s.opts.Logger},
	}
	// Bloom filters make the writer's point reads (stream heads, event IDs)
	// cheap once they have left the memtable.
	o.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	// Most reads are long sequential scans of the log (projections catching
	// up), which larger blocks serve with fewer reads and cache lookups.
	o.Levels[0].BlockSize = 32 << 10
	o.Levels[0].IndexBlockSize = 256 << 10
	compression := tableCompression // pebble calls the function per table, not at Open
	o.Levels[0].Compression = func() *sstable.CompressionProfile { return compression }
	o.EnsureDefaults()
	return o
}

// recoverHead reads the last seq and checks it against the log itself: the
// two are written in the same batch, so a difference means corruption.
func recoverHead(db *pebble.DB) (uint64, error) {
	var meta uint64
	v, closer, err := db.Get(metaHeadKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return 0, fmt.Errorf("eventstore/pebble: read head: %w", err)
	default:
		var ok bool
		meta, ok = decodeUint64(v)
		closer.Close()
		if !ok {
			return 0, fmt.Errorf("%w: head record has %d bytes", errCorrupt, len(v))
		}
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: logLower, UpperBound: logUpper})
	if err != nil {
		return 0, fmt.Errorf("eventstore/pebble: read head: %w", err)
	}
	defer it.Close()
	var last uint64
	if it.Last() {
		var ok bool
		if last, ok = logKeySeq(it.Key()); !ok {
			return 0, fmt.Errorf("%w: log key %x", errCorrupt, it.Key())
		}
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("eventstore/pebble: read head: %w", err)
	}
	if last != meta {
		return 0, fmt.Errorf("%w: head record says %d, last log entry is %d", errCorrupt, meta, last)
	}
	return last, nil
}

func claimDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("eventstore/pebble: directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return "", fmt.Errorf("eventstore/pebble: create directory: %w", err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("eventstore/pebble: directory %q: %w", abs, err)
	}
	openDirs.Lock()
	defer openDirs.Unlock()
	for other, otherInfo := range openDirs.dirs {
		if os.SameFile(info, otherInfo) {
			return "", fmt.Errorf("eventstore/pebble: directory %q is already open in this process (as %q); close the other Store first", abs, other)
		}
	}
	if openDirs.dirs == nil {
		openDirs.dirs = map[string]os.FileInfo{}
	}
	openDirs.dirs[abs] = info
	return abs, nil
}

func releaseDir(abs string) {
	openDirs.Lock()
	defer openDirs.Unlock()
	delete(openDirs.dirs, abs)
}

// lockDir takes pebble's LOCK file (an fcntl lock, released by the kernel when
// the holder dies, so a crashed process never leaves it stuck).
func lockDir(abs string) (*pebble.Lock, error) {
	l, err := pebble.LockDirectory(abs, vfs.Default)
	if err == nil {
		return l, nil
	}
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
		return nil, fmt.Errorf("eventstore/pebble: directory %q is in use by another process (its LOCK file is held): %w", abs, err)
	}
	return nil, fmt.Errorf("eventstore/pebble: cannot lock directory %q: it is in use by another process or already open in this one: %w", abs, err)
}

func (s *Store) releaseLock() {
	if s.lock != nil {
		_ = s.lock.Close()
		releaseDir(s.dir)
	}
}

// Close stops the writer (queued appends fail with ErrClosed), ends
// subscriptions and closes pebble. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stopping)
		<-s.writerDone
		s.mu.Lock()
		s.closed = true
		err := s.db.Close()
		s.mu.Unlock()
		s.releaseLock()
		if err != nil {
			s.closeErr = fmt.Errorf("eventstore/pebble: close: %w", err)
		}
	})
	return s.closeErr
}

// Head returns the position of the last committed event.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	if err := s.readable(ctx); err != nil {
		return eventstore.Position{}, err
	}
	seq := s.committed.Load()
	return eventstore.Position{Commit: seq, Prepare: seq}, nil
}

func (s *Store) readable(ctx context.Context) error {
	select {
	case <-s.stopping:
		return eventstore.ErrClosed
	default:
	}
	return ctx.Err()
}

// Stats are counters since Open, for tests and metrics.
type Stats struct {
	Appends    uint64 // appends that wrote events
	Events     uint64 // events written
	Commits    uint64 // group commits, one fsync each
	Idempotent uint64 // appends answered from events already written
	Rejected   uint64 // appends refused by the writer (expected revision, idempotency conflict)
	Head       uint64 // seq of the last committed event
}

func (s *Store) Stats() Stats {
	return Stats{
		Appends:    s.stats.appends.Load(),
		Events:     s.stats.events.Load(),
		Commits:    s.stats.commits.Load(),
		Idempotent: s.stats.idempotent.Load(),
		Rejected:   s.stats.rejected.Load(),
		Head:       s.committed.Load(),
	}
}

// commitSignal returns the channel the next commit will close. A waiter must
// take it before it looks at the log, so that a commit between its look and
// its wait still wakes it.
func (s *Store) commitSignal() <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.notify
}

func (s *Store) broadcastCommit() {
	s.notifyMu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.notifyMu.Unlock()
}

// pebbleLogger routes pebble's messages to slog. Pebble calls Fatalf only for
// states it cannot continue from (corruption, a failed WAL sync), so it
// panics after logging rather than letting pebble carry on.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Info(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble", "fatal", true)
	panic("eventstore/pebble: pebble fatal error: " + msg)
}
