package llamactl_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	llamactl "llamactl.dev/client/go"
)

// eventServer is a real local HTTP server that answers GET /api/events with events, then
// holds the stream open until the client goes (hold) or ends it.
func eventServer(t *testing.T, events string, hold bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, events)
		w.(http.Flusher).Flush()
		if hold {
			<-r.Context().Done()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

const statusEvent = `data: {"type":"instance_status_changed","timestamp":"2026-01-02T03:04:05Z",` +
	`"data":{"name":"a","status":"running","previous_status":"starting"}}` + "\n\n"

func TestStreamReadsEventsAndEndsWithTheServer(t *testing.T) {
	srv := eventServer(t, ": ping\n\n"+statusEvent+statusEvent, false)
	stream, err := llamactl.NewClient(srv.URL).Events(context.Background(), "a")
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	defer stream.Close()
	n := 0
	for stream.Next() {
		if ev := stream.Event(); ev.Type != llamactl.EventInstanceStatusChanged || ev.Data.Status != llamactl.StatusRunning {
			t.Fatalf("event %d: %+v", n, ev)
		}
		n++
	}
	if n != 2 || stream.Err() != nil {
		t.Fatalf("%d events, Err %v: want 2 and nil (the server ended the stream)", n, stream.Err())
	}
}

func TestStreamReportsAMessageItCannotDecode(t *testing.T) {
	srv := eventServer(t, statusEvent+"data: {not json\n\n"+statusEvent, true)
	stream, err := llamactl.NewClient(srv.URL).Events(context.Background())
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	defer stream.Close()
	if !stream.Next() {
		t.Fatalf("no first event: %v", stream.Err())
	}
	if stream.Next() {
		t.Fatalf("a message that is not JSON was read as %+v", stream.Event())
	}
	if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "/api/events") {
		t.Fatalf("Err %v, want the decoding error", err)
	}
	if stream.Next() {
		t.Fatal("Next after the error")
	}
}

func TestStreamCloseUnblocksNext(t *testing.T) {
	srv := eventServer(t, statusEvent, true)
	stream, err := llamactl.NewClient(srv.URL).Events(context.Background())
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if !stream.Next() {
		t.Fatalf("no event: %v", stream.Err())
	}
	go func() { _ = stream.Close() }() // while Next below waits for a message that never comes
	if stream.Next() {
		t.Fatal("Next after Close")
	}
	if stream.Err() != nil {
		t.Fatalf("Err after Close: %v, want nil", stream.Err())
	}
	if err := stream.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

func TestStreamEndsWithItsContext(t *testing.T) {
	srv := eventServer(t, statusEvent, true)
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := llamactl.NewClient(srv.URL).Events(ctx)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	defer stream.Close()
	if !stream.Next() {
		t.Fatalf("no event: %v", stream.Err())
	}
	cancel()
	if stream.Next() || !errors.Is(stream.Err(), context.Canceled) {
		t.Fatalf("after cancel: Err %v, want context.Canceled", stream.Err())
	}
}
