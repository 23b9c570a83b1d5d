package api

import (
	"net/http"

	"github.com/ansinh/ansinh/domain"
	"github.com/labstack/echo/v4"
)

func (s *Server) meRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/v1/me", Handler: s.getMe, Roles: AllRoles},
	}
}

type meJSON struct {
	UserID          string      `json:"user_id"`
	Role            domain.Role `json:"role"`
	AuthenticatedBy string      `json:"authenticated_by"`
}

// getMe tells callers who the server thinks they are: the first thing to
// check when a credential does not do what its holder expects.
func (s *Server) getMe(c echo.Context) error {
	p := PrincipalOf(c)
	return c.JSON(http.StatusOK, meJSON{UserID: p.Actor.UserID, Role: p.Actor.Role, AuthenticatedBy: p.Via})
}
