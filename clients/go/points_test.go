package llamactl

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestZeroValueClientReturnsAnErrorNotAPanic(t *testing.T) {
	var c Client
	if _, err := c.ListInstances(); !errors.Is(err, ErrNoBaseURL) {
		t.Fatalf("zero-value ListInstances: %v, want ErrNoBaseURL", err)
	}
	if _, err := c.GetInstance(context.Background(), "a"); !errors.Is(err, ErrNoBaseURL) {
		t.Fatalf("zero-value GetInstance: %v, want ErrNoBaseURL", err)
	}
	if _, err := c.Events(context.Background()); !errors.Is(err, ErrNoBaseURL) {
		t.Fatalf("zero-value Events: %v, want ErrNoBaseURL", err)
	}
	if _, err := c.Login(context.Background(), "a", "b"); !errors.Is(err, ErrNoBaseURL) {
		t.Fatalf("zero-value Login: %v, want ErrNoBaseURL", err)
	}
	if _, err := c.ListKeys(context.Background()); !errors.Is(err, ErrNoBaseURL) {
		t.Fatalf("zero-value ListKeys: %v, want ErrNoBaseURL", err)
	}
	var stream *Stream[Event] // a nil stream (from a call that failed) is safe too
	if stream.Next() || stream.Err() != nil || stream.Close() != nil {
		t.Fatal("a nil Stream is not empty")
	}
}

// A real local HTTP server that records the last body and answers with body.
func recordingServer(t *testing.T, status int, body string) (*httptest.Server, *[]byte) {
	t.Helper()
	var seen []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestEmptySlicesInAnUpdateAreSentAndOptionsKeepIntegers(t *testing.T) {
	answer := `{"message":"ok","instance":{"name":"a","options":{"threads":4,"temp":0.5}}}`
	srv, seen := recordingServer(t, http.StatusOK, answer)
	c := NewClient(srv.URL)
	updated, err := c.UpdateInstance(context.Background(), "a", UpdateInstanceRequest{
		Aliases: []string{}, ExtraArgs: []string{}, Environment: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	var sent map[string]any
	if err := json.Unmarshal(*seen, &sent); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"aliases", "extra_args", "environment"} {
		if _, ok := sent[key]; !ok {
			t.Errorf("%s not sent: %s", key, *seen)
		}
	}
	if updated.Instance.Options["threads"] != json.Number("4") {
		t.Errorf("threads = %#v, want json.Number(\"4\")", updated.Instance.Options["threads"])
	}
}

func TestErrServerMatchesEvery5xx(t *testing.T) {
	srv, _ := recordingServer(t, http.StatusBadGateway,
		`{"error":"failed","code":"START_FAILED","details":"x"}`)
	// No retries: a 502 to a GET would otherwise be sent again twice.
	_, err := NewClient(srv.URL, WithRetry(RetryPolicy{})).GetInstance(context.Background(), "a")
	var apiErr *APIError
	if !errors.Is(err, ErrServer) || !IsServerError(err) || !errors.As(err, &apiErr) ||
		apiErr.Code != CodeStartFailed {
		t.Fatalf("got %v, want an ErrServer with code %s", err, CodeStartFailed)
	}
	if errors.Is(err, ErrNotFound) {
		t.Fatal("a 502 is not ErrNotFound")
	}
}
