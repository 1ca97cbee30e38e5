package llamactl

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBaseURLForms(t *testing.T) {
	for in, want := range map[string]string{
		"http://localhost:8080":       "http://localhost:8080",
		"http://localhost:8080/":      "http://localhost:8080",
		"http://localhost:8080/api":   "http://localhost:8080",
		"http://localhost:8080/api/":  "http://localhost:8080",
		"localhost:8080":              "http://localhost:8080",
		" https://h.example/llamactl": "https://h.example/llamactl",
	} {
		if got := NewClient(in).BaseURL(); got != want {
			t.Errorf("NewClient(%q).BaseURL() = %q, want %q", in, got, want)
		}
	}
	_, err := NewClient("ftp://x").ListInstances()
	if err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Fatalf("a bad base URL: %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"17":                            17 * time.Second,
		"0.5":                           500 * time.Millisecond,
		"-3":                            0,
		"Fri, 02 Jan 2026 03:04:35 GMT": 30 * time.Second,
		"soon":                          0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

// answer is a test server that answers every request with status, headers and body, and
// records the last request.
func answer(t *testing.T, status int, header map[string]string, body string) (*Client, *http.Request) {
	t.Helper()
	seen := new(http.Request)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*seen = *r.Clone(context.Background())
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	// No retries: the error answers are what is tested.
	return NewClient(srv.URL, WithUserAgent("unit"), WithToken("tok"), WithRetry(RetryPolicy{})), seen
}

func TestErrorShapes(t *testing.T) {
	ctx := context.Background()
	c, _ := answer(t, 404, nil, `{"error": "Instance 'x' not found", "code": "INSTANCE_NOT_FOUND", "details": null}`)
	_, err := c.GetInstance(ctx, "x")
	var e *APIError
	if !errors.As(err, &e) || e.Code != "INSTANCE_NOT_FOUND" || e.Details != nil || !IsNotFound(err) ||
		err.Error() != "llamactl: 404 INSTANCE_NOT_FOUND: Instance 'x' not found" {
		t.Fatalf("contract error: %#v", err)
	}

	c, _ = answer(t, 429, map[string]string{"Retry-After": "12"},
		`{"error": "Rate limit exceeded", "code": "RATE_LIMITED", "details": "retry after 12 s"}`)
	_, err = c.StartAll(ctx)
	if !errors.As(err, &e) || !IsRateLimited(err) || e.RetryAfter != 12*time.Second ||
		e.Details != "retry after 12 s" || !errors.Is(err, ErrRateLimited) {
		t.Fatalf("429: %#v", err)
	}

	c, _ = answer(t, 404, nil, `{"error": {"message": "no model 'm'", "type": "invalid_request_error", "code": "model_not_found"}}`)
	_, err = c.ListModels(ctx)
	if !errors.As(err, &e) || e.Code != "model_not_found" || e.Message != "no model 'm'" {
		t.Fatalf("OpenAI-shaped error: %#v", err)
	}

	c, _ = answer(t, 502, nil, "<html>Bad Gateway</html>")
	_, err = c.SystemInfo(ctx)
	if !errors.As(err, &e) || e.Code != "HTTP_502" || e.Details != "<html>Bad Gateway</html>" ||
		IsNotFound(err) || IsConflict(err) {
		t.Fatalf("an answer not in the contract's shape: %#v", err)
	}
}

func TestRequests(t *testing.T) {
	ctx := context.Background()
	c, seen := answer(t, 200, nil, `{"message": "Instance updated successfully", "instance": {"name": "a b"}, "restart_required": true}`)
	reset := UpdateInstanceRequest{Options: Options{"threads": nil, "batch_size": 64},
		Reset: []string{"idle_timeout"}, Restart: true}
	updated, err := c.UpdateInstance(ctx, "a b", reset)
	if err != nil || !updated.RestartRequired || updated.Instance.Name != "a b" {
		t.Fatalf("UpdateInstance: %+v, %v", updated, err)
	}
	if seen.Method != http.MethodPut || seen.URL.EscapedPath() != "/api/instances/a%20b" ||
		seen.URL.RawQuery != "restart=true" || seen.Header.Get("Authorization") != "Bearer tok" ||
		seen.Header.Get("User-Agent") != "unit" {
		t.Fatalf("request: %s %s %v", seen.Method, seen.URL, seen.Header)
	}

	body, err := json.Marshal(reset)
	if err != nil || string(body) != `{"idle_timeout":null,"options":{"batch_size":64,"threads":null}}` {
		t.Fatalf("UpdateInstanceRequest as JSON: %s, %v", body, err)
	}
	body, _ = json.Marshal(UpdateInstanceRequest{Port: new(int)})
	if string(body) != `{"port":0}` {
		t.Fatalf("a set zero port: %s", body)
	}
	// Docker: false is sent (not dropped as empty); reset, it follows the backend again.
	body, _ = json.Marshal(UpdateInstanceRequest{Docker: new(bool)})
	if string(body) != `{"docker":false}` {
		t.Fatalf("docker false: %s", body)
	}
	body, _ = json.Marshal(UpdateInstanceRequest{Reset: []string{"docker"}})
	if string(body) != `{"docker":null}` {
		t.Fatalf("docker reset: %s", body)
	}
	var instance Instance
	if err := json.Unmarshal([]byte(`{"docker": true}`), &instance); err != nil ||
		instance.Docker == nil || !*instance.Docker {
		t.Fatalf("Instance.Docker: %v, %v", instance.Docker, err)
	}
}

func TestReadEvents(t *testing.T) {
	stream := ": ping\n\ndata: {\"a\":1}\n\nevent: x\ndata: first\ndata: second\nid: 3\n\n" +
		"data:tight\n\n: ping\n\ndata: {\"unterminated\"\n"
	reader := newSSEReader(strings.NewReader(stream))
	var got []string
	for {
		data, err := reader.next()
		if err != nil {
			if err != io.EOF {
				t.Fatalf("next: %v", err)
			}
			break
		}
		got = append(got, string(data))
	}
	want := []string{`{"a":1}`, "first\nsecond", "tight"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func TestEventDecoding(t *testing.T) {
	var ev Event
	raw := `{"type":"instance_stats_updated","timestamp":"2026-01-02T03:04:05.600000Z",` +
		`"data":{"name":"a","stats":{"memory_usage":1024,"cpu_usage":2.5,"uptime":7}}}`
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != EventInstanceStatsUpdated || ev.Data.Name != "a" || ev.Data.Stats == nil ||
		ev.Data.Stats.MemoryUsage != 1024 || ev.Timestamp.Nanosecond() != 600000000 {
		t.Fatalf("decoded %+v", ev)
	}
}

func TestRelativeModelPathsAreTheCallers(t *testing.T) {
	var sent []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var doc struct {
			ModelPath string `json:"model_path"`
		}
		_ = json.NewDecoder(r.Body).Decode(&doc)
		sent = append(sent, doc.ModelPath)
		_, _ = io.WriteString(w, `{"instance": {"name": "a"}}`)
	}))
	t.Cleanup(srv.Close)
	c := NewClient(srv.URL)
	ctx := context.Background()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	relative := filepath.Join("models", "m.gguf")
	if _, err := c.CreateInstance(ctx, CreateInstanceRequest{Name: "a", ModelPath: relative}); err != nil {
		t.Fatalf("CreateInstance: %v", err)
	}
	if _, err := c.CreateInstance(ctx, CreateInstanceRequest{Name: "b", ModelPath: "/abs/m.gguf"}); err != nil {
		t.Fatalf("CreateInstance: %v", err)
	}
	if _, err := c.UpdateInstance(ctx, "a", UpdateInstanceRequest{ModelPath: &relative}); err != nil {
		t.Fatalf("UpdateInstance: %v", err)
	}
	// A hub id for a backend that takes them (vLLM) goes as it is.
	hub := CreateInstanceRequest{Name: "c", ModelPath: "Qwen/Qwen2.5-0.5B", Backend: "vllm"}
	if _, err := c.CreateInstance(ctx, hub); err != nil {
		t.Fatalf("CreateInstance: %v", err)
	}
	want := []string{filepath.Join(wd, relative), "/abs/m.gguf", filepath.Join(wd, relative),
		"Qwen/Qwen2.5-0.5B"}
	if strings.Join(sent, "|") != strings.Join(want, "|") {
		t.Fatalf("model paths sent: %q, want %q", sent, want)
	}
	if relative != filepath.Join("models", "m.gguf") {
		t.Fatalf("the caller's request was changed: %q", relative)
	}
}

func TestParseCommandPostsTheCommandToItsBackend(t *testing.T) {
	var path, command string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var doc struct {
			Command string `json:"command"`
		}
		_ = json.NewDecoder(r.Body).Decode(&doc)
		path, command = r.URL.Path, doc.Command
		_, _ = io.WriteString(w, `{"instance": {"backend": "vllm", "model_path": "org/m",
			"port": null, "options": {"max_model_len": 4096}, "extra_args": []},
			"ignored": ["--api-key", "k"]}`)
	}))
	t.Cleanup(srv.Close)
	got, err := NewClient(srv.URL).ParseCommand(context.Background(), "vllm", "vllm serve org/m")
	if err != nil {
		t.Fatal(err)
	}
	if path != "/api/backends/vllm/parse-command" || command != "vllm serve org/m" {
		t.Fatalf("sent %s %q", path, command)
	}
	if got.Instance.ModelPath != "org/m" || got.Instance.Port != nil || len(got.Ignored) != 2 {
		t.Fatalf("read %+v", got)
	}
	if n, ok := got.Instance.Options["max_model_len"].(json.Number); !ok || n.String() != "4096" {
		if f, ok := got.Instance.Options["max_model_len"].(float64); !ok || f != 4096 {
			t.Fatalf("options %#v", got.Instance.Options)
		}
	}
}

func TestRetryBackoffDoublesWithJitterUpToTheCap(t *testing.T) {
	p := RetryPolicy{MaxRetries: 10, InitialDelay: 500 * time.Millisecond, MaxDelay: 8 * time.Second,
		MaxRetryAfter: time.Minute}
	busy := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}}
	for attempt, full := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second,
		4 * time.Second, 8 * time.Second, 8 * time.Second} {
		d, ok := p.delay(http.MethodGet, attempt, busy, nil)
		if !ok || d > full || d < full*3/4 {
			t.Fatalf("attempt %d: %v (%v), want within [%v, %v]", attempt, d, ok, full*3/4, full)
		}
	}
	if _, ok := p.delay(http.MethodGet, 10, busy, nil); ok {
		t.Fatal("retried past MaxRetries")
	}
	long := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3600"}}}
	if d, ok := p.delay(http.MethodPost, 0, long, nil); !ok || d > 500*time.Millisecond {
		t.Fatalf("a Retry-After past MaxRetryAfter: %v, %v, want the backoff", d, ok)
	}
	if _, ok := p.delay(http.MethodPost, 0, nil, errors.New("connection reset")); ok {
		t.Fatal("a POST that lost its connection was retried")
	}
}

func TestTokenTimesFromTheClaims(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"a","iat":1000,"exp":1004}`))
	token := "e30." + payload + ".sig"
	now := time.Now()
	times := timesOf(token, time.Time{}, now) // lifetime 4 s less the rounding: 3 s
	if times.lifetime != 3*time.Second || times.due(now) || !times.due(now.Add(1600*time.Millisecond)) {
		t.Fatalf("%+v: want a 3 s lifetime, due after 1.5 s", times)
	}
	day := timesOf("not-a-jwt", now.Add(24*time.Hour), now)
	if day.due(now.Add(21*time.Hour)) || !day.due(now.Add(22*time.Hour)) {
		t.Fatalf("%+v: want due in the last 2.4 h of a day", day)
	}
}

func TestStopGraceIsSentAsTheTimeout(t *testing.T) {
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(raw))
		_, _ = io.WriteString(w, `{"message": "stopping", "instance": {"name": "a"}}`)
	}))
	t.Cleanup(srv.Close)
	c := NewClient(srv.URL, WithRetry(RetryPolicy{}))
	ctx := context.Background()
	for _, opts := range []StopOptions{{Grace: 2500 * time.Millisecond}, {Timeout: 3 * time.Second}, {}} {
		if _, err := c.StopInstance(ctx, "a", opts); err != nil {
			t.Fatalf("StopInstance(%+v): %v", opts, err)
		}
	}
	want := []string{`{"force":false,"timeout":2.5}`, `{"force":false,"timeout":3}`, `{"force":false}`}
	if strings.Join(bodies, "|") != strings.Join(want, "|") {
		t.Fatalf("bodies: %q, want %q", bodies, want)
	}
}

func TestRequestCompletedEventsAndActivityPages(t *testing.T) {
	var event Event
	record := `{"type":"request_completed","timestamp":"2026-01-01T00:00:00Z","data":{` +
		`"id":"r1","time":"2026-01-01T00:00:00.5Z","kind":"v1","method":"POST",` +
		`"endpoint":"/v1/completions","model":"a","instance":"a","node":null,` +
		`"principal":{"kind":"key","name":"app"},"status":200,"error_code":null,` +
		`"stream":false,"cancelled":false,"prompt_tokens":3,"completion_tokens":5}}`
	if err := json.Unmarshal([]byte(record), &event); err != nil {
		t.Fatalf("a request_completed event: %v", err)
	}
	if event.Type != EventRequestCompleted || event.Request == nil || event.Request.Status != 200 ||
		*event.Request.CompletionTokens != 5 || *event.Request.Principal.Name != "app" {
		t.Fatalf("decoded %+v", event)
	}
	var alert Event
	if err := json.Unmarshal([]byte(`{"type":"system_alert","timestamp":"2026-01-01T00:00:00Z",`+
		`"data":{"level":"info","message":"m"}}`), &alert); err != nil || alert.Data.Level != "info" ||
		alert.Request != nil {
		t.Fatalf("an alert: %+v, %v", alert, err)
	}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/activity" || r.URL.Query().Get("status") != "4xx" ||
			r.URL.Query().Get("limit") != "2" {
			t.Errorf("request %s", r.URL)
		}
		_, _ = io.WriteString(w, `{"items":[`+record[strings.Index(record, `"data":`)+7:len(record)-1]+`],"next":null}`)
	}))
	defer server.Close()
	page, err := NewClient(server.URL).ListActivity(context.Background(), ActivityFilter{Status: "4xx", Limit: 2})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != "r1" || page.Next != "" {
		t.Fatalf("ListActivity: %+v, %v", page, err)
	}
}
