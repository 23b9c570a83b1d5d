package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// newJobID is a background job's ID: prefix and 16 random hex digits.
func newJobID(prefix string) (string, error) {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	return prefix + hex.EncodeToString(id[:]), nil
}

// backgroundJobs are the background jobs of one kind on one server
// (verifications, rebuilds): one runs at a time, each within a timeout,
// the last few finished are remembered for GET, and close stops the one
// running and waits for it. The zero value is ready.
type backgroundJobs[J any] struct {
	mu       sync.Mutex
	jobs     map[string]*J
	finished []string // oldest first
	running  bool
	closed   bool
	ctx      context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

// begin records job under id as running and returns the context it runs
// in, or busy while another runs.
func (js *backgroundJobs[J]) begin(id string, job *J, busy error, timeout time.Duration) (context.Context, context.CancelFunc, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	switch {
	case js.closed:
		return nil, nil, errCalculationsClosed
	case js.running:
		return nil, nil, busy
	}
	if js.jobs == nil {
		js.jobs = map[string]*J{}
		js.ctx, js.stop = context.WithCancel(context.Background())
	}
	js.jobs[id] = job
	js.running = true
	js.wg.Add(1)
	ctx, cancel := context.WithTimeout(js.ctx, timeout)
	return ctx, cancel, nil
}

// abort forgets the running job id, which did not start after all.
func (js *backgroundJobs[J]) abort(id string) {
	js.mu.Lock()
	defer js.mu.Unlock()
	defer js.wg.Done()
	js.running = false
	delete(js.jobs, id)
}

// end records the outcome of the running job, through finish, and keeps
// the last keep finished jobs.
func (js *backgroundJobs[J]) end(id string, keep int, finish func(*J)) {
	js.mu.Lock()
	defer js.mu.Unlock()
	defer js.wg.Done()
	js.running = false
	finish(js.jobs[id])
	js.finished = append(js.finished, id)
	for len(js.finished) > keep {
		delete(js.jobs, js.finished[0])
		js.finished = js.finished[1:]
	}
}

// view is a copy of the job, nil if unknown.
func (js *backgroundJobs[J]) view(id string) *J {
	js.mu.Lock()
	defer js.mu.Unlock()
	j, ok := js.jobs[id]
	if !ok {
		return nil
	}
	out := *j
	return &out
}

func (js *backgroundJobs[J]) close() {
	js.mu.Lock()
	js.closed = true
	if js.stop != nil {
		js.stop()
	}
	js.mu.Unlock()
	js.wg.Wait()
}
