// Command ansinh runs the ansinh service and administers its users.
//
//	ansinh serve [flags]              the REST API on the event store
//	ansinh users add --name N --role R    create a user; prints its API token
//	ansinh users list                     the users
//	ansinh users token --name N           a new API token (revokes the old one)
//	ansinh users disable --name N         lock a user out
//	ansinh import beneficiaries --file F.csv  register beneficiaries from a CSV file
//	ansinh export events [--out F]        the event log as JSON Lines, for auditors
//	ansinh rebuild [--projection NAME]    rebuild read models from the log (offline)
//	ansinh replay --as-of WHEN            balances and reports as the ledger knew them then
//	ansinh verify [--public-key F]        check the log, its seals, the books and the read models
//	ansinh version
//
// Settings come from flags, then environment variables (ANSINH_ADDR,
// ANSINH_DATA, ANSINH_STORE, ...), then defaults: a flag given on the
// command line wins over the environment. Errors are one line on stderr;
// the exit code is 2 for a usage error and 1 for a failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a mistake on the command line (exit 2), as opposed to a
// failure while doing what was asked (exit 1).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

const usage = `usage: ansinh <command> [flags]

commands:
  serve      run the REST API (see ansinh serve -h)
  users      manage users and API tokens: add, list, token, disable
  import     import beneficiaries from a CSV file (see ansinh import -h)
  export     export the event log as JSON Lines (see ansinh export -h)
  rebuild    rebuild read models from the event log, offline (see ansinh rebuild -h)
  replay     replay the log up to a date or position and print a balance or report (see ansinh replay -h)
  verify     check the log's hash chain and seals, the books and the read models (see ansinh verify -h)
  version    print the version

Flags win over environment variables (ANSINH_ADDR, ANSINH_DATA, ANSINH_STORE,
ANSINH_JWT_KEY, ANSINH_JWT_ISSUER, ANSINH_JWT_AUDIENCE, ANSINH_LOG_FORMAT,
ANSINH_LOG_LEVEL), which win over the defaults.
`

// run is main without the process: it takes the arguments, the output
// streams and the environment, and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr, getenv)
	case "users":
		err = usersCommand(ctx, args[1:], stdout, stderr, getenv)
	case "import":
		err = importCommand(ctx, args[1:], stdout, stderr, getenv)
	case "export":
		err = exportCommand(ctx, args[1:], stdout, stderr, getenv)
	case "rebuild":
		err = rebuildCommand(ctx, args[1:], stdout, stderr, getenv)
	case "replay":
		err = replayCommand(ctx, args[1:], stdout, stderr, getenv)
	case "verify":
		err = verifyCommand(ctx, args[1:], stdout, stderr, getenv)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "ansinh "+versionString())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = usagef("unknown command %q; want serve, users, import, export, rebuild, replay, verify or version", args[0])
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintln(stderr, "ansinh: "+oneLine(err.Error()))
		return exitUsage
	default:
		fmt.Fprintln(stderr, "ansinh: "+oneLine(err.Error()))
		return exitFailure
	}
}

// oneLine keeps an error on one line of the terminal.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = ""

func versionString() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if v == "" && ok && info.Main.Version != "" {
		v = info.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	if ok {
		var rev, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			v += " " + rev
			if modified == "true" {
				v += "+dirty"
			}
		}
		v += " " + info.GoVersion
	}
	return v
}

// flagSet is a FlagSet whose errors come back as usage errors rather than
// being printed, and whose flags can fall back to environment variables.
type flagSet struct {
	*flag.FlagSet
	command string            // "serve", "users add", ...
	stdout  io.Writer         // where -h prints
	env     map[string]string // flag name -> environment variable
}

func newFlagSet(command string, stdout io.Writer) *flagSet {
	fs := flag.NewFlagSet("ansinh "+command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // parse reports errors in one line, and prints the help only for -h
	return &flagSet{FlagSet: fs, command: command, stdout: stdout, env: map[string]string{}}
}

func (f *flagSet) printUsage() {
	fmt.Fprintf(f.stdout, "usage: ansinh %s [flags]\n", f.command)
	f.SetOutput(f.stdout)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// fromEnv makes the flag fall back to the environment variable.
func (f *flagSet) fromEnv(flagName, envName string) {
	fl := f.Lookup(flagName)
	fl.Usage += " (env " + envName + ")"
	f.env[flagName] = envName
}

// parse reads the arguments, then fills the flags not given on the command
// line from their environment variables.
func (f *flagSet) parse(args []string, getenv func(string) string) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.printUsage()
			return err
		}
		return usagef("%s: %v (see ansinh %s -h)", f.command, err, f.command)
	}
	if f.NArg() > 0 {
		return usagef("%s: unexpected argument %q (see ansinh %s -h)", f.command, f.Arg(0), f.command)
	}
	given := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	for name, envName := range f.env {
		if given[name] {
			continue
		}
		if v := getenv(envName); v != "" {
			if err := f.Set(name, v); err != nil {
				return usagef("%s=%q: %v", envName, v, err)
			}
		}
	}
	return nil
}
