package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// doer sends one request and returns its answer, whose body the caller
// reads and closes before the next request.
type doer interface {
	Do(*http.Request) (*http.Response, error)
}

// directConn is a worker's own HTTP/1.1 connection, used from the worker's
// goroutine only: it writes a request, reads the answer, and keeps the
// connection for the next one. net/http's Transport hands every request to
// two goroutines of its own (a writer and a reader per connection) and
// back, and on a machine whose two cores serve and load at once those
// hand-offs were a third of the generator's CPU (64 µs a balance against
// about 20 here): CPU the server under test did not get. It speaks plain
// HTTP to a loopback address only; the stdlib client (--client stdlib)
// remains for anything else.
type directConn struct {
	addr    string
	timeout time.Duration
	dialer  *net.Dialer
	conn    net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
}

func newDirectConn(addr string, timeout time.Duration) *directConn {
	return &directConn{addr: addr, timeout: timeout, dialer: loopbackDialer()}
}

func (d *directConn) Do(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return nil, fmt.Errorf("direct client: %s is not plain HTTP; use --client stdlib", req.URL)
	}
	if d.conn == nil {
		ctx, cancel := context.WithTimeout(req.Context(), d.timeout)
		c, err := d.dialer.DialContext(ctx, "tcp", d.addr)
		cancel()
		if err != nil {
			return nil, err
		}
		d.conn, d.br, d.bw = c, bufio.NewReaderSize(c, 64<<10), bufio.NewWriterSize(c, 16<<10)
	}
	if err := d.conn.SetDeadline(time.Now().Add(d.timeout)); err != nil {
		return nil, d.fail(err)
	}
	if err := req.Write(d.bw); err != nil {
		return nil, d.fail(err)
	}
	if err := d.bw.Flush(); err != nil {
		return nil, d.fail(err)
	}
	resp, err := http.ReadResponse(d.br, req)
	if err != nil {
		return nil, d.fail(err)
	}
	resp.Body = &directBody{ReadCloser: resp.Body, d: d, close: resp.Close}
	return resp, nil
}

// fail drops the connection after an error: the next request dials again.
func (d *directConn) fail(err error) error {
	if d.conn != nil {
		_ = d.conn.Close()
		d.conn = nil
	}
	return err
}

// directBody keeps the connection for the next request once the answer is
// read to its end, and drops it if the server said it closes it or the
// body was not read through (the stream would be out of step).
type directBody struct {
	io.ReadCloser
	d     *directConn
	close bool
	eof   bool
}

func (b *directBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof = true
	}
	return n, err
}

func (b *directBody) Close() error {
	err := b.ReadCloser.Close()
	if b.close || !b.eof || err != nil {
		b.d.fail(nil)
	}
	return err
}
