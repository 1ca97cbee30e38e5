package llamactl_test

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"testing"
	"time"

	llamactl "llamactl.dev/client/go"
)

// TestSeedSnippet is the API reference's Go snippet, as it is (only the import path and
// the URL changed).
func TestSeedSnippet(t *testing.T) {
	e := requireEnv(t)

	client := llamactl.NewClient(e.open.url)
	instances, err := client.ListInstances()

	if err != nil {
		t.Fatalf("ListInstances: %v", err)
	}
	if instances == nil {
		t.Fatal("ListInstances returned nil, want a (possibly empty) list")
	}
	// The same through the API's base URL, and with a context.
	again, err := llamactl.NewClient(e.open.url + "/api/").ListInstancesContext(testContext(t))
	if err != nil || len(again) != len(instances) {
		t.Fatalf("ListInstancesContext: %d instances, %v; want %d", len(again), err, len(instances))
	}
}

func intp(n int) *int { return &n }

func TestLifecycle(t *testing.T) {
	e := requireEnv(t)
	ctx := testContext(t)
	c := llamactl.NewClient(e.open.url)
	const name = "go-lifecycle"
	t.Cleanup(func() { removeInstance(c, name) })

	inst, err := c.CreateInstance(ctx, llamactl.CreateInstanceRequest{
		Name: name, ModelPath: e.model,
		Options:     llamactl.Options{"threads": 1, "context_size": 512},
		MaxRestarts: intp(0),
	})
	if err != nil {
		t.Fatalf("CreateInstance: %v", err)
	}
	if inst.Status != llamactl.StatusStopped || inst.PID != nil || inst.Port < 35100 ||
		inst.CreatedAt.IsZero() || inst.Options["context_size"] != json.Number("512") ||
		inst.MaxRestarts != 0 || inst.Backend != "llama_cpp" {
		t.Fatalf("created instance: %+v", inst)
	}

	started, err := c.StartInstance(ctx, name, llamactl.StartOptions{Wait: true})
	if err != nil {
		t.Fatalf("StartInstance: %v", err)
	}
	if started.Status != llamactl.StatusRunning {
		t.Fatalf("StartInstance with Wait: status %q", started.Status)
	}
	inst, err = c.GetInstance(ctx, name)
	if err != nil || inst.Status != llamactl.StatusRunning || inst.PID == nil || *inst.PID <= 0 {
		t.Fatalf("GetInstance after start: %+v, %v", inst, err)
	}

	health, err := c.InstanceHealth(ctx, name)
	if err != nil || health.Status != "healthy" || health.Checks.Process != "running" ||
		health.Checks.Port != "open" || health.Checks.Response != "ok" || health.LastCheck.IsZero() {
		t.Fatalf("InstanceHealth: %+v, %v", health, err)
	}

	logs, err := c.InstanceLogs(ctx, name, llamactl.LogOptions{Lines: 5})
	if err != nil || len(logs) == 0 || len(logs) > 5 || logs[0].Timestamp.IsZero() {
		t.Fatalf("InstanceLogs: %+v, %v", logs, err)
	}
	warnings, err := c.InstanceLogs(ctx, name, llamactl.LogOptions{Lines: 1000, Level: llamactl.LevelWarn})
	if err != nil {
		t.Fatalf("InstanceLogs warn: %v", err)
	}
	for _, entry := range warnings {
		if entry.Level != llamactl.LevelWarn && entry.Level != llamactl.LevelError {
			t.Fatalf("level warn returned %+v", entry)
		}
	}
	followLogs(t, c, name)

	updated, err := c.UpdateInstance(ctx, name, llamactl.UpdateInstanceRequest{
		Options: llamactl.Options{"threads": 2},
	})
	if err != nil || !updated.RestartRequired || updated.Instance.Options["threads"] != json.Number("2") {
		t.Fatalf("UpdateInstance: %+v, %v", updated, err)
	}
	restarted, err := c.RestartInstance(ctx, name, llamactl.RestartOptions{Wait: true})
	if err != nil || restarted.Status != llamactl.StatusRunning {
		t.Fatalf("RestartInstance: %+v, %v", restarted, err)
	}

	stopped, err := c.StopInstance(ctx, name, llamactl.StopOptions{Grace: 10 * time.Second, Wait: true})
	if err != nil || stopped.Status != llamactl.StatusStopped {
		t.Fatalf("StopInstance: %+v, %v", stopped, err)
	}
	inst, err = c.GetInstance(ctx, name)
	if err != nil || inst.PID != nil || inst.Stats.Uptime != 0 {
		t.Fatalf("GetInstance after stop: %+v, %v", inst, err)
	}
	if err := c.DeleteInstance(ctx, name); err != nil {
		t.Fatalf("DeleteInstance: %v", err)
	}
	if _, err := c.GetInstance(ctx, name); !llamactl.IsNotFound(err) {
		t.Fatalf("GetInstance after delete: %v, want not found", err)
	}
}

// followLogs reads the last entries of a running instance's log as a stream, then ends it.
func followLogs(t *testing.T, c *llamactl.Client, name string) {
	t.Helper()
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	entries, err := c.FollowLogs(ctx, name, llamactl.LogOptions{Lines: 3})
	if err != nil {
		t.Fatalf("FollowLogs: %v", err)
	}
	defer entries.Close()
	for i := 0; i < 3; i++ {
		if !entries.Next() {
			t.Fatalf("FollowLogs entry %d: the stream ended: %v", i, entries.Err())
		}
		if entry := entries.Event(); entry.Message == "" || entry.Timestamp.IsZero() {
			t.Fatalf("FollowLogs entry %d: %+v", i, entry)
		}
	}
	cancel()
	for entries.Next() { // ended with the context (an entry already read may come first)
	}
	if !errors.Is(entries.Err(), context.Canceled) {
		t.Fatalf("FollowLogs after the context ended: %v, want context.Canceled", entries.Err())
	}
	if _, err := c.FollowLogs(testContext(t), "no-such-instance", llamactl.LogOptions{}); !llamactl.IsNotFound(err) {
		t.Fatalf("FollowLogs of an unknown instance: %v, want not found", err)
	}
}

// removeInstance stops and deletes an instance a failed test may have left.
func removeInstance(c *llamactl.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	_, _ = c.StopInstance(ctx, name, llamactl.StopOptions{Force: true, Wait: true})
	_ = c.DeleteInstance(ctx, name)
}

func TestEventsWhileAnInstanceStarts(t *testing.T) {
	e := requireEnv(t)
	ctx := testContext(t)
	c := llamactl.NewClient(e.open.url)
	const name = "go-events"
	t.Cleanup(func() { removeInstance(c, name) })

	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	mine, err := c.Events(streamCtx, name)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	defer mine.Close()
	others, err := c.Events(streamCtx, "nobody")
	if err != nil {
		t.Fatalf("Events(nobody): %v", err)
	}
	defer others.Close()
	if _, err := c.CreateInstance(ctx, llamactl.CreateInstanceRequest{
		Name: name, ModelPath: e.model, Options: llamactl.Options{"threads": 1, "context_size": 512},
	}); err != nil {
		t.Fatalf("CreateInstance: %v", err)
	}
	if _, err := c.StartInstance(ctx, name, llamactl.StartOptions{}); err != nil {
		t.Fatalf("StartInstance: %v", err)
	}
	var seen []llamactl.Status
	for len(seen) == 0 || seen[len(seen)-1] != llamactl.StatusRunning {
		if !mine.Next() {
			t.Fatalf("the stream ended (%v); statuses so far %v", mine.Err(), seen)
		}
		ev := mine.Event()
		if ev.Data.Name != name && ev.Data.Instance != name && ev.Data.Instance != "" {
			t.Fatalf("filtered stream got another instance's event: %+v", ev)
		}
		if ev.Type == llamactl.EventInstanceStatusChanged {
			if ev.Timestamp.IsZero() || ev.Data.PreviousStatus == "" {
				t.Fatalf("status change: %+v", ev)
			}
			seen = append(seen, ev.Data.Status)
		}
	}
	if want := []llamactl.Status{llamactl.StatusStarting, llamactl.StatusRunning}; !equal(seen, want) {
		t.Fatalf("statuses %v, want %v", seen, want)
	}
	if _, err := c.StopInstance(ctx, name, llamactl.StopOptions{Wait: true}); err != nil {
		t.Fatalf("StopInstance: %v", err)
	}
	cancel()
	for others.Next() {
		if ev := others.Event(); ev.Data.Name != "" || ev.Data.Instance != "" {
			t.Fatalf("a stream for no instance got %+v", ev)
		}
	}
	if !errors.Is(others.Err(), context.Canceled) {
		t.Fatalf("Events(nobody) after the context ended: %v", others.Err())
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBatchOperations(t *testing.T) {
	e := requireEnv(t)
	ctx := testContext(t)
	c := llamactl.NewClient(e.open.url)
	const name = "go-batch"
	t.Cleanup(func() { removeInstance(c, name) })
	if _, err := c.CreateInstance(ctx, llamactl.CreateInstanceRequest{
		Name: name, ModelPath: e.model, Options: llamactl.Options{"threads": 1, "context_size": 512},
	}); err != nil {
		t.Fatalf("CreateInstance: %v", err)
	}
	started, err := c.StartAll(ctx)
	if err != nil || !contains(started.Started, name) || started.Failed == nil {
		t.Fatalf("StartAll: %+v, %v", started, err)
	}
	if _, err := c.StartInstance(ctx, name, llamactl.StartOptions{}); !llamactl.IsConflict(err) {
		t.Fatalf("StartInstance while starting: %v, want a conflict", err)
	}
	stopped, err := c.StopAll(ctx)
	if err != nil || !contains(stopped.Stopped, name) {
		t.Fatalf("StopAll: %+v, %v", stopped, err)
	}
	deadline := time.Now().Add(callTimeout)
	for {
		inst, err := c.GetInstance(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if inst.Status == llamactl.StatusStopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s after StopAll", inst.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, item := range list {
		if item == s {
			return true
		}
	}
	return false
}

func TestSystemAndConfig(t *testing.T) {
	e := requireEnv(t)
	ctx := testContext(t)
	c := llamactl.NewClient(e.open.url)

	status, err := c.SystemStatus(ctx)
	if err != nil || status.Version == "" || status.Resources.MemoryTotal <= 0 ||
		status.Instances.Total < status.Instances.Running {
		t.Fatalf("SystemStatus: %+v, %v", status, err)
	}
	info, err := c.SystemInfo(ctx)
	if err != nil || info.Hostname == "" || info.OS != runtime.GOOS || info.Arch != runtime.GOARCH ||
		info.CPUCount <= 0 || info.BuildTime.IsZero() {
		t.Fatalf("SystemInfo: %+v, %v", info, err)
	}

	config, err := c.GetConfig(ctx)
	if err != nil {
		t.Fatalf("GetConfig: %v", err)
	}
	instances, ok := config["instances"].(map[string]any)
	if !ok || instances["max_restarts"] == nil {
		t.Fatalf("GetConfig: %v", config)
	}
	updated, err := c.UpdateConfig(ctx, llamactl.Config{"instances": map[string]any{"max_restarts": 7}})
	if err != nil || !updated.RestartRequired {
		t.Fatalf("UpdateConfig: %+v, %v", updated, err)
	}
	after, _ := updated.Config["instances"].(map[string]any)
	if after["max_restarts"] != json.Number("7") {
		t.Fatalf("UpdateConfig answered %v", updated.Config["instances"])
	}
	_, err = c.UpdateConfig(ctx, llamactl.Config{"instances": map[string]any{"max_restarts": "many"}})
	var apiErr *llamactl.APIError
	if !llamactl.IsBadRequest(err) || !errors.As(err, &apiErr) || apiErr.Code != "VALIDATION_ERROR" {
		t.Fatalf("UpdateConfig with a bad value: %v, want VALIDATION_ERROR", err)
	}
}
