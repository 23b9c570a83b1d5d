package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ansinh/ansinh/eventstore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// retry runs fn until it succeeds, fails with a non-transient error, ctx is
// done, or opts.MaxAttempts attempts have failed. Retrying an append is safe
// because its event IDs make it idempotent on the server: an append whose
// reply was lost is acknowledged again, not written twice.
func (s *Store) retry(ctx context.Context, op string, fn func(*esdbclient.Client) error) error {
	wait := s.opts.BackoffBase
	for attempt := 1; ; attempt++ {
		client, err := s.currentClient()
		if err != nil {
			return fmt.Errorf("esdb: %s: %w", op, err)
		}
		err = call(ctx, client, fn)
		if err == nil {
			return nil
		}
		if s.isClosed() {
			return fmt.Errorf("esdb: %s: %w", op, eventstore.ErrClosed)
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("esdb: %s: %w (last error: %v)", op, ctxErr, err)
		}
		kind := classify(err)
		if kind == permanent || attempt >= s.opts.MaxAttempts {
			if kind != permanent {
				return fmt.Errorf("esdb: %s: gave up after %d attempts: %w", op, attempt, err)
			}
			return fmt.Errorf("esdb: %s: %w", op, err)
		}
		// Full jitter on the upper half keeps replicas that failed together
		// from retrying in lockstep.
		sleep := wait/2 + rand.N(wait/2+1)
		timer := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("esdb: %s: %w (last error: %v)", op, ctx.Err(), err)
		case <-timer.C:
		}
		wait = min(wait*2, s.opts.BackoffMax)
	}
}

// errClientGone: the client library panicked sending to its own connection
// manager because the client was closed while the call waited for it (see
// call).
var errClientGone = errors.New("the client was closed while the call waited for its connection")

// call runs fn on its own goroutine so that the caller gets its answer when
// ctx ends even though the client library waits for a connection without
// looking at ctx (it does while it discovers the cluster, which Open makes
// it do until the cluster answers). fn may still be running when call
// returns early; its results must be read only when call returned nil.
// Closing a client while such a call still waits makes the library panic
// with "send on closed channel" on the call's goroutine; that becomes
// errClientGone instead of a crash.
func call(ctx context.Context, client *esdbclient.Client, fn func(*esdbclient.Client) error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				if re, ok := r.(runtime.Error); ok && strings.Contains(re.Error(), "send on closed channel") {
					done <- errClientGone
					return
				}
				panic(r)
			}
		}()
		done <- fn(client)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type errorKind int

const (
	permanent errorKind = iota
	transient
)

// classify sorts an error of the client library. Transient are the failures
// a cluster produces while it heals: a request reached a follower (the
// client has already switched to the leader it named), the node is down or
// too busy, or the server's write timed out waiting for its quorum. A closed
// client (ErrorCodeConnectionClosed, errClientGone) is permanent: retry
// turns it into eventstore.ErrClosed when the Store was closed.
func classify(err error) errorKind {
	var e *esdbclient.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case esdbclient.ErrorCodeNotLeader, esdbclient.ErrorUnavailable, esdbclient.ErrorCodeDeadlineExceeded:
			return transient
		}
		if e.Code() != esdbclient.ErrorCodeUnknown {
			return permanent
		}
		// A stream the server ended while the client was still sending
		// surfaces as a bare EOF: client v4.2.0 does not fetch the status
		// then. It is how a node that dies mid-append looks, and the
		// append is idempotent, so try again (a permanent refusal comes
		// back the same way on every attempt and is returned at the end).
		if errors.Is(err, io.EOF) {
			return transient
		}
	}
	// Some calls return the gRPC status unconverted (opening a read, a
	// dropped subscription); status.Code looks through wrapping.
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return transient
	}
	return permanent
}

// esdbCode returns the client library's error code of err, if it has one.
func esdbCode(err error) (esdbclient.ErrorCode, bool) {
	var e *esdbclient.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}

// actualRevision reads the stream's actual revision out of the client
// library's wrong-expected-version error. The server sends it as a field,
// but client v4.2.0 keeps it only in the message:
// "wrong expected version: expecting '<e>' but got '<actual>'", where
// <actual> is a revision or "no_stream".
func actualRevision(err error) (int64, bool) {
	msg := err.Error()
	const marker = "but got '"
	i := strings.LastIndex(msg, marker)
	if i < 0 {
		return 0, false
	}
	rest := msg[i+len(marker):]
	j := strings.IndexByte(rest, '\'')
	if j < 0 {
		return 0, false
	}
	v := rest[:j]
	if v == "no_stream" {
		return -1, true
	}
	n, perr := strconv.ParseInt(v, 10, 64)
	if perr != nil || n < 0 {
		return 0, false
	}
	return n, true
}
