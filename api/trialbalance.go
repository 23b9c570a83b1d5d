package api

import (
	"net/http"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections"
	"github.com/labstack/echo/v4"
)

// The trial balance of the disbursement books (docs/disbursement.md,
// "Double-entry"): every account's signed balance, debit positive, split
// by program, and whether they net to zero. The books read model keeps it
// (a few keys read per request); ?as_of= replays the log up to a past
// instant or position (readside.go). A server without read models folds
// the whole log on each request (ledger.TrialBalance), which is linear in
// the log: hence the long deadline.
func (s *Server) trialBalanceRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/v1/trial-balance", Handler: s.getTrialBalance, Roles: moneyReaders, Timeout: runLongTimeout},
	}
}

type (
	accountBalanceJSON struct {
		Account string    `json:"account"`
		Balance moneyJSON `json:"balance"`
		Debit   moneyJSON `json:"debit"`
		Credit  moneyJSON `json:"credit"`
		// ByProgram splits the balance by program (programs with postings).
		ByProgram map[string]moneyJSON `json:"by_program"`
	}
	trialBalanceJSON struct {
		Accounts []accountBalanceJSON `json:"accounts"`
		Debits   moneyJSON            `json:"debits"`
		Credits  moneyJSON            `json:"credits"`
		// Total is the sum of the balances; Balanced says it is zero, as
		// double entry requires.
		Total    moneyJSON           `json:"total"`
		Balanced bool                `json:"balanced"`
		AsOf     *string             `json:"as_of"`
		Position eventstore.Position `json:"position"`
	}
)

func (s *Server) getTrialBalance(c echo.Context) error {
	if s.deps.ReadModels == nil && c.QueryParam(QueryAsOf) == "" {
		return s.foldTrialBalance(c)
	}
	set, done, until, err := s.readModelsAt(c)
	if err != nil {
		return err
	}
	defer done()
	tb, err := set.TrialBalance(c.Request().Context())
	if err != nil {
		return err
	}
	if !tb.Balanced {
		// A bug or a damaged log; the books projection re-checks every
		// entry, so this should never be seen. Say so in the log loudly,
		// and still show auditors the figures.
		Logger(c).Error("the trial balance does not net to zero", "total", tb.Total.Amount.String(), "position", tb.Position.String())
	}
	out := toTrialBalanceJSON(tb.TrialBalance, tb.Position)
	if until != nil {
		v := c.QueryParam(QueryAsOf)
		out.AsOf = &v
	}
	return c.JSON(http.StatusOK, out)
}

// foldTrialBalance answers from a fold of the whole log, for servers
// without read models. The position is the head before the fold: the
// figures include at least everything up to it.
func (s *Server) foldTrialBalance(c echo.Context) error {
	ctx := c.Request().Context()
	head, err := s.deps.Store.Head(ctx)
	if err != nil {
		return err
	}
	tb, postings, err := s.deps.Ledger.TrialBalance(ctx)
	if err != nil {
		return err // an unbalanced book is a bug: a logged 500
	}
	out := projections.TrialBalance{Debits: domain.ZeroVND(), Credits: domain.ZeroVND(), Total: domain.ZeroVND(), Balanced: true}
	byProgram := map[disbursement.Account]map[string]domain.Money{}
	for _, p := range postings {
		m := byProgram[p.Account]
		if m == nil {
			m = map[string]domain.Money{}
			byProgram[p.Account] = m
		}
		have, ok := m[p.Program]
		if !ok {
			have = domain.ZeroVND()
		}
		m[p.Program] = have.Add(p.Amount)
	}
	for _, a := range tb.Accounts() {
		bal := disbursement.Posting{Amount: tb.Balance(a)}
		out.Accounts = append(out.Accounts, projections.AccountBalance{Account: a, Balance: bal.Amount, Debit: bal.Debit(), Credit: bal.Credit(), ByProgram: byProgram[a]})
		out.Debits, out.Credits, out.Total = out.Debits.Add(bal.Debit()), out.Credits.Add(bal.Credit()), out.Total.Add(bal.Amount)
	}
	return c.JSON(http.StatusOK, toTrialBalanceJSON(out, head))
}

// toTrialBalanceJSON lists every account of the chart, in report order
// (zero where nothing was posted), then any the code does not know.
func toTrialBalanceJSON(tb projections.TrialBalance, pos eventstore.Position) trialBalanceJSON {
	out := trialBalanceJSON{Accounts: []accountBalanceJSON{}, Debits: toMoneyJSON(tb.Debits), Credits: toMoneyJSON(tb.Credits),
		Total: toMoneyJSON(tb.Total), Balanced: tb.Balanced, Position: pos}
	have := map[disbursement.Account]projections.AccountBalance{}
	for _, a := range tb.Accounts {
		have[a.Account] = a
	}
	add := func(a projections.AccountBalance) {
		w := accountBalanceJSON{Account: string(a.Account), Balance: toMoneyJSON(a.Balance), Debit: toMoneyJSON(a.Debit),
			Credit: toMoneyJSON(a.Credit), ByProgram: map[string]moneyJSON{}}
		for p, m := range a.ByProgram {
			w.ByProgram[p] = toMoneyJSON(m)
		}
		out.Accounts = append(out.Accounts, w)
	}
	for _, a := range disbursement.Accounts {
		ab, ok := have[a]
		if !ok {
			z := domain.ZeroVND()
			ab = projections.AccountBalance{Account: a, Balance: z, Debit: z, Credit: z}
		}
		add(ab)
		delete(have, a)
	}
	for _, a := range tb.Accounts {
		if _, unknown := have[a.Account]; unknown {
			add(a)
		}
	}
	return out
}
