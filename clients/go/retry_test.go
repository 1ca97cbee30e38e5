package llamactl_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	llamactl "llamactl.dev/client/go"
)

// flakyServer is a real local HTTP server that answers the statuses in turn (0 drops the
// connection without an answer), then 200 with an empty instance list; it counts requests.
type flakyServer struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	requests int
}

func newFlakyServer(t *testing.T, retryAfter string, statuses ...int) *flakyServer {
	t.Helper()
	f := &flakyServer{statuses: statuses}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		status := http.StatusOK
		if f.requests < len(f.statuses) {
			status = f.statuses[f.requests]
		}
		f.requests++
		f.mu.Unlock()
		switch status {
		case 0:
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		case http.StatusOK:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"instances":[],"started":[],"failed":[]}`))
		default:
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"error":"not now","code":"HTTP_` + strconv.Itoa(status) + `","details":null}`))
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *flakyServer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// fast retries: the policy under test, with backoffs short enough for a test.
var fast = llamactl.WithRetry(llamactl.RetryPolicy{MaxRetries: 2, InitialDelay: time.Millisecond,
	MaxDelay: 2 * time.Millisecond})

func TestRetriesA429AndA503ThenSucceeds(t *testing.T) {
	srv := newFlakyServer(t, "", 429, 503)
	instances, err := llamactl.NewClient(srv.URL, fast).ListInstancesContext(context.Background())
	if err != nil || instances == nil {
		t.Fatalf("ListInstances: %v, %v", instances, err)
	}
	if srv.count() != 3 {
		t.Fatalf("%d requests, want 3 (429, 503, then 200)", srv.count())
	}
}

func TestRetriesALostConnectionOfAGet(t *testing.T) {
	srv := newFlakyServer(t, "", 0)
	if _, err := llamactl.NewClient(srv.URL, fast).ListInstancesContext(context.Background()); err != nil {
		t.Fatalf("ListInstances: %v", err)
	}
	if srv.count() != 2 {
		t.Fatalf("%d requests, want 2", srv.count())
	}
}

func TestAPostIsRetriedOnA429Only(t *testing.T) {
	srv := newFlakyServer(t, "", 429)
	c := llamactl.NewClient(srv.URL, fast)
	if _, err := c.StartAll(context.Background()); err != nil || srv.count() != 2 {
		t.Fatalf("StartAll after a 429: %v, %d requests, want success in 2", err, srv.count())
	}
	for _, status := range []int{503, 502, 504, 0} {
		srv := newFlakyServer(t, "", status)
		_, err := llamactl.NewClient(srv.URL, fast).StartAll(context.Background())
		if err == nil || srv.count() != 1 {
			t.Fatalf("StartAll after %d: %v, %d requests, want the error after 1", status, err, srv.count())
		}
	}
}

func TestRetriesStopAtMaxRetries(t *testing.T) {
	srv := newFlakyServer(t, "", 503, 503, 503, 503)
	_, err := llamactl.NewClient(srv.URL, fast).ListInstancesContext(context.Background())
	if !errors.Is(err, llamactl.ErrServer) || srv.count() != 3 {
		t.Fatalf("%v after %d requests, want ErrServer after 3", err, srv.count())
	}
	srv = newFlakyServer(t, "", 429)
	_, err = llamactl.NewClient(srv.URL, llamactl.WithRetry(llamactl.RetryPolicy{})).ListInstancesContext(context.Background())
	if !llamactl.IsRateLimited(err) || srv.count() != 1 {
		t.Fatalf("without retries: %v after %d requests, want the 429 after 1", err, srv.count())
	}
	srv = newFlakyServer(t, "", 400)
	if _, err := llamactl.NewClient(srv.URL, fast).ListInstancesContext(context.Background()); !llamactl.IsBadRequest(err) || srv.count() != 1 {
		t.Fatalf("a 400: %v after %d requests, want no retry", err, srv.count())
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	srv := newFlakyServer(t, "1", 429)
	started := time.Now()
	if _, err := llamactl.NewClient(srv.URL, fast).ListInstancesContext(context.Background()); err != nil {
		t.Fatalf("ListInstances: %v", err)
	}
	// A lower bound only: the backoff alone would have waited a millisecond.
	if waited := time.Since(started); waited < time.Second {
		t.Fatalf("retried after %v, before the Retry-After of 1s", waited)
	}
}

func TestARetryWaitEndsWithTheContext(t *testing.T) {
	srv := newFlakyServer(t, "30", 429)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for srv.count() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := llamactl.NewClient(srv.URL).ListInstancesContext(ctx)
	if !errors.Is(err, context.Canceled) || srv.count() != 1 {
		t.Fatalf("%v after %d requests, want context.Canceled after 1", err, srv.count())
	}
}
