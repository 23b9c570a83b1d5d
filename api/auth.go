package api

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ansinh/ansinh/api/users"
	"github.com/ansinh/ansinh/domain"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
)

// How a caller proved who they are.
const (
	AuthToken = "token" // an API token of the users directory
	AuthJWT   = "jwt"   // a JWT signed by the configured identity provider
)

// Limits on credentials: a header the server hashes or parses on every
// request must not be arbitrarily long.
const (
	maxCredentialBytes = 4096
	maxSubjectBytes    = 128
)

const ctxPrincipal = "ansinh.principal"

// Principal is the authenticated caller.
type Principal struct {
	Actor domain.Actor
	Via   string // AuthToken or AuthJWT
}

// PrincipalOf is the caller of an authenticated route.
func PrincipalOf(c echo.Context) Principal {
	p, _ := c.Get(ctxPrincipal).(Principal)
	return p
}

// ActorOf is the caller as the author of a command.
func ActorOf(c echo.Context) domain.Actor { return PrincipalOf(c).Actor }

// JWTConfig accepts bearer JWTs from an external identity provider. They
// must be signed with Ed25519 (alg EdDSA): the provider keeps the private key
// and ansinh holds only the public one, so a leak of ansinh's configuration
// cannot mint tokens, as a shared HMAC secret could. The claims used are
// "sub" (the user ID recorded as the actor of commands) and "role" (one of
// the roles of users.Roles); "exp" is required, "nbf" is honoured, and "iss"
// and "aud" are checked when Issuer and Audience are set.
type JWTConfig struct {
	Key      ed25519.PublicKey
	Issuer   string
	Audience string
	// Leeway tolerates clock skew on exp and nbf. Default 0; at most 5m.
	Leeway time.Duration
}

func (j JWTConfig) validate() error {
	if len(j.Key) != ed25519.PublicKeySize {
		return fmt.Errorf("api: JWT key has %d bytes, an Ed25519 public key has %d", len(j.Key), ed25519.PublicKeySize)
	}
	if j.Leeway < 0 || j.Leeway > 5*time.Minute {
		return fmt.Errorf("api: JWT leeway %s, want 0 to 5m", j.Leeway)
	}
	return nil
}

// ParseJWTKey reads an Ed25519 public key in PEM ("BEGIN PUBLIC KEY").
func ParseJWTKey(pem []byte) (ed25519.PublicKey, error) {
	k, err := jwt.ParseEdPublicKeyFromPEM(pem)
	if err != nil {
		return nil, fmt.Errorf("JWT key: want an Ed25519 public key in PEM: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("JWT key: %T is not an Ed25519 public key", k)
	}
	return pub, nil
}

type jwtVerifier struct {
	key    ed25519.PublicKey
	parser *jwt.Parser
}

type jwtClaims struct {
	jwt.RegisteredClaims
	Role domain.Role `json:"role"`
}

func newJWTVerifier(cfg JWTConfig, now func() time.Time) *jwtVerifier {
	// Every option is spelled out rather than left to the library's
	// defaults, which have changed between major versions.
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &jwtVerifier{key: cfg.Key, parser: jwt.NewParser(opts...)}
}

// verify checks a JWT and returns the principal it names.
func (v *jwtVerifier) verify(token string) (Principal, error) {
	var claims jwtClaims
	_, err := v.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		return Principal{}, err
	}
	if err := validSubject(claims.Subject); err != nil {
		return Principal{}, err
	}
	if !users.ValidRole(claims.Role) {
		return Principal{}, fmt.Errorf("role claim %q is not a role of ansinh", clip(string(claims.Role)))
	}
	return Principal{Actor: domain.Actor{UserID: claims.Subject, Role: claims.Role}, Via: AuthJWT}, nil
}

// validSubject keeps JWT subjects as plain as the audit trail needs.
func validSubject(sub string) error {
	if len(sub) == 0 || len(sub) > maxSubjectBytes {
		return fmt.Errorf("sub claim must be 1 to %d bytes", maxSubjectBytes)
	}
	for i := 0; i < len(sub); i++ {
		c := sub[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-_.:@", c) >= 0:
		default:
			return errors.New("sub claim may hold only letters, digits and - _ . : @")
		}
	}
	return nil
}

// authenticate finds who is calling from the Authorization header: an API
// token (prefixed "ans_") or, when configured, a JWT. A user disabled in the
// directory is refused whatever the credential, so that disabling a name
// also locks out its identity-provider logins.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		header := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, credential, ok := strings.Cut(header, " ")
		if header == "" {
			// No error attribute in the challenge: nothing was refused yet (RFC 6750 §3.1).
			return NewProblem(http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <API token or JWT>")
		}
		if !ok || !strings.EqualFold(scheme, "Bearer") || credential == "" {
			return unauthorized("the Authorization header must be: Bearer <API token or JWT>")
		}
		if len(credential) > maxCredentialBytes {
			return unauthorized(fmt.Sprintf("the credential is over %d bytes", maxCredentialBytes))
		}
		var p Principal
		switch {
		case strings.HasPrefix(credential, users.TokenPrefix):
			u, ok := s.deps.Users.Authenticate(credential)
			if !ok {
				return unauthorized("the API token is unknown, revoked, or its user is disabled; ask an admin for a new one")
			}
			p = Principal{Actor: u.Actor(), Via: AuthToken}
		case s.jwt != nil:
			var err error
			if p, err = s.jwt.verify(credential); err != nil {
				return unauthorized("the JWT was refused: " + err.Error()).WithCause(err)
			}
			if s.deps.Users.IsDisabled(p.Actor.UserID) {
				return unauthorized("user " + p.Actor.UserID + " is disabled")
			}
		default:
			return unauthorized("the credential is not an ansinh API token (ans_...), and this server accepts no JWTs")
		}
		c.Set(ctxPrincipal, p)
		// What an authenticated route returns is personal data or a
		// credential: no cache, shared or private, may keep it.
		c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
		c.Set(ctxLogger, Logger(c).With("user", p.Actor.UserID, "role", string(p.Actor.Role)))
		return next(c)
	}
}

func unauthorized(detail string) *Problem {
	return NewProblem(http.StatusUnauthorized, "unauthorized", detail).
		WithHeader(echo.HeaderWWWAuthenticate, `Bearer realm="ansinh", error="invalid_token"`)
}

// authorize lets through the roles a route lists.
func authorize(roles []domain.Role) echo.MiddlewareFunc {
	allowed := make([]string, len(roles))
	for i, r := range roles {
		allowed[i] = string(r)
	}
	list := strings.Join(allowed, ", ")
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			role := ActorOf(c).Role
			if !slices.Contains(roles, role) {
				return Problemf(http.StatusForbidden, "forbidden",
					"your role %s may not do this; it needs one of: %s", role, list)
			}
			return next(c)
		}
	}
}
