package llamactl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
)

// maxLine bounds one line of an event stream (a log line can be long).
const maxLine = 4 << 20

// Stream is an open event stream of T (Events, FollowLogs), read as a bufio.Scanner is:
//
//	for stream.Next() {
//		use(stream.Event())
//	}
//	if err := stream.Err(); err != nil { ... }
//
// Next blocks until the next message, and returns false once the stream has ended: the
// server closed it, ctx ended, Close was called, or a message could not be read. Err then
// says why: nil when the server ended the stream or Close was called, ctx's error when ctx
// ended, else the reading or decoding error (a message that is not JSON of a T is an error,
// never skipped in silence). Always Close a stream (deferring it is fine): that ends the
// connection. A Stream is read by one goroutine; Close may be called from any.
type Stream[T any] struct {
	ctx     context.Context
	cancel  context.CancelFunc
	body    io.ReadCloser
	reader  *sseReader
	current T
	err     error
	done    bool
	closed  atomic.Bool
	what    string // "GET /api/events", for errors
}

// Next reads the next message into Event; false when the stream has ended (see Err).
func (s *Stream[T]) Next() bool {
	if s == nil || s.done {
		return false
	}
	data, err := s.reader.next()
	if err != nil {
		s.finish(s.readError(err))
		return false
	}
	var item T
	if err := json.Unmarshal(data, &item); err != nil {
		s.finish(fmt.Errorf("llamactl: %s: a message that is not one of ours: %w", s.what, err))
		return false
	}
	s.current = item
	return true
}

// Event is the message the last Next read (the zero T before the first).
func (s *Stream[T]) Event() T { return s.current }

// Err is why the stream ended: nil while it is open, and when the server ended it or Close
// was called.
func (s *Stream[T]) Err() error {
	if s == nil {
		return nil
	}
	return s.err
}

// Close ends the stream and its connection; Next returns false from then on. It is safe to
// call more than once, and from another goroutine than the one in Next (which it unblocks).
func (s *Stream[T]) Close() error {
	if s == nil || s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	return s.body.Close()
}

func (s *Stream[T]) finish(err error) {
	s.done, s.err = true, err
	s.current = *new(T)
	if !s.closed.Swap(true) {
		s.cancel()
		_ = s.body.Close()
	}
}

// readError is what a failed read means: the end, the caller's Close, ctx, or an error.
func (s *Stream[T]) readError(err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return nil // the server ended the stream
	case s.closed.Load():
		return nil // Close: the read failed because the body was closed under it
	case s.ctx.Err() != nil:
		return s.ctx.Err()
	}
	return fmt.Errorf("llamactl: %s: %w", s.what, err)
}

// FollowLogs streams an instance's log: the last opts.Lines entries, then each new one as
// it is written (GET .../logs?follow=true). The error is the request's (say, IsNotFound
// for an unknown instance); once it is nil, the stream delivers entries until ctx ends,
// Close is called or the server ends it.
func (c *Client) FollowLogs(ctx context.Context, name string, opts LogOptions) (*Stream[LogEntry], error) {
	q := opts.query()
	q.Set("follow", "true")
	return openStream[LogEntry](ctx, c, request{
		method: http.MethodGet, path: instancePath(name, "logs"), query: q,
		accept: "text/event-stream",
	})
}

// Events streams llamactl's events (GET /api/events, the messages of the /api/ws
// WebSocket): status changes, resource stats of running instances every few seconds, and
// system alerts. With instances, only those instances' events come (and alerts about no
// instance). Events returns once the server has subscribed the client, so nothing that
// happens afterwards is missed; the stream ends when ctx ends, Close is called or the server
// ends it (it drops a client that reads too slowly).
func (c *Client) Events(ctx context.Context, instances ...string) (*Stream[Event], error) {
	q := url.Values{}
	if len(instances) > 0 {
		q.Set("instances", strings.Join(instances, ","))
	}
	return openStream[Event](ctx, c, request{
		method: http.MethodGet, path: "/api/events", query: q, accept: "text/event-stream",
	})
}

// openStream makes the request and returns the stream of its answer.
func openStream[T any](ctx context.Context, c *Client, r request) (*Stream[T], error) {
	ctx, cancel := context.WithCancel(ctx)
	resp, err := c.send(ctx, r)
	if err != nil {
		cancel()
		return nil, err
	}
	return &Stream[T]{ctx: ctx, cancel: cancel, body: resp.Body, reader: newSSEReader(resp.Body),
		what: r.method + " " + r.path}, nil
}

// sseReader reads a text/event-stream one event at a time.
type sseReader struct {
	scanner *bufio.Scanner
}

func newSSEReader(body io.Reader) *sseReader {
	scanner := bufio.NewScanner(body)
	scanner.Buffer(make([]byte, 0, 64<<10), maxLine)
	return &sseReader{scanner: scanner}
}

// next returns the next event's data (its data: lines joined by newlines); io.EOF at the
// end of the stream (an event cut off by the end is dropped, as EventSource drops it).
// Comments (": ping") and other fields are skipped.
func (r *sseReader) next() ([]byte, error) {
	var data []byte
	pending := false
	for r.scanner.Scan() {
		line := r.scanner.Bytes()
		switch {
		case len(line) == 0:
			if pending {
				return data, nil
			}
		case line[0] == ':':
			// a comment: the keepalive
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			if string(field) != "data" {
				continue // event:, id:, retry:
			}
			value = bytes.TrimPrefix(value, []byte(" "))
			if pending {
				data = append(data, '\n')
			}
			data = append(data, value...)
			pending = true
		}
	}
	if err := r.scanner.Err(); err != nil {
		return nil, err
	}
	return nil, io.EOF
}
