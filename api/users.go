package api

import (
	"net/http"
	"net/url"
	"time"

	"github.com/ansinh/ansinh/api/users"
	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/labstack/echo/v4"
)

// The users resource: admins manage who may call the API; auditors see it.
// The ETag of the list is the revision of the users stream, and If-Match on
// the commands takes it, so an admin can make a change conditional on the
// list being as they last saw it.
func (s *Server) userRoutes() []Route {
	readers := []domain.Role{domain.RoleAdmin, domain.RoleAuditor}
	admins := []domain.Role{domain.RoleAdmin}
	return []Route{
		{Method: http.MethodGet, Path: "/v1/users", Handler: s.listUsers, Roles: readers},
		{Method: http.MethodPost, Path: "/v1/users", Handler: s.createUser, Roles: admins},
		{Method: http.MethodGet, Path: "/v1/users/:name", Handler: s.getUser, Roles: readers},
		{Method: http.MethodPost, Path: "/v1/users/:name/tokens", Handler: s.issueToken, Roles: admins},
		{Method: http.MethodPost, Path: "/v1/users/:name/disable", Handler: s.disableUser, Roles: admins},
	}
}

type userJSON struct {
	Name          string      `json:"name"`
	Role          domain.Role `json:"role"`
	Disabled      bool        `json:"disabled"`
	CreatedAt     time.Time   `json:"created_at"`
	TokenIssuedAt *time.Time  `json:"token_issued_at"`
}

func toUserJSON(u users.User) userJSON {
	return userJSON{Name: u.Name, Role: u.Role, Disabled: u.Disabled, CreatedAt: u.CreatedAt, TokenIssuedAt: timeOrNil(u.TokenIssuedAt)}
}

type createUserRequest struct {
	Name string      `json:"name"`
	Role domain.Role `json:"role"`
}

type userWithToken struct {
	User  userJSON `json:"user"`
	Token string   `json:"token"`
	Written
}

type userWritten struct {
	User userJSON `json:"user"`
	Written
}

func (s *Server) listUsers(c echo.Context) error {
	page, err := ParsePage(c)
	if err != nil {
		return err
	}
	// The revision is read before the list, so the ETag is never newer
	// than what the list shows.
	if rev := s.deps.Users.Revision(); rev >= 0 {
		SetETag(c, uint64(rev))
	}
	all := s.deps.Users.List()
	wire := make([]userJSON, len(all))
	for i, u := range all {
		wire[i] = toUserJSON(u)
	}
	return c.JSON(http.StatusOK, Paginate(wire, func(u userJSON) string { return u.Name }, page))
}

func (s *Server) getUser(c echo.Context) error {
	name := c.Param("name")
	u, ok := s.deps.Users.Get(name)
	if !ok {
		return domain.Rejectf(domain.NotFound, "user_not_found", "name", "no user named %q", clip(name))
	}
	return c.JSON(http.StatusOK, toUserJSON(u))
}

func (s *Server) createUser(c echo.Context) error {
	var req createUserRequest
	if err := Decode(c, &req); err != nil {
		return err
	}
	expected, err := ifMatchPtr(c)
	if err != nil {
		return err
	}
	w, err := s.deps.Users.Create(c.Request().Context(), s.CommandMetadata(c), expected, req.Name, req.Role)
	if err != nil {
		return err
	}
	Logger(c).Info("user created", "name", w.User.Name, "user_role", string(w.User.Role))
	c.Response().Header().Set(echo.HeaderLocation, "/v1/users/"+url.PathEscape(w.User.Name))
	return CommandResult(c, http.StatusCreated, w.Result, userWithToken{User: toUserJSON(w.User), Token: w.Token, Written: Written{w.Result.Position}})
}

func (s *Server) issueToken(c echo.Context) error {
	expected, err := ifMatchPtr(c)
	if err != nil {
		return err
	}
	w, err := s.deps.Users.IssueToken(c.Request().Context(), s.CommandMetadata(c), expected, c.Param("name"))
	if err != nil {
		return err
	}
	Logger(c).Info("token issued", "name", w.User.Name)
	return CommandResult(c, http.StatusCreated, w.Result, userWithToken{User: toUserJSON(w.User), Token: w.Token, Written: Written{w.Result.Position}})
}

func (s *Server) disableUser(c echo.Context) error {
	name := c.Param("name")
	if name == ActorOf(c).UserID {
		// An admin who disables themselves may lock everyone out.
		return NewProblem(http.StatusForbidden, "cannot_disable_self", "you cannot disable your own user; ask another admin")
	}
	expected, err := ifMatchPtr(c)
	if err != nil {
		return err
	}
	w, err := s.deps.Users.Disable(c.Request().Context(), s.CommandMetadata(c), expected, name)
	if err != nil {
		return err
	}
	Logger(c).Info("user disabled", "name", w.User.Name)
	return CommandResult(c, http.StatusOK, w.Result, userWritten{User: toUserJSON(w.User), Written: Written{w.Result.Position}})
}

// ifMatchPtr is IfMatch for the users directory, which takes nil for "no
// precondition".
func ifMatchPtr(c echo.Context) (*eventstore.ExpectedRevision, error) {
	expected, ok, err := IfMatch(c)
	if err != nil || !ok {
		return nil, err
	}
	return &expected, nil
}
