package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/ansinh/ansinh/api/users"
	"github.com/ansinh/ansinh/domain"
)

const usersUsage = `usage: ansinh users <add|list|token|disable> [flags]

  add --name N --role R    create a user; prints its API token (only now) on stdout
  list                     the users
  token --name N           issue a new API token, revoking the old one; prints it on stdout
  disable --name N         lock a user out for good

They work on the event store directly (--data, --store). The embedded store
is held by a running server: stop it first, or use the API (/v1/users).
`

func usersCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usagef("users: want a subcommand: add, list, token or disable")
	}
	sub, args := args[0], args[1:]
	var (
		cfg        storeConfig
		name, role string
	)
	fs := newFlagSet("users "+sub, stdout)
	addStoreFlags(fs, &cfg)
	switch sub {
	case "add":
		fs.StringVar(&name, "name", "", "user name: lower-case letters, digits and . _ - (required)")
		fs.StringVar(&role, "role", "", "role: registrar, finance_officer, approver, auditor or admin (required)")
	case "token", "disable":
		fs.StringVar(&name, "name", "", "user name (required)")
	case "list":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usersUsage)
		return nil
	default:
		return usagef("users: unknown subcommand %q; want add, list, token or disable", sub)
	}
	if err := fs.parse(args, getenv); err != nil {
		return err
	}
	if sub != "list" && name == "" {
		return usagef("users %s: --name is required", sub)
	}
	if sub == "add" && role == "" {
		return usagef("users add: --role is required (registrar, finance_officer, approver, auditor or admin)")
	}

	// The library logs (pebble, the EventStoreDB client) are for servers;
	// a command shows only its result or its error.
	quiet := slog.New(slog.DiscardHandler)
	store, err := openStore(ctx, cfg, quiet)
	if err != nil {
		return err
	}
	defer store.Close()
	dir, err := users.Open(ctx, store, quiet)
	if err != nil {
		return err
	}
	meta := domain.Metadata{Actor: operator()}
	switch sub {
	case "add":
		w, err := dir.Create(ctx, meta, nil, name, domain.Role(role))
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "created user %s (%s); its API token, shown only now:\n", w.User.Name, w.User.Role)
		fmt.Fprintln(stdout, w.Token)
	case "token":
		w, err := dir.IssueToken(ctx, meta, nil, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "new API token for %s, shown only now (the previous one no longer works):\n", w.User.Name)
		fmt.Fprintln(stdout, w.Token)
	case "disable":
		w, err := dir.Disable(ctx, meta, nil, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s disabled\n", w.User.Name)
	case "list":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tSTATUS\tCREATED\tTOKEN ISSUED")
		for _, u := range dir.List() {
			status := "active"
			if u.Disabled {
				status = "disabled"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Role, status, stamp(u.CreatedAt), stamp(u.TokenIssuedAt))
		}
		return tw.Flush()
	}
	return nil
}

// operator is the actor recorded for a change made from the command line:
// the operating-system account, since whoever can run this command on the
// data directory is acting as an admin.
func operator() domain.Actor {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return domain.Actor{UserID: "os:" + name, Role: domain.RoleAdmin}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
