package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/ledger"
	"github.com/ansinh/ansinh/projections"
	"github.com/ansinh/ansinh/projections/audit"
)

const verifyAbout = `
Checks everything an auditor can check, and says what it found:
  - the log: re-reads every event and recomputes the hash chain;
  - the seals: every seal's Ed25519 signature against the trusted public
    keys, that each seal follows the previous one, and that every event it
    covers is the event that was sealed (altered, removed, inserted or
    reordered events are named by position);
  - the books: the trial balance nets to zero;
  - the read models in <data>/projections: each equals a fresh replay of
    the log up to the position it has reached. Without them (an auditor's
    copy, a remote EventStoreDB), the log is replayed once for the trial
    balance.
The exit code is 0 only when everything checks, 1 otherwise; the error on
stderr names the first problem with its position.

The public key is the seal-key.pub.pem the operator hands out; an auditor
should pass the copy they were given (--public-key), not trust the one
beside the log. It works on the event store directly (--data, --store):
with the embedded store, stop the server first. See docs/audit.md.
`

// verifyMaxKeys bounds --public-key: a few keys after rotations.
const verifyMaxKeys = 16

// verifyMaxKeyBytes bounds a public key file; a PEM Ed25519 key is 113 bytes.
const verifyMaxKeyBytes = 64 << 10

type verifyConfig struct {
	store        storeConfig
	keyFiles     []string
	expectSealed uint64
	json         bool
}

func parseVerify(args []string, stdout io.Writer, getenv func(string) string) (verifyConfig, error) {
	var cfg verifyConfig
	fs := newFlagSet("verify", stdout)
	addStoreFlags(fs, &cfg.store)
	fs.Func("public-key", "PEM file of a trusted seal public key; repeat it for keys used before a rotation (default: <data>/"+audit.PublicKeyFile+")", func(s string) error {
		if s == "" {
			return errors.New("empty file name")
		}
		cfg.keyFiles = append(cfg.keyFiles, s)
		return nil
	})
	fs.Uint64Var(&cfg.expectSealed, "expect-sealed-through", 0, "the seals must cover at least this many events (the sealed_through of your previous verify): catches a log cut after a seal you saw")
	fs.BoolVar(&cfg.json, "json", false, "print the report as JSON")
	if err := fs.parse(args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, verifyAbout)
		}
		return cfg, err
	}
	if len(cfg.keyFiles) > verifyMaxKeys {
		return cfg, usagef("--public-key given %d times, at most %d", len(cfg.keyFiles), verifyMaxKeys)
	}
	return cfg, cfg.store.validate()
}

// trustedKey is a public key and the file it came from.
type trustedKey struct {
	ID   string `json:"key_id"`
	File string `json:"file"`
	key  ed25519.PublicKey
}

// loadTrustedKeys reads the --public-key files, or the data directory's
// public key when none is given.
func loadTrustedKeys(cfg verifyConfig) ([]trustedKey, error) {
	files := cfg.keyFiles
	if len(files) == 0 {
		def := filepath.Join(cfg.store.data, audit.PublicKeyFile)
		if _, err := os.Stat(def); errors.Is(err, fs.ErrNotExist) {
			return nil, usagef("verify: no public key: pass --public-key FILE (the %s the operator gave you); %s does not exist", audit.PublicKeyFile, def)
		}
		files = []string{def}
	}
	var keys []trustedKey
	for _, f := range files {
		b, err := readSmallFile(f, verifyMaxKeyBytes)
		if err != nil {
			return nil, fmt.Errorf("--public-key: %w", err)
		}
		k, err := audit.ParsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("--public-key %s: %w", f, err)
		}
		keys = append(keys, trustedKey{ID: audit.KeyID(k), File: f, key: k})
	}
	return keys, nil
}

func readSmallFile(path string, maxBytes int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("%s: more than %d bytes", path, maxBytes)
	}
	return b, nil
}

// verifyResult is what verify found, for people (text) and machines
// (--json).
type verifyResult struct {
	OK          bool         `json:"ok"`
	Store       string       `json:"store"`
	TrustedKeys []trustedKey `json:"trusted_keys"`
	projections.AuditReport
	// ReadModels says what the read models were checked against:
	// "stored" (<data>/projections) or "none".
	ReadModels string `json:"read_models"`
	// ReplayFailure: without stored read models, the replay of the log
	// for the trial balance stopped on an event.
	ReplayFailure string `json:"replay_failure,omitempty"`
	// FirstProblem names the first thing that did not check, with its
	// position; empty when OK.
	FirstProblem string `json:"first_problem,omitempty"`
}

func verifyCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (err error) {
	cfg, err := parseVerify(args, stdout, getenv)
	if err != nil {
		return err
	}
	keys, err := loadTrustedKeys(cfg)
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
	db, err := openReadModels(cfg.store, false)
	switch {
	case errors.Is(err, errNoReadModels):
		db = nil
	case err != nil:
		return err
	default:
		defer func() {
			if cerr := db.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("close read models: %w", cerr))
			}
		}()
	}
	head, err := headOf(ctx, store)
	if err != nil {
		return err
	}
	// The log is read twice: once for the chain, once for the replay.
	total := 2 * eventsInLog(cfg.store, head)
	prog := newProgress(stderr, isTerminal(stderr), time.Now, "verify", "events read", total, total)
	ws := &watchedStore{Store: store, prog: prog}
	stop := prog.run(ctx)
	res, err := runVerify(ctx, cfg, ws, db, keys)
	stop()
	prog.finish()
	if err != nil {
		return err
	}
	res.Store = cfg.store.describe()
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else if err := res.print(stdout, readModelsDir(cfg.store)); err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("verify failed: %s", res.FirstProblem)
	}
	return nil
}

// runVerify checks the log, the seals, the books and the read models. The
// error is for failures to read; what is wrong is in the result.
func runVerify(ctx context.Context, cfg verifyConfig, store eventstore.Store, db *projections.DB, keys []trustedKey) (*verifyResult, error) {
	trusted := make([]ed25519.PublicKey, len(keys))
	for i, k := range keys {
		trusted[i] = k.key
	}
	opts := audit.VerifyOptions{ExpectSealedThrough: cfg.expectSealed}
	codec := ledger.NewCodec()
	res := &verifyResult{TrustedKeys: keys}
	if db != nil {
		set, err := projections.NewSet(db, store, codec, projections.SetOptions{Runner: readModelOptions(cfg.store)})
		if err != nil {
			return nil, err
		}
		if res.AuditReport, err = set.Verify(ctx, store, codec, trusted, opts); err != nil {
			return nil, err
		}
		res.ReadModels = "stored"
	} else {
		var err error
		if res.Chain, err = audit.Verify(ctx, store, trusted, opts); err != nil {
			return nil, err
		}
		res.ReadModels = "none"
		// The books come from a replay of exactly the log the chain read.
		until := projections.UntilPosition(res.Chain.Head)
		if res.Chain.Head.IsStart() {
			until = projections.Until{}
		}
		fresh, err := projections.AsOf(ctx, store, codec, until, projections.SetOptions{Runner: readModelOptions(cfg.store)})
		var failure *projections.Failure
		switch {
		case errors.As(err, &failure):
			res.ReplayFailure = failure.Error()
		case err != nil:
			return nil, err
		default:
			tb, err := fresh.TrialBalance(ctx)
			cerr := fresh.Close()
			if err != nil {
				return nil, err
			}
			if cerr != nil {
				return nil, cerr
			}
			res.TrialBalance = tb.TrialBalance
		}
	}
	res.FirstProblem = res.firstProblem()
	res.OK = res.FirstProblem == ""
	return res, nil
}

// firstProblem names what failed first, in the order an auditor would
// look: the log and its seals, then the books, then the read models.
func (r *verifyResult) firstProblem() string {
	if p := r.Chain.First(); p != nil {
		s := p.String()
		if n := len(r.Chain.Problems); n > 1 {
			s += fmt.Sprintf(" (and %d more problems", n-1)
			if r.Chain.Truncated {
				s += ", not all listed"
			}
			s += ")"
		}
		return s
	}
	if r.ReplayFailure != "" {
		return "the log cannot be replayed: " + r.ReplayFailure
	}
	if !r.TrialBalance.Balanced {
		return "the trial balance does not net to zero: the accounts sum to " + amount(r.TrialBalance.Total)
	}
	for _, c := range r.Projections {
		if !c.Matches {
			return fmt.Sprintf("read model %s at position %s differs from a fresh replay of the log: %s", c.Name, c.Position, c.Difference)
		}
	}
	return ""
}

// print writes the report for people.
func (r *verifyResult) print(w io.Writer, modelsDir string) error {
	c := r.Chain
	var b strings.Builder
	fmt.Fprintf(&b, "store:         %s\n", r.Store)
	for i, k := range r.TrustedKeys {
		label := "trusted key:"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(&b, "%-14s %s (%s)\n", label, k.ID, k.File)
	}
	fmt.Fprintf(&b, "log:           %d events, head %s, chain hash %s\n", c.Events, c.Head, c.Hash)
	switch {
	case c.Events == 0:
		fmt.Fprintf(&b, "seals:         none (the log is empty)\n")
	case c.Seals == 0 && c.SealedThrough == 0:
		fmt.Fprintf(&b, "seals:         none yet: the chain was recomputed, but no event is covered by a signature\n")
	default:
		fmt.Fprintf(&b, "seals:         %d valid, the last covering events 1 to %d", c.Seals, c.SealedThrough)
		if c.Unsealed > 0 {
			fmt.Fprintf(&b, "; the last %d events are not sealed yet", c.Unsealed)
		}
		b.WriteString("\n")
	}
	switch {
	case r.ReplayFailure != "":
		fmt.Fprintf(&b, "trial balance: not computed: the replay stopped\n")
	case r.TrialBalance.Balanced:
		fmt.Fprintf(&b, "trial balance: balanced, debits %s = credits %s VND\n", amount(r.TrialBalance.Debits), amount(r.TrialBalance.Credits))
	default:
		fmt.Fprintf(&b, "trial balance: NOT BALANCED, debits %s, credits %s, net %s VND\n", amount(r.TrialBalance.Debits), amount(r.TrialBalance.Credits), amount(r.TrialBalance.Total))
	}
	if r.ReadModels == "none" {
		fmt.Fprintf(&b, "read models:   none in %s; the trial balance is from a fresh replay\n", modelsDir)
	} else {
		fmt.Fprintf(&b, "read models:   %s, each against a fresh replay up to its position\n", modelsDir)
		for _, p := range r.Projections {
			verdict := "matches"
			if !p.Matches {
				verdict = "DIFFERS: " + p.Difference
			}
			fmt.Fprintf(&b, "  %-12s at %-12s %s\n", p.Name, p.Position, verdict)
		}
	}
	if len(c.Problems) > 0 {
		b.WriteString("problems in the log:\n")
		for _, p := range c.Problems {
			fmt.Fprintf(&b, "  %s\n", p)
		}
		if c.Truncated {
			fmt.Fprintf(&b, "  ... more than %d; the first ones are listed\n", audit.MaxProblems)
		}
	}
	if r.ReplayFailure != "" {
		fmt.Fprintf(&b, "replay:        %s\n", r.ReplayFailure)
	}
	if r.OK {
		b.WriteString("result:        OK\n")
	} else {
		fmt.Fprintf(&b, "result:        FAILED: %s\n", r.FirstProblem)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
