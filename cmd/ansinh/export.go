package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/ansinh/ansinh/eventstore"
)

const exportUsage = `usage: ansinh export events [flags]

Writes the event log, or one stream of it, as JSON Lines: one event per
line, in global order, with its stream, revision, position, id, type,
recorded_at, data and metadata (data and metadata as the JSON that was
stored). The export stops at the head of the log as it was when the export
began, or at --to. To continue a previous export, pass the position of its
last line as --after.

It works on the event store directly (--data, --store). The embedded store
is held by a running server: stop it first.
`

// exportPage is the events read at once: the export holds one page in
// memory whatever the size of the log.
const exportPage = 1000

type exportConfig struct {
	store  storeConfig
	after  eventstore.Position
	to     eventstore.Position // zero: the head when the export begins
	stream string
	out    string
}

func exportCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usagef("export: want what to export: events (see ansinh export -h)")
	}
	switch args[0] {
	case "events":
		return exportEvents(ctx, args[1:], stdout, stderr, getenv)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, exportUsage)
		return nil
	}
	return usagef("export: unknown kind %q; want events", args[0])
}

func parseExport(args []string, stdout io.Writer, getenv func(string) string) (exportConfig, error) {
	var cfg exportConfig
	var after, to string
	fs := newFlagSet("export events", stdout)
	addStoreFlags(fs, &cfg.store)
	fs.StringVar(&after, "after", "", "export the events after this position (commit/prepare, or a number for the embedded store); default: from the first event")
	fs.StringVar(&to, "to", "", "export up to and including this position; default: the head of the log when the export begins")
	fs.StringVar(&cfg.stream, "stream", "", "export only this stream, e.g. beneficiary-001085012345")
	fs.StringVar(&cfg.out, "out", "", "write to this file (it must not exist yet) instead of stdout")
	if err := fs.parse(args, getenv); err != nil {
		return cfg, err
	}
	var err error
	if after != "" {
		if cfg.after, err = eventstore.ParsePosition(after); err != nil {
			return cfg, usagef("--after: %v", err)
		}
	}
	if to != "" {
		if cfg.to, err = eventstore.ParsePosition(to); err != nil {
			return cfg, usagef("--to: %v", err)
		}
		if cfg.to.Compare(cfg.after) <= 0 {
			return cfg, usagef("--to %s is not after --after %s: nothing to export", cfg.to, cfg.after)
		}
	}
	if cfg.stream != "" {
		if err := eventstore.ValidateStreamName(cfg.stream); err != nil {
			return cfg, usagef("--stream: %v", err)
		}
	}
	return cfg, cfg.store.validate()
}

// exportedEvent is one line of the export. Data and metadata are the stored
// JSON, written without HTML escaping so that the bytes an auditor hashes
// are the bytes the store holds (the ledger writes compact JSON; other
// whitespace would be removed, which changes no value).
type exportedEvent struct {
	Stream     string              `json:"stream"`
	Revision   uint64              `json:"revision"`
	Position   eventstore.Position `json:"position"`
	ID         uuid.UUID           `json:"id"`
	Type       string              `json:"type"`
	RecordedAt time.Time           `json:"recorded_at"`
	Data       json.RawMessage     `json:"data"`
	Metadata   json.RawMessage     `json:"metadata"` // null when the event has none
}

func exportEvents(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (err error) {
	cfg, err := parseExport(args, stdout, getenv)
	if err != nil {
		return err
	}
	out, err := openExportOutput(cfg.out, stdout)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, out.close(err == nil)) }()

	store, err := openStore(ctx, cfg.store, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer closeInto(&err, "event store", store)
	head, err := store.Head(ctx)
	if err != nil {
		return fmt.Errorf("head of the log: %w", err)
	}
	to := head
	if !cfg.to.IsStart() && cfg.to.Compare(head) < 0 {
		to = cfg.to
	}
	var total int64
	if cfg.stream == "" && to.Commit > cfg.after.Commit {
		total = int64(to.Commit - cfg.after.Commit) // positions, not events: a commit position may count bytes
	}
	prog := newProgress(stderr, isTerminal(stderr), time.Now, "export", "events", total, 0)
	stop := prog.run(ctx)
	ex := &exporter{store: store, enc: json.NewEncoder(out.w), prog: prog, after: cfg.after, to: to, last: cfg.after}
	ex.enc.SetEscapeHTML(false)
	if cfg.stream == "" {
		err = ex.all(ctx)
	} else {
		err = ex.oneStream(ctx, cfg.stream)
	}
	stop()
	prog.finish()
	if err != nil {
		return err
	}
	switch {
	case ex.n == 0:
		fmt.Fprintln(stderr, "exported 0 events")
	default:
		fmt.Fprintf(stderr, "exported %d events, positions %s to %s\n", ex.n, ex.first, ex.last)
	}
	return nil
}

// exporter writes events between two positions, one page at a time.
type exporter struct {
	store     eventstore.Store
	enc       *json.Encoder
	prog      *progress
	after, to eventstore.Position

	n           int64
	first, last eventstore.Position
}

// all exports the global log after ex.after up to ex.to.
func (ex *exporter) all(ctx context.Context) error {
	for after := ex.after; ; {
		page, err := ex.store.ReadAll(ctx, after, exportPage)
		if err != nil {
			return fmt.Errorf("read the log after %s: %w", after, err)
		}
		if len(page) == 0 {
			return nil
		}
		for _, rec := range page {
			if rec.Position.Compare(ex.to) > 0 {
				return nil
			}
			if err := ex.write(rec); err != nil {
				return err
			}
		}
		after = page[len(page)-1].Position
	}
}

// oneStream exports the events of one stream whose positions are after
// ex.after and up to ex.to. A stream's events are in global order too.
func (ex *exporter) oneStream(ctx context.Context, stream string) error {
	for from := uint64(0); ; {
		page, err := ex.store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{Direction: eventstore.Forwards, From: from, Limit: exportPage})
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return fmt.Errorf("stream %s has no events", stream)
		}
		if err != nil {
			return fmt.Errorf("read stream %s from revision %d: %w", stream, from, err)
		}
		for _, rec := range page {
			if rec.Position.Compare(ex.to) > 0 {
				return nil
			}
			if rec.Position.Compare(ex.after) <= 0 {
				continue
			}
			if err := ex.write(rec); err != nil {
				return err
			}
		}
		if len(page) < exportPage {
			return nil
		}
		from = page[len(page)-1].Revision + 1
	}
}

func (ex *exporter) write(rec eventstore.RecordedEvent) error {
	var meta json.RawMessage
	if len(rec.Metadata) > 0 {
		meta = rec.Metadata
	}
	err := ex.enc.Encode(exportedEvent{
		Stream: rec.StreamID, Revision: rec.Revision, Position: rec.Position, ID: rec.ID, Type: rec.Type,
		RecordedAt: rec.RecordedAt.UTC(), Data: rec.Data, Metadata: meta,
	})
	if err != nil {
		return fmt.Errorf("write event at %s: %w", rec.Position, err)
	}
	if ex.n == 0 {
		ex.first = rec.Position
	}
	ex.n++
	ex.prog.add(int64(rec.Position.Commit-ex.last.Commit), 1)
	ex.last = rec.Position
	return nil
}

// exportOutput is where the lines go: stdout, or a file written under a
// temporary name and renamed when complete, so that a file with the
// export's name is always a whole export.
type exportOutput struct {
	w    *bufio.Writer
	file *os.File // nil for stdout
	path string
}

func openExportOutput(path string, stdout io.Writer) (*exportOutput, error) {
	if path == "" {
		return &exportOutput{w: bufio.NewWriterSize(stdout, 256<<10)}, nil
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, usagef("--out %s already exists; an export does not overwrite a file", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	return &exportOutput{w: bufio.NewWriterSize(f, 256<<10), file: f, path: path}, nil
}

// close flushes the lines; for a file, it keeps it under its name only if
// the export completed.
func (o *exportOutput) close(complete bool) error {
	err := o.w.Flush()
	if o.file == nil {
		return err
	}
	if err == nil {
		err = o.file.Sync()
	}
	err = errors.Join(err, o.file.Close())
	if err == nil && complete {
		if _, statErr := os.Lstat(o.path); statErr == nil {
			err = fmt.Errorf("--out %s appeared during the export; the export is in %s", o.path, o.file.Name())
			return err
		}
		if err = os.Rename(o.file.Name(), o.path); err == nil {
			return nil
		}
	}
	return errors.Join(err, os.Remove(o.file.Name()))
}
