package llamactl

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// pollInterval is how often StopInstance and RestartInstance with Wait read the status.
const pollInterval = 250 * time.Millisecond

// ListInstances lists every instance. It is the API reference's context-free form,
// ListInstancesContext(context.Background()): prefer ListInstancesContext, which a
// context can cancel or bound.
func (c *Client) ListInstances() ([]Instance, error) {
	return c.ListInstancesContext(context.Background())
}

// ListInstancesContext lists every instance.
func (c *Client) ListInstancesContext(ctx context.Context) ([]Instance, error) {
	var out struct {
		Instances []Instance `json:"instances"`
	}
	err := c.call(ctx, request{method: http.MethodGet, path: "/api/instances"}, &out)
	return out.Instances, err
}

// GetInstance returns one instance, with its pid and stats.
func (c *Client) GetInstance(ctx context.Context, name string) (*Instance, error) {
	var out Instance
	if err := c.call(ctx, request{method: http.MethodGet, path: instancePath(name)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateInstance creates a stopped instance and returns it. The same name again is a
// conflict (INSTANCE_EXISTS), as is a port another instance has (PORT_CONFLICT); a
// model path that is not a readable file is a bad request (MODEL_NOT_FOUND). A relative
// ModelPath is made absolute against this process's working directory, where it was
// meant (the server refuses relative paths).
func (c *Client) CreateInstance(ctx context.Context, req CreateInstanceRequest) (*Instance, error) {
	path, err := callerPath(req.ModelPath, req.Backend)
	if err != nil {
		return nil, err
	}
	req.ModelPath = path
	var out InstanceCreated
	err = c.call(ctx, request{method: http.MethodPost, path: "/api/instances", body: req}, &out)
	if err != nil {
		return nil, err
	}
	return &out.Instance, nil
}

// UpdateInstance changes the fields set in req. A running instance keeps its old settings
// (RestartRequired in the answer) unless req.Restart is set. A relative ModelPath is made
// absolute as in CreateInstance.
func (c *Client) UpdateInstance(ctx context.Context, name string, req UpdateInstanceRequest) (*InstanceUpdated, error) {
	if req.ModelPath != nil {
		path, err := callerPath(*req.ModelPath, "")
		if err != nil {
			return nil, err
		}
		req.ModelPath = &path
	}
	r := request{method: http.MethodPut, path: instancePath(name), body: req}
	if req.Restart {
		r.query = url.Values{"restart": {"true"}}
	}
	var out InstanceUpdated
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteInstance deletes a stopped (or failed) instance; a running one is a conflict
// (INSTANCE_RUNNING).
func (c *Client) DeleteInstance(ctx context.Context, name string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: instancePath(name)}, nil)
}

// StartInstance starts an instance; with opts.Wait it answers once the instance runs, or
// with the failure (a 502 START_FAILED *APIError). Starting one that is already starting or
// running is a conflict (INSTANCE_ALREADY_RUNNING).
func (c *Client) StartInstance(ctx context.Context, name string, opts StartOptions) (*OperationResult, error) {
	r := request{method: http.MethodPost, path: instancePath(name, "start")}
	if opts.Wait {
		r.query = url.Values{"wait": {"true"}}
	}
	var out OperationResult
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StopInstance stops an instance: SIGTERM, then SIGKILL after opts.Grace, or at once with
// opts.Force. With opts.Wait it returns once the instance is stopped. Stopping one that is
// not running is a conflict (INSTANCE_NOT_RUNNING).
func (c *Client) StopInstance(ctx context.Context, name string, opts StopOptions) (*OperationResult, error) {
	body := map[string]any{"force": opts.Force}
	grace := opts.Grace
	if grace <= 0 {
		grace = opts.Timeout
	}
	if grace > 0 {
		body["timeout"] = grace.Seconds()
	}
	var out OperationResult
	r := request{method: http.MethodPost, path: instancePath(name, "stop"), body: body}
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	if !opts.Wait {
		return &out, nil
	}
	inst, err := c.waitStatus(ctx, name, StatusStopped, StatusFailed)
	if err != nil {
		return nil, err
	}
	return &OperationResult{Message: "Instance stopped", Status: inst.Status}, nil
}

// RestartInstance restarts an instance (a stopped or failed one is started). With opts.Wait
// it returns once the instance runs again.
func (c *Client) RestartInstance(ctx context.Context, name string, opts RestartOptions) (*OperationResult, error) {
	var out OperationResult
	r := request{method: http.MethodPost, path: instancePath(name, "restart")}
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	if !opts.Wait {
		return &out, nil
	}
	inst, err := c.waitStatus(ctx, name, StatusRunning, StatusFailed)
	if err != nil {
		return nil, err
	}
	if inst.Status == StatusFailed {
		return nil, startFailed(inst)
	}
	return &OperationResult{Message: "Instance restarted", Status: inst.Status}, nil
}

// startFailed is what a restart that ended in failed returns, as the server's own start
// with ?wait=true would.
func startFailed(inst *Instance) *APIError {
	e := &APIError{StatusCode: http.StatusBadGateway, Code: "START_FAILED",
		Message: "Instance '" + inst.Name + "' failed to start"}
	if inst.LastError != nil {
		e.Details = *inst.LastError
	}
	return e
}

// waitStatus polls the instance until its status is one of wanted, or ctx ends.
func (c *Client) waitStatus(ctx context.Context, name string, wanted ...Status) (*Instance, error) {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		inst, err := c.GetInstance(ctx, name)
		if err != nil {
			return nil, err
		}
		if slices.Contains(wanted, inst.Status) {
			return inst, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ticker.C:
		}
	}
}

// InstanceHealth checks an instance's process, port and health endpoint.
func (c *Client) InstanceHealth(ctx context.Context, name string) (*Health, error) {
	var out Health
	if err := c.call(ctx, request{method: http.MethodGet, path: instancePath(name, "health")}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// InstanceLogs returns the last opts.Lines log entries of an instance, oldest first.
func (c *Client) InstanceLogs(ctx context.Context, name string, opts LogOptions) ([]LogEntry, error) {
	var out struct {
		Logs []LogEntry `json:"logs"`
	}
	r := request{method: http.MethodGet, path: instancePath(name, "logs"), query: opts.query()}
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.Logs, nil
}

func (o LogOptions) query() url.Values {
	q := url.Values{}
	if o.Lines > 0 {
		q.Set("lines", strconv.Itoa(o.Lines))
	}
	if o.Level != "" {
		q.Set("level", string(o.Level))
	}
	return q
}

// StartAll starts every stopped or failed instance.
func (c *Client) StartAll(ctx context.Context) (*StartAllResult, error) {
	var out StartAllResult
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/instances/start-all"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StopAll stops every starting, running or restarting instance.
func (c *Client) StopAll(ctx context.Context) (*StopAllResult, error) {
	var out StopAllResult
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/instances/stop-all"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// callerPath makes a relative model path absolute against the working directory: the
// caller's directory is what a relative path means, and only the caller knows it. A hub id
// ("org/name") that names nothing here is sent as it is for a backend that takes them (vLLM,
// MLX).
func callerPath(path, backend string) (string, error) {
	if path == "" || filepath.IsAbs(path) {
		return path, nil
	}
	if backend != "" && backend != "llama_cpp" && hubID.MatchString(path) {
		if _, err := os.Stat(path); err != nil {
			return path, nil
		}
	}
	return filepath.Abs(path)
}

var hubID = regexp.MustCompile(`^[A-Za-z0-9][\w.-]*/[\w.-]+$`)
