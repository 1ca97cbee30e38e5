package llamactl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxLine bounds one line of an event stream (a log line can be long).
const maxLine = 4 << 20

// FollowLogs streams an instance's log: the last opts.Lines entries, then each new one as
// it is written (GET .../logs?follow=true). The error is the request's (say, IsNotFound
// for an unknown instance); once it is nil, the channel delivers entries until ctx ends or
// the server ends the stream, and is then closed. Cancel ctx when done: that closes the
// connection and ends the goroutine that reads it.
func (c *Client) FollowLogs(ctx context.Context, name string, opts LogOptions) (<-chan LogEntry, error) {
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
// happens afterwards is missed; the channel is closed when ctx ends or the server ends the
// stream (it drops a client that reads too slowly). Cancel ctx when done.
func (c *Client) Events(ctx context.Context, instances ...string) (<-chan Event, error) {
	q := url.Values{}
	if len(instances) > 0 {
		q.Set("instances", strings.Join(instances, ","))
	}
	return openStream[Event](ctx, c, request{
		method: http.MethodGet, path: "/api/events", query: q, accept: "text/event-stream",
	})
}

// openStream makes the request and decodes each message of the event stream into a T.
func openStream[T any](ctx context.Context, c *Client, r request) (<-chan T, error) {
	ctx, cancel := context.WithCancel(ctx)
	resp, err := c.send(ctx, r)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan T)
	go func() {
		defer close(out)
		defer cancel()
		defer resp.Body.Close()
		readEvents(resp.Body, func(data []byte) bool {
			var item T
			if json.Unmarshal(data, &item) != nil {
				return true // not one of ours: skip it, as EventSource skips what it cannot use
			}
			select {
			case out <- item:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return out, nil
}

// readEvents reads a text/event-stream and calls emit with each event's data (its data:
// lines joined by newlines), until emit returns false or the stream ends. Comments (": ping")
// and other fields are skipped.
func readEvents(body io.Reader, emit func(data []byte) bool) {
	scanner := bufio.NewScanner(body)
	scanner.Buffer(make([]byte, 0, 64<<10), maxLine)
	var data []byte
	pending := false
	for scanner.Scan() {
		line := scanner.Bytes()
		switch {
		case len(line) == 0:
			if pending && !emit(data) {
				return
			}
			data, pending = data[:0], false
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
}
