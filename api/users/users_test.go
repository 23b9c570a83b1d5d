package users_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ansinh/ansinh/api/users"
	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/eventstore/pebble"
)

func newStore(t *testing.T) eventstore.Store {
	t.Helper()
	s, err := pebble.Open("", pebble.Options{InMemory: true, MemTableBytes: 1 << 20, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func open(t *testing.T, s eventstore.Store) *users.Directory {
	t.Helper()
	d, err := users.Open(context.Background(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var meta = domain.Metadata{Actor: domain.Actor{UserID: "test", Role: domain.RoleAdmin}}

func mustCreate(t *testing.T, d *users.Directory, name string, role domain.Role) users.Write {
	t.Helper()
	w, err := d.Create(context.Background(), meta, nil, name, role)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return w
}

func TestCreateAuthenticateAndReopen(t *testing.T) {
	s := newStore(t)
	d := open(t, s)
	w := mustCreate(t, d, "lan", domain.RoleRegistrar)
	if !strings.HasPrefix(w.Token, users.TokenPrefix) || len(w.Token) != len(users.TokenPrefix)+43 {
		t.Fatalf("token %q: want ans_ and 43 base64url characters", w.Token)
	}
	u, ok := d.Authenticate(w.Token)
	if !ok || u.Name != "lan" || u.Role != domain.RoleRegistrar || u.Disabled {
		t.Fatalf("Authenticate = %+v, %v", u, ok)
	}
	if _, ok := d.Authenticate(w.Token + "x"); ok {
		t.Fatal("a different token authenticated")
	}
	// The stream holds the hash, never the token.
	evs, err := s.ReadStream(context.Background(), users.Stream, eventstore.ReadStreamOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if strings.Contains(string(ev.Data), w.Token) || strings.Contains(string(ev.Metadata), w.Token) {
			t.Fatalf("event %s holds the token in clear", ev.Type)
		}
	}
	// A fresh index of the same stream knows the user and the token.
	d2 := open(t, s)
	if u, ok := d2.Authenticate(w.Token); !ok || u.Name != "lan" {
		t.Fatalf("reopened Authenticate = %+v, %v", u, ok)
	}
	if d2.Revision() != d.Revision() || d2.Revision() != 1 {
		t.Fatalf("revisions %d and %d, want 1 (created + token)", d.Revision(), d2.Revision())
	}
}

func TestIssueTokenRevokesTheOldOne(t *testing.T) {
	d := open(t, newStore(t))
	first := mustCreate(t, d, "minh", domain.RoleApprover)
	second, err := d.IssueToken(context.Background(), meta, nil, "minh")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Authenticate(first.Token); ok {
		t.Error("the old token still works")
	}
	if _, ok := d.Authenticate(second.Token); !ok {
		t.Error("the new token does not work")
	}
	if second.User.TokenIssuedAt.IsZero() {
		t.Error("TokenIssuedAt not set")
	}
}

func TestDisable(t *testing.T) {
	d := open(t, newStore(t))
	w := mustCreate(t, d, "hoa", domain.RoleAuditor)
	if d.IsDisabled("hoa") || d.IsDisabled("nobody") {
		t.Fatal("IsDisabled before disabling")
	}
	if _, err := d.Disable(context.Background(), meta, nil, "hoa"); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Authenticate(w.Token); ok {
		t.Error("a disabled user's token works")
	}
	if !d.IsDisabled("hoa") {
		t.Error("IsDisabled = false after disabling")
	}
	_, err := d.IssueToken(context.Background(), meta, nil, "hoa")
	assertRule(t, err, domain.Conflict, "user_disabled")
	_, err = d.Disable(context.Background(), meta, nil, "hoa")
	assertRule(t, err, domain.Conflict, "user_disabled")
}

func TestRejections(t *testing.T) {
	d := open(t, newStore(t))
	mustCreate(t, d, "lan", domain.RoleRegistrar)
	ctx := context.Background()
	tests := []struct {
		name string
		do   func() error
		kind domain.Kind
		code string
	}{
		{"name taken", func() error { _, err := d.Create(ctx, meta, nil, "lan", domain.RoleAuditor); return err }, domain.Conflict, "user_exists"},
		{"empty name", func() error { _, err := d.Create(ctx, meta, nil, "", domain.RoleAuditor); return err }, domain.Invalid, "invalid_name"},
		{"upper case", func() error { _, err := d.Create(ctx, meta, nil, "Lan", domain.RoleAuditor); return err }, domain.Invalid, "invalid_name"},
		{"starts with digit", func() error { _, err := d.Create(ctx, meta, nil, "1lan", domain.RoleAuditor); return err }, domain.Invalid, "invalid_name"},
		{"too long", func() error {
			_, err := d.Create(ctx, meta, nil, strings.Repeat("a", users.MaxNameBytes+1), domain.RoleAuditor)
			return err
		}, domain.Invalid, "invalid_name"},
		{"system role", func() error { _, err := d.Create(ctx, meta, nil, "svc", domain.RoleSystem); return err }, domain.Invalid, "invalid_role"},
		{"unknown role", func() error { _, err := d.Create(ctx, meta, nil, "svc", "boss"); return err }, domain.Invalid, "invalid_role"},
		{"token for unknown", func() error { _, err := d.IssueToken(ctx, meta, nil, "ghost"); return err }, domain.NotFound, "user_not_found"},
		{"disable unknown", func() error { _, err := d.Disable(ctx, meta, nil, "ghost"); return err }, domain.NotFound, "user_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assertRule(t, tt.do(), tt.kind, tt.code) })
	}
	if n := d.Len(); n != 1 {
		t.Fatalf("%d users after rejections, want 1", n)
	}
}

func TestExpectedRevisionFromTheCaller(t *testing.T) {
	d := open(t, newStore(t))
	mustCreate(t, d, "lan", domain.RoleRegistrar) // revisions 0, 1
	stale := eventstore.Exact(0)
	_, err := d.Create(context.Background(), meta, &stale, "minh", domain.RoleApprover)
	if !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
		t.Fatalf("stale expected revision: %v, want ErrWrongExpectedRevision", err)
	}
	current := eventstore.Exact(uint64(d.Revision()))
	if _, err := d.Create(context.Background(), meta, &current, "minh", domain.RoleApprover); err != nil {
		t.Fatalf("current expected revision: %v", err)
	}
}

func TestBootstrap(t *testing.T) {
	s := newStore(t)
	d := open(t, s)
	token, err := d.Bootstrap(context.Background(), meta)
	if err != nil || token == "" {
		t.Fatalf("first Bootstrap = %q, %v", token, err)
	}
	if u, ok := d.Authenticate(token); !ok || u.Name != "admin" || u.Role != domain.RoleAdmin {
		t.Fatalf("bootstrap admin = %+v, %v", u, ok)
	}
	again, err := d.Bootstrap(context.Background(), meta)
	if err != nil || again != "" {
		t.Fatalf("second Bootstrap = %q, %v; want no new admin", again, err)
	}
	// A second instance that has not seen the admin yet loses the race on
	// NoStream and ends up knowing the admin rather than failing.
	late := open(t, s)
	if tok, err := late.Bootstrap(context.Background(), meta); err != nil || tok != "" {
		t.Fatalf("late Bootstrap = %q, %v", tok, err)
	}
}

func TestBootstrapRaceOnOneStore(t *testing.T) {
	s := newStore(t)
	a, b := open(t, s), open(t, s)
	var wg sync.WaitGroup
	tokens := make([]string, 2)
	errs := make([]error, 2)
	for i, d := range []*users.Directory{a, b} {
		wg.Go(func() { tokens[i], errs[i] = d.Bootstrap(context.Background(), meta) })
	}
	wg.Wait()
	created := 0
	for i := range tokens {
		if errs[i] != nil {
			t.Fatalf("Bootstrap %d: %v", i, errs[i])
		}
		if tokens[i] != "" {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d admins created, want exactly 1", created)
	}
}

// Two directories on one store (two API instances, or the CLI and a
// server): writes race on the stream revision; both names land, neither
// twice.
func TestConcurrentWritersRetryOnTheNewState(t *testing.T) {
	s := newStore(t)
	a, b := open(t, s), open(t, s)
	var wg sync.WaitGroup
	const n = 8
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			_, err := a.Create(context.Background(), meta, nil, "a"+string(rune('a'+i)), domain.RoleAuditor)
			errs <- err
		})
		wg.Go(func() {
			_, err := b.Create(context.Background(), meta, nil, "b"+string(rune('a'+i)), domain.RoleAuditor)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	fresh := open(t, s)
	if fresh.Len() != 2*n {
		t.Fatalf("%d users, want %d", fresh.Len(), 2*n)
	}
}

func TestFollowSeesWritesOfAnotherProcess(t *testing.T) {
	s := newStore(t)
	server, cli := open(t, s), open(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Follow(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Follow: %v", err)
		}
	})

	w := mustCreate(t, cli, "lan", domain.RoleRegistrar)
	waitFor(t, func() bool { _, ok := server.Authenticate(w.Token); return ok })
	if _, err := cli.Disable(context.Background(), meta, nil, "lan"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return server.IsDisabled("lan") })
}

// waitFor polls a condition that another goroutine makes true. The bound is
// a deadlock guard, not a performance assertion.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestUnknownEventTypeRefusesToLoad(t *testing.T) {
	s := newStore(t)
	d := open(t, s)
	mustCreate(t, d, "lan", domain.RoleRegistrar)
	_, err := s.Append(context.Background(), users.Stream, eventstore.Any(), eventstore.EventData{
		ID: [16]byte{1}, Type: "UserPromoted.v9", Data: []byte(`{"name":"lan"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.Open(context.Background(), s, nil); err == nil || !strings.Contains(err.Error(), "unknown event type") {
		t.Fatalf("Open = %v, want an unknown event type error", err)
	}
}

func TestListIsSortedAndCopied(t *testing.T) {
	d := open(t, newStore(t))
	for _, n := range []string{"tuan", "an", "minh"} {
		mustCreate(t, d, n, domain.RoleAuditor)
	}
	list := d.List()
	var names []string
	for _, u := range list {
		names = append(names, u.Name)
	}
	if got := strings.Join(names, ","); got != "an,minh,tuan" {
		t.Fatalf("List = %s", got)
	}
	list[0].Disabled = true
	if d.IsDisabled("an") {
		t.Fatal("List returned the index's own users")
	}
}

func assertRule(t *testing.T, err error, kind domain.Kind, code string) {
	t.Helper()
	re, ok := domain.AsRuleError(err)
	if !ok {
		t.Fatalf("err = %v, want a RuleError %s", err, code)
	}
	if re.Kind != kind || re.Code != code {
		t.Fatalf("RuleError %s/%s, want %s/%s", re.Kind, re.Code, kind, code)
	}
}
