package api

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/golang-jwt/jwt/v5"
)

func TestJWT(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	env := newTestAPI(t, func(c *Config, _ *Deps) {
		c.JWT = &JWTConfig{Key: pub, Issuer: "https://id.hanoi.example", Audience: "ansinh"}
	})
	env.createUserDirect("gone", domain.RoleAuditor)
	if _, err := env.users.Disable(t.Context(), domain.Metadata{}, nil, "gone"); err != nil {
		t.Fatal(err)
	}
	now := env.clock.Now()
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{
			"sub": "nguyen.lan@ldtbxh", "role": "finance_officer",
			"iss": "https://id.hanoi.example", "aud": "ansinh",
			"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(),
		}
	}
	sign := func(claims jwt.MapClaims, key ed25519.PrivateKey) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	with := func(k string, v any) string {
		c := valid()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return sign(c, priv)
	}
	hs256, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, valid()).SignedString([]byte("guessable"))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, valid()).SignedString(jwt.UnsafeAllowNoneSignatureType)

	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"valid", sign(valid(), priv), true},
		{"no nbf is fine", with("nbf", nil), true},
		{"signed by another key", sign(valid(), otherPriv), false},
		{"HS256 with a guessed secret", hs256, false},
		{"alg none", none, false},
		{"expired", with("exp", now.Add(-time.Second).Unix()), false},
		{"no exp", with("exp", nil), false},
		{"not yet valid", with("nbf", now.Add(time.Minute).Unix()), false},
		{"other issuer", with("iss", "https://evil.example"), false},
		{"other audience", with("aud", "payroll"), false},
		{"no role", with("role", nil), false},
		{"system role", with("role", "system"), false},
		{"unknown role", with("role", "superuser"), false},
		{"no subject", with("sub", nil), false},
		{"subject with spaces", with("sub", "Nguyen Lan"), false},
		{"disabled user", with("sub", "gone"), false},
		{"garbage", "not.a.jwt", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := env.do(env.req(http.MethodGet, "/v1/me", tt.token, ""))
			if !tt.ok {
				wantProblem(t, w, http.StatusUnauthorized, "unauthorized")
				return
			}
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			me := decodeJSON[meJSON](t, w)
			if me.UserID != "nguyen.lan@ldtbxh" || me.Role != domain.RoleFinanceOfficer || me.AuthenticatedBy != AuthJWT {
				t.Fatalf("me = %+v", me)
			}
		})
	}
	// A JWT's role is checked per route like a token's.
	wantProblem(t, env.do(env.req(http.MethodGet, "/v1/users", sign(valid(), priv), "")), http.StatusForbidden, "forbidden")
	// API tokens keep working beside JWTs.
	if w := env.do(env.req(http.MethodGet, "/v1/me", env.admin, "")); w.Code != 200 {
		t.Fatalf("API token beside JWT: %d", w.Code)
	}
}

func TestParseJWTKey(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseJWTKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil || !got.Equal(pub) {
		t.Fatalf("ParseJWTKey = %v, %v", got, err)
	}
	if _, err := ParseJWTKey([]byte("secret")); err == nil {
		t.Fatal("a non-PEM key was accepted")
	}
}
