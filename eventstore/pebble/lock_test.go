package pebble

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// childEnv marks a re-executed test binary as a child process of a test in
// this package; its value says which one.
const (
	childEnv    = "ANSINH_PEBBLE_TEST_CHILD"
	childDirEnv = "ANSINH_PEBBLE_TEST_DIR"
)

func TestOpenSameDirTwiceInProcess(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, dir)
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "already open in this process") {
		t.Fatalf("second Open: err = %v, want 'already open in this process'", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing releases the directory.
	openDisk(t, dir)

	// Another path to the same directory is the same directory: the fcntl
	// lock would not stop this process, so the store itself must.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	_, err = Open(link, Options{})
	if err == nil || !strings.Contains(err.Error(), "already open in this process") {
		t.Fatalf("Open through a symlink: err = %v, want 'already open in this process'", err)
	}
	t.Logf("Open through a symlink: %v", err)
}

// TestOpenDirHeldByAnotherProcess runs a child process that holds a store
// open, and checks that this process cannot open it meanwhile, and can after
// the child exits.
func TestOpenDirHeldByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=lock", childDirEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	ready := false
	for lines.Scan() {
		if lines.Text() == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		t.Fatalf("child did not report ready: %v", lines.Err())
	}

	_, err = Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("Open of a directory held by another process: err = %v, want 'in use by another process'", err)
	}
	t.Logf("Open while another process holds it: %v", err)

	stdin.Close() // the child closes its store and exits on EOF
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	openDisk(t, dir)
}

// TestLockChild is the child of TestOpenDirHeldByAnotherProcess; run alone
// it does nothing.
func TestLockChild(t *testing.T) {
	if os.Getenv(childEnv) != "lock" {
		t.Skip("child process of TestOpenDirHeldByAnotherProcess")
	}
	s, err := Open(os.Getenv(childDirEnv), Options{})
	if err != nil {
		t.Fatalf("child Open: %v", err)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		t.Fatalf("child Close: %v", err)
	}
}
