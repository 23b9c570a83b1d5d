// Package pebble is the embedded default event store: an eventstore.Store on
// cockroachdb/pebble (an LSM key-value store), in one directory, in-process.
//
// # Opening
//
//	s, err := pebble.Open("/var/lib/ansinh/events", pebble.Options{})       // on disk
//	s, err := pebble.Open("", pebble.Options{InMemory: true})              // tests: vfs.NewMem, gone at Close
//
// The zero Options are production defaults; every field is documented on
// Options. Close the store to release its directory.
//
// # Locking
//
// A directory is used by one Store at a time. Open takes pebble's LOCK file
// (an fcntl lock, which the kernel releases if the holder dies, so a crash
// never leaves the directory stuck), and fails with an error saying the
// directory "is in use by another process" when another process holds it.
// A second Open of the same directory in the same process fails too, with
// "already open in this process": the fcntl lock does not stop the process
// that holds it, so the store keeps its own list of open directories and
// compares them with os.SameFile (a symlinked path is the same directory).
//
// # Durability and group commit
//
// Append returns only after its events are in a pebble batch applied with
// pebble.Sync, that is after the write-ahead log is fsynced. One writer
// goroutine sequences all appends: callers validate their request
// (eventstore.ValidateAppend) in their own goroutine, then queue it on a
// bounded channel (Options.QueueLength). The writer takes everything queued,
// up to Options.GroupAppendsMax appends, GroupEventsMax events and
// GroupBytesMax bytes, checks each append in order against the stream's
// state (expected revision, idempotency), counting what earlier appends of
// the same group wrote, puts the accepted ones in one batch, syncs it once
// and answers each caller with its own result: an append that fails its
// check does not fail the others. The more appends arrive while one group
// is syncing, the larger the next group, so throughput grows with
// concurrency while a lone append still costs one fsync. Stats reports the
// counts (Commits is the number of fsyncs).
//
// If a commit fails the store stops accepting appends (fail-stop): what
// reached the disk is unknown, and reopening recovers from the disk.
//
// # Key layout
//
// All integers are big-endian, so pebble's byte order is numeric order.
//
//	g/<seq:8>                 the global log: seq -> event envelope (see codec.go:
//	                          stream, revision, ID, type, data, metadata, recorded time)
//	s/<stream>/<first rev:8>  stream index, one run per append: first revision ->
//	                          first seq, count (an append's events have consecutive
//	                          revisions and consecutive seqs)
//	h/<stream>                stream head: last revision
//	i/<stream>/<event ID:16>  idempotency index: event ID -> revision in that stream
//	m/head                    last seq
//
// '/' cannot occur in a stream name, so "s/<stream>/" is the prefix of one
// stream only. Seqs start at 1 and are dense; an event's Position is
// {Commit: seq, Prepare: seq}. The log, the indexes, the head and m/head of
// one group are in one batch, so they are always consistent on disk; Open
// checks m/head against the last log key and refuses a store where they
// differ.
//
// The writer caches stream heads in memory (bounded; dropped and refilled
// from h/ when full) and updates the cache only after a commit succeeds.
// Readers see a group only once the writer has synced it and advanced the
// committed seq, so the log never shows seq N+1 before N.
//
// # Idempotency
//
// As the port documents: re-sending the same event IDs to the same stream
// at the same expected revision returns the first result and writes nothing.
// With Exact(n) or NoStream, when the stream has moved past n, the append
// is a retry if its events are exactly those at n+1, n+2, ...; if some of
// its IDs are in the stream after n but not in that exact run, the answer is
// ErrIdempotencyConflict; if none are, a WrongExpectedRevisionError. With
// Any or StreamExists, if the first event's ID is already in the stream, the
// whole append must be the run that starts there (else
// ErrIdempotencyConflict). An event ID reused in a stream by a later,
// non-retry append (possible with Exact or Any when the first ID is new)
// points the idempotency index at the later revision.
//
// # Reads and subscriptions
//
// ReadStream walks the stream's runs and reads each run's events from the
// log, where they are consecutive;
// ReadAll walks the log. Both stop at the committed seq and at 64 MiB of
// event data per call (returning fewer than limit events, never none when
// some are there). A subscription is pull-based: it holds a cursor and at
// most eventstore.SubscriptionBuffer events; when its buffer is empty it
// reads the next page of the log (skipping, but moving past, events its
// filter rejects), and at the head it waits for the writer's commit signal,
// a channel closed and replaced after every commit. The writer never waits
// for a subscriber.
package pebble
