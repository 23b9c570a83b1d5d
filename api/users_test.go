package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ansinh/ansinh/eventstore"
)

func TestMe(t *testing.T) {
	env := newTestAPI(t)
	w := env.do(env.req(http.MethodGet, "/v1/me", env.admin, ""))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	me := decodeJSON[meJSON](t, w)
	if me.UserID != "admin" || me.Role != "admin" || me.AuthenticatedBy != AuthToken {
		t.Fatalf("me = %+v", me)
	}
}

// createUser creates a user through the API and returns its token.
func (e *testAPI) createUser(name, role string) userWithToken {
	e.t.Helper()
	w := e.do(e.req(http.MethodPost, "/v1/users", e.admin, fmt.Sprintf(`{"name":%q,"role":%q}`, name, role),
		HeaderIdempotencyKey, "create-"+name))
	if w.Code != http.StatusCreated {
		e.t.Fatalf("create %s: %d %s", name, w.Code, w.Body)
	}
	return decodeJSON[userWithToken](e.t, w)
}

func TestUsersLifecycle(t *testing.T) {
	env := newTestAPI(t)
	w := env.do(env.req(http.MethodPost, "/v1/users", env.admin, `{"name":"lan","role":"registrar"}`, HeaderIdempotencyKey, "k1"))
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	created := decodeJSON[userWithToken](t, w)
	if created.User.Name != "lan" || created.User.Role != "registrar" || created.Token == "" || created.Position.IsStart() {
		t.Fatalf("created = %+v", created)
	}
	if got := w.Header().Get(HeaderPosition); got != created.Position.String() {
		t.Errorf("X-Ansinh-Position %q, body position %s", got, created.Position)
	}
	if got := w.Header().Get("Location"); got != "/v1/users/lan" {
		t.Errorf("Location %q", got)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("a response with a token has Cache-Control %q, want no-store", got)
	}

	// The new user's token works, and says who it is.
	w = env.do(env.req(http.MethodGet, "/v1/me", created.Token, ""))
	if me := decodeJSON[meJSON](t, w); me.UserID != "lan" || me.Role != "registrar" {
		t.Fatalf("me = %+v", me)
	}
	// A registrar may not manage users.
	wantProblem(t, env.do(env.req(http.MethodGet, "/v1/users", created.Token, "")), http.StatusForbidden, "forbidden")

	w = env.do(env.req(http.MethodGet, "/v1/users/lan", env.admin, ""))
	if u := decodeJSON[userJSON](t, w); u.Name != "lan" || u.Disabled || u.TokenIssuedAt == nil {
		t.Fatalf("get = %+v", u)
	}
	wantProblem(t, env.do(env.req(http.MethodGet, "/v1/users/ghost", env.admin, "")), http.StatusNotFound, "user_not_found")

	// A new token revokes the old one.
	w = env.do(env.req(http.MethodPost, "/v1/users/lan/tokens", env.admin, "", HeaderIdempotencyKey, "k2"))
	if w.Code != http.StatusCreated {
		t.Fatalf("issue token: %d %s", w.Code, w.Body)
	}
	reissued := decodeJSON[userWithToken](t, w)
	wantProblem(t, env.do(env.req(http.MethodGet, "/v1/me", created.Token, "")), http.StatusUnauthorized, "unauthorized")
	if w := env.do(env.req(http.MethodGet, "/v1/me", reissued.Token, "")); w.Code != http.StatusOK {
		t.Fatalf("new token: %d", w.Code)
	}

	// Disabling locks the user out at once.
	w = env.do(env.req(http.MethodPost, "/v1/users/lan/disable", env.admin, "", HeaderIdempotencyKey, "k3"))
	if w.Code != http.StatusOK || !decodeJSON[userWritten](t, w).User.Disabled {
		t.Fatalf("disable: %d %s", w.Code, w.Body)
	}
	wantProblem(t, env.do(env.req(http.MethodGet, "/v1/me", reissued.Token, "")), http.StatusUnauthorized, "unauthorized")
	wantProblem(t, env.do(env.req(http.MethodPost, "/v1/users/lan/disable", env.admin, "", HeaderIdempotencyKey, "k4")),
		http.StatusConflict, "user_disabled")
}

func TestUserRejections(t *testing.T) {
	env := newTestAPI(t)
	env.createUser("lan", "registrar")
	tests := []struct {
		name, path, body string
		status           int
		code, field      string
	}{
		{"name taken", "/v1/users", `{"name":"lan","role":"auditor"}`, http.StatusConflict, "user_exists", "name"},
		{"bad name", "/v1/users", `{"name":"Lan Nguyen","role":"auditor"}`, http.StatusUnprocessableEntity, "invalid_name", "name"},
		{"system role", "/v1/users", `{"name":"svc","role":"system"}`, http.StatusUnprocessableEntity, "invalid_role", "role"},
		{"unknown field", "/v1/users", `{"name":"svc","role":"auditor","admin":true}`, http.StatusBadRequest, "invalid_json", "admin"},
		{"disable yourself", "/v1/users/admin/disable", ``, http.StatusForbidden, "cannot_disable_self", ""},
		{"token for nobody", "/v1/users/ghost/tokens", ``, http.StatusNotFound, "user_not_found", "name"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := env.do(env.req(http.MethodPost, tt.path, env.admin, tt.body, HeaderIdempotencyKey, fmt.Sprint("rej-", i)))
			p := wantProblem(t, w, tt.status, tt.code)
			if tt.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tt.field) {
				t.Fatalf("errors %+v, want one for %q", p.Errors, tt.field)
			}
		})
	}
}

func TestUserListPagesAndETag(t *testing.T) {
	env := newTestAPI(t)
	for _, n := range []string{"binh", "an", "chi"} {
		env.createUser(n, "auditor")
	}
	var names []string
	cursor := ""
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("pagination does not end")
		}
		path := "/v1/users?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		w := env.do(env.req(http.MethodGet, path, env.admin, ""))
		if w.Code != http.StatusOK {
			t.Fatalf("list: %d %s", w.Code, w.Body)
		}
		list := decodeJSON[List[userJSON]](t, w)
		if len(list.Items) > 2 {
			t.Fatalf("%d items on a page of 2", len(list.Items))
		}
		for _, u := range list.Items {
			names = append(names, u.Name)
		}
		if list.NextCursor == "" {
			break
		}
		cursor = list.NextCursor
	}
	if got := strings.Join(names, ","); got != "admin,an,binh,chi" {
		t.Fatalf("pages gave %s", got)
	}

	w := env.do(env.req(http.MethodGet, "/v1/users", env.admin, ""))
	etag := w.Header().Get("ETag")
	if etag != ETag(uint64(env.users.Revision())) {
		t.Fatalf("ETag %q, users revision %d", etag, env.users.Revision())
	}
	// A change conditional on a stale list fails with 412 and the current
	// ETag; on the current one it succeeds.
	stale := ETag(0)
	w = env.do(env.req(http.MethodPost, "/v1/users", env.admin, `{"name":"dung","role":"auditor"}`,
		HeaderIdempotencyKey, "stale", "If-Match", stale))
	wantProblem(t, w, http.StatusPreconditionFailed, "precondition_failed")
	if w.Header().Get("ETag") != etag {
		t.Fatalf("412 ETag %q, want the current %q", w.Header().Get("ETag"), etag)
	}
	w = env.do(env.req(http.MethodPost, "/v1/users", env.admin, `{"name":"dung","role":"auditor"}`,
		HeaderIdempotencyKey, "fresh", "If-Match", etag))
	if w.Code != http.StatusCreated {
		t.Fatalf("create with current If-Match: %d %s", w.Code, w.Body)
	}
	if got, want := w.Header().Get("ETag"), ETag(uint64(env.users.Revision())); got != want {
		t.Fatalf("ETag after the write %q, want %q", got, want)
	}

	for _, bad := range []string{"limit=0", "limit=501", "limit=x", "cursor=%25%25", "cursor=" + NextCursor("")[:2]} {
		w := env.do(env.req(http.MethodGet, "/v1/users?"+bad, env.admin, ""))
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", bad, w.Code)
		}
	}
}

func TestCommandMetadataRecordsWhoAndWhich(t *testing.T) {
	env := newTestAPI(t)
	w := env.do(env.req(http.MethodPost, "/v1/users", env.admin, `{"name":"lan","role":"registrar"}`,
		HeaderIdempotencyKey, "meta-1", HeaderRequestID, "req-meta-1"))
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	evs, err := env.store.ReadStream(t.Context(), "users", eventstore.ReadStreamOptions{Direction: eventstore.Backwards, From: eventstore.End, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	meta := string(evs[0].Metadata)
	for _, want := range []string{`"user_id":"admin"`, `"correlation_id":"req-meta-1"`, `"command_id":"meta-1"`, `"command_hash":"`} {
		if !strings.Contains(meta, want) {
			t.Errorf("metadata %s lacks %s", meta, want)
		}
	}
}
