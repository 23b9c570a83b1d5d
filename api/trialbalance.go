package api

import (
	"net/http"

	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/labstack/echo/v4"
)

// The trial balance of the disbursement books (docs/disbursement.md,
// "Double-entry"): every account's signed balance, debit positive. It is
// folded from the whole event log on each request (ledger.TrialBalance)
// until the projections keep it; that is linear in the log, so the route
// has a long deadline and is for finance staff and auditors, not a
// dashboard.
func (s *Server) trialBalanceRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/v1/trial-balance", Handler: s.getTrialBalance, Roles: moneyReaders, Timeout: runLongTimeout},
	}
}

type (
	accountBalanceJSON struct {
		Account string    `json:"account"`
		Balance moneyJSON `json:"balance"`
	}
	trialBalanceJSON struct {
		Accounts []accountBalanceJSON `json:"accounts"`
	}
)

func (s *Server) getTrialBalance(c echo.Context) error {
	tb, _, err := s.deps.Ledger.TrialBalance(c.Request().Context())
	if err != nil {
		return err // an unbalanced book is a bug: a logged 500
	}
	out := trialBalanceJSON{Accounts: make([]accountBalanceJSON, len(disbursement.Accounts))}
	for i, a := range disbursement.Accounts {
		out.Accounts[i] = accountBalanceJSON{Account: string(a), Balance: toMoneyJSON(tb.Balance(a))}
	}
	return c.JSON(http.StatusOK, out)
}
