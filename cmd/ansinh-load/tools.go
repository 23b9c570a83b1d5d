package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"time"

	"github.com/ansinh/ansinh/domain/registry"
)

// maxCSVLines is what ansinh import takes in one file.
const maxCSVLines = 1_000_000

// genCSVCommand writes the import file of cmd/ansinh's BenchmarkImport
// (same generator, same seed, so the same lines): real districts and
// wards, half with a bank account, nine in ten with SOCIAL_MONTHLY.
func genCSVCommand(args []string, stderr io.Writer) error {
	fs := newFlagSet("ansinh-load gen-csv", stderr)
	lines := fs.Int("lines", 300_000, "beneficiaries to write (1 to 1,000,000)")
	out := fs.String("out", "", "the file to write")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("gen-csv: %v", err)
	}
	if *lines < 1 || *lines > maxCSVLines {
		return usagef("gen-csv: --lines %d: want 1 to %d", *lines, maxCSVLines)
	}
	if *out == "" {
		return usagef("gen-csv: --out is required")
	}
	f, err := os.Create(*out)
	if err != nil {
		return fmt.Errorf("gen-csv: %w", err)
	}
	w := bufio.NewWriter(f)
	writeImportFile(w, *lines)
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("gen-csv: write %s: %w", *out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("gen-csv: close %s: %w", *out, err)
	}
	return nil
}

// writeImportFile is cmd/ansinh's generator of the same name (a test
// helper there, so not importable): keep the two alike, so that the API
// figures and the import figures are of the same population.
func writeImportFile(w io.Writer, n int) {
	rng := rand.New(rand.NewPCG(1, 2))
	places := hanoiPlaces()
	fmt.Fprintln(w, "citizen_id,full_name,date_of_birth,sex,street,district_code,ward_code,category,household_id,bank_code,account_number,payment_method,program,coefficient,start_period")
	for i := range n {
		sex := registry.Male
		if i%2 == 1 {
			sex = registry.Female
		}
		year := 1930 + rng.IntN(70)
		p := places[rng.IntN(len(places))]
		bank, account := "", ""
		if i%2 == 0 {
			bank, account = "VCB", fmt.Sprintf("%013d", 1_000_000_000+i)
		}
		program, coef, start := "SOCIAL_MONTHLY", "1.5", "2024-07"
		if i%10 == 9 {
			program, coef, start = "", "", ""
		}
		fmt.Fprintf(w, "%s,%s %s,%04d-%02d-%02d,%s,Số %d ngõ %d,%s,%s,social_protection,,%s,%s,,%s,%s,%s\n",
			registry.MakeCitizenID("001", sex, year, i), familyNames[i%len(familyNames)], givenNames[i%len(givenNames)], year, 1+rng.IntN(12), 1+rng.IntN(28),
			sex, 1+rng.IntN(200), 1+rng.IntN(50), p.district, p.ward, bank, account, program, coef, start)
	}
}

// waitCommand polls /readyz until it answers 200: the store answers and
// the read models have caught up with the log (their lag is under the
// server's limit).
func waitCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("ansinh-load wait", stderr)
	rawURL := fs.String("url", "http://127.0.0.1:8080", "the server, on a loopback address")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long (at most 1h)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("wait: %v", err)
	}
	if *timeout <= 0 || *timeout > maxDuration {
		return usagef("wait: --timeout %s: want more than 0 and at most %s", *timeout, maxDuration)
	}
	base, err := loopbackURL(*rawURL)
	if err != nil {
		return err
	}
	client := newClient(1, 5*time.Second)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	start := time.Now()
	lastSaid := start
	for {
		status, err := readyz(ctx, client, base.String()+"/readyz")
		if status == http.StatusOK {
			fmt.Fprintf(stderr, "ansinh-load: ready after %s\n", time.Since(start).Round(100*time.Millisecond))
			return nil
		}
		if time.Since(lastSaid) >= 10*time.Second {
			lastSaid = time.Now()
			fmt.Fprintf(stderr, "ansinh-load: not ready after %s (status %d, %v)\n", time.Since(start).Round(time.Second), status, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait: %s not ready after %s (last status %d, %v)", base, *timeout, status, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func readyz(ctx context.Context, client *http.Client, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("readyz: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}
