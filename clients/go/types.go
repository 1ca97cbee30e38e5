package llamactl

import (
	"encoding/json"
	"time"
)

// Status is an instance's state.
type Status string

// The statuses of an instance. StatusRunning means the backend answers its health endpoint;
// while the model loads the instance is StatusStarting.
const (
	StatusStopped    Status = "stopped"
	StatusStarting   Status = "starting"
	StatusRunning    Status = "running"
	StatusStopping   Status = "stopping"
	StatusRestarting Status = "restarting"
	StatusFailed     Status = "failed"
)

// Options are llama-server's long flags in snake_case ("threads", "context_size",
// "gpu_layers", "batch_size", "flash_attn", ...), with JSON values.
type Options map[string]any

// InstanceStats is an instance's resource use; zeros while it is stopped.
type InstanceStats struct {
	MemoryUsage int64   `json:"memory_usage"` // bytes (RSS of the process tree)
	CPUUsage    float64 `json:"cpu_usage"`    // percent of one core
	Uptime      int64   `json:"uptime"`       // seconds
}

// Instance is one llama-server instance as the server describes it. The lifecycle fields
// hold their effective values (the configuration's defaults where the instance sets none).
type Instance struct {
	Name          string             `json:"name"`
	Status        Status             `json:"status"`
	ModelPath     string             `json:"model_path"`
	Port          int                `json:"port"`
	PID           *int               `json:"pid"` // nil while stopped
	Backend       string             `json:"backend"`
	Options       Options            `json:"options"`
	Stats         InstanceStats      `json:"stats"`
	AutoRestart   bool               `json:"auto_restart"`
	MaxRestarts   int                `json:"max_restarts"`
	RestartDelay  float64            `json:"restart_delay"`   // seconds
	OnDemandStart bool               `json:"on_demand_start"` // started by the /v1 gateway
	IdleTimeout   float64            `json:"idle_timeout"`    // minutes; 0 = never
	Group         *string            `json:"group"`
	Environment   map[string]string  `json:"environment"`
	ExtraArgs     []string           `json:"extra_args"`
	Aliases       []string           `json:"aliases"`
	Resources     map[string]float64 `json:"resources"`   // Ray resources (cluster.engine: ray)
	Docker        *bool              `json:"docker"`      // in a container; nil: the backend's setting
	Pool          *string            `json:"pool"`        // the replica pool it serves; nil: none
	SleepAfter    *float64           `json:"sleep_after"` // seconds idle before it sleeps
	Sleeping      bool               `json:"sleeping"`    // model unloaded until a request
	Node          map[string]string  `json:"node"`        // {id, address} while on a Ray node
	RestartCount  int                `json:"restart_count"`
	LastError     *string            `json:"last_error"`
	CreatedAt     time.Time          `json:"created_at"`
	UpdatedAt     time.Time          `json:"updated_at"`

	// MemoryEstimate is nil where it cannot be known (not a readable GGUF file).
	MemoryEstimate *MemoryEstimate `json:"memory_estimate"`
	// ContextLength is its context_size, else the model's trained context; nil if unknown.
	ContextLength *int `json:"context_length"`
	// Capabilities: what the gateway may ask of it (the Capability* constants).
	Capabilities []string `json:"capabilities"`
	// Pull is the pull of the instance's model while it is not on disk yet (an instance
	// created with CreateInstanceFromModel); nil otherwise.
	Pull *InstancePull `json:"pull"`
}

// InstancePull is the progress of the pull an instance waits for.
type InstancePull struct {
	ID         string  `json:"id"`
	Status     string  `json:"status"`
	BytesDone  int64   `json:"bytes_done"`
	BytesTotal int64   `json:"bytes_total"`
	Error      *string `json:"error"`
}

// MemoryEstimate is what an instance is expected to hold, in bytes. VRAM is nil if unknown.
type MemoryEstimate struct {
	RAM  *int64 `json:"ram"` // nil where it cannot be known (vLLM)
	VRAM *int64 `json:"vram"`
}

// CreateInstanceRequest is the body of CreateInstance. Name and ModelPath are required;
// a zero Port takes a free port from the server's instances.port_range, and nil lifecycle
// fields take the configuration's defaults.
type CreateInstanceRequest struct {
	Name          string            `json:"name"`
	ModelPath     string            `json:"model_path"`
	Port          int               `json:"port,omitempty"`
	Backend       string            `json:"backend,omitempty"` // "" = "llama_cpp"
	Options       Options           `json:"options,omitempty"`
	AutoRestart   *bool             `json:"auto_restart,omitempty"`
	MaxRestarts   *int              `json:"max_restarts,omitempty"`
	RestartDelay  *float64          `json:"restart_delay,omitempty"` // seconds
	OnDemandStart *bool             `json:"on_demand_start,omitempty"`
	IdleTimeout   *float64          `json:"idle_timeout,omitempty"` // minutes
	Group         *string           `json:"group,omitempty"`
	Environment   map[string]string `json:"environment,omitempty"`
	ExtraArgs     []string          `json:"extra_args,omitempty"`
	Aliases       []string          `json:"aliases,omitempty"`
	Docker        *bool             `json:"docker,omitempty"`      // nil: the backend's docker.enabled
	Pool          *string           `json:"pool,omitempty"`        // the replica pool it serves
	SleepAfter    *float64          `json:"sleep_after,omitempty"` // seconds idle, then sleep
}

// UpdateInstanceRequest is the body of UpdateInstance: nil fields stay as they are.
// Options are merged key by key into the instance's; a key whose value is nil is removed.
// Environment, ExtraArgs and Aliases, when not nil, replace the instance's whole.
type UpdateInstanceRequest struct {
	ModelPath     *string           `json:"model_path,omitempty"`
	Port          *int              `json:"port,omitempty"`
	Options       Options           `json:"options,omitempty"`
	AutoRestart   *bool             `json:"auto_restart,omitempty"`
	MaxRestarts   *int              `json:"max_restarts,omitempty"`
	RestartDelay  *float64          `json:"restart_delay,omitempty"`
	OnDemandStart *bool             `json:"on_demand_start,omitempty"`
	IdleTimeout   *float64          `json:"idle_timeout,omitempty"`
	Group         *string           `json:"group,omitempty"`
	Environment   map[string]string `json:"environment,omitempty"`
	ExtraArgs     []string          `json:"extra_args,omitempty"`
	Aliases       []string          `json:"aliases,omitempty"`
	Docker        *bool             `json:"docker,omitempty"`      // run in a container, or not
	Pool          *string           `json:"pool,omitempty"`        // join a replica pool
	SleepAfter    *float64          `json:"sleep_after,omitempty"` // seconds idle, then sleep
	// Reset names lifecycle fields ("idle_timeout", "group", "docker", ...) to send as null,
	// which returns them to the configuration's defaults.
	Reset []string `json:"-"`
	// Restart restarts a running instance at once to apply the change (?restart=true);
	// otherwise it keeps running on its old settings and the answer has RestartRequired.
	Restart bool `json:"-"`
}

// MarshalJSON encodes the set fields, and the Reset ones as null. Environment, ExtraArgs
// and Aliases are sent when empty but not nil (Aliases: []string{} clears the aliases),
// which omitempty alone would drop.
func (r UpdateInstanceRequest) MarshalJSON() ([]byte, error) {
	type fields UpdateInstanceRequest // without this method
	data, err := json.Marshal(fields(r))
	emptyEnv := r.Environment != nil && len(r.Environment) == 0
	emptyArgs := r.ExtraArgs != nil && len(r.ExtraArgs) == 0
	emptyAliases := r.Aliases != nil && len(r.Aliases) == 0
	if err != nil || (len(r.Reset) == 0 && !emptyEnv && !emptyArgs && !emptyAliases) {
		return data, err
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if emptyEnv {
		doc["environment"] = map[string]string{}
	}
	if emptyArgs {
		doc["extra_args"] = []string{}
	}
	if emptyAliases {
		doc["aliases"] = []string{}
	}
	for _, name := range r.Reset {
		doc[name] = nil
	}
	return json.Marshal(doc)
}

// InstanceCreated is the answer of CreateInstance.
type InstanceCreated struct {
	Message  string   `json:"message"`
	Instance Instance `json:"instance"`
}

// InstanceUpdated is the answer of UpdateInstance.
type InstanceUpdated struct {
	Message  string   `json:"message"`
	Instance Instance `json:"instance"`
	// RestartRequired: the instance runs on its old settings until it is restarted.
	RestartRequired bool `json:"restart_required"`
}

// OperationResult is the answer of StartInstance, StopInstance and RestartInstance.
type OperationResult struct {
	Message string `json:"message"`
	Status  Status `json:"status"`
}

// StartOptions are StartInstance's options.
type StartOptions struct {
	// Wait answers once the instance is running (the server's ?wait=true), or with the
	// failure: a 502 START_FAILED *APIError whose Details are the backend's last log lines.
	Wait bool
}

// StopOptions are StopInstance's options.
type StopOptions struct {
	Force bool // SIGKILL at once
	// Grace between SIGTERM and SIGKILL, in whole or fractional seconds; zero uses the
	// server's instances.stop_timeout. (Python's grace=, the CLI's --grace.)
	Grace time.Duration
	// Deprecated: Timeout is the old name of Grace, used when Grace is zero.
	Timeout time.Duration
	// Wait returns once the instance is stopped (or failed), polling its status.
	Wait bool
}

// RestartOptions are RestartInstance's options.
type RestartOptions struct {
	// Wait returns once the instance is running again, polling its status; a restart that
	// ends in failed is an *APIError with Code START_FAILED, as a start with Wait.
	Wait bool
}

// BatchFailure is an instance that a batch operation could not act on.
type BatchFailure struct {
	Name  string `json:"name"`
	Error string `json:"error"`
}

// StartAllResult is the answer of StartAll.
type StartAllResult struct {
	Message string         `json:"message"`
	Started []string       `json:"started"`
	Skipped []string       `json:"skipped"`
	Failed  []BatchFailure `json:"failed"`
}

// StopAllResult is the answer of StopAll.
type StopAllResult struct {
	Message string         `json:"message"`
	Stopped []string       `json:"stopped"`
	Skipped []string       `json:"skipped"`
	Failed  []BatchFailure `json:"failed"`
}

// HealthChecks are the parts of a health report: Process is "running", "stopped" or
// "exited"; Port "open" or "closed"; Response "ok", "loading", "error", "timeout" or
// "skipped".
type HealthChecks struct {
	Process  string `json:"process"`
	Port     string `json:"port"`
	Response string `json:"response"`
}

// Health is the answer of InstanceHealth; Status is "healthy", "unhealthy", "starting" or
// "stopped".
type Health struct {
	Status    string       `json:"status"`
	Checks    HealthChecks `json:"checks"`
	LastCheck time.Time    `json:"last_check"`
}

// LogLevel is a log entry's level; as a filter it is a minimum (debug < info < warn <
// error).
type LogLevel string

// The log levels, lowest first.
const (
	LevelDebug LogLevel = "debug"
	LevelInfo  LogLevel = "info"
	LevelWarn  LogLevel = "warn"
	LevelError LogLevel = "error"
)

// LogEntry is one line of an instance's log.
type LogEntry struct {
	Timestamp time.Time `json:"timestamp"`
	Level     LogLevel  `json:"level"`
	Message   string    `json:"message"`
}

// LogOptions are InstanceLogs' and FollowLogs' options.
type LogOptions struct {
	// Lines is how many of the last entries to return (FollowLogs: before the new ones);
	// zero uses the server's default, 100.
	Lines int
	// Level keeps entries of this level and above; "" keeps all.
	Level LogLevel
}

// InstanceCounts counts instances by status.
type InstanceCounts struct {
	Total      int `json:"total"`
	Running    int `json:"running"`
	Stopped    int `json:"stopped"`
	Starting   int `json:"starting"`
	Stopping   int `json:"stopping"`
	Restarting int `json:"restarting"`
	Failed     int `json:"failed"`
}

// Resources is the host's resource use.
type Resources struct {
	CPUUsage    float64 `json:"cpu_usage"`    // percent of the whole host
	MemoryUsage int64   `json:"memory_usage"` // bytes in use
	MemoryTotal int64   `json:"memory_total"` // bytes
	DiskUsage   float64 `json:"disk_usage"`   // percent used of the data dir's file system
}

// SystemStatus is the answer of SystemStatus.
type SystemStatus struct {
	Version   string         `json:"version"`
	Uptime    int64          `json:"uptime"` // seconds since llamactl started
	Instances InstanceCounts `json:"instances"`
	Resources Resources      `json:"resources"`
	Storage   *Storage       `json:"storage,omitempty"`  // nil from servers before it was added
	Memory    *MemoryStatus  `json:"memory,omitempty"`   // nil from servers before it was added
	Nodes     []ClusterNode  `json:"nodes,omitempty"`    // cluster.engine: ray only
	Activity  *ActivityState `json:"activity,omitempty"` // the request ledger; nil before it
}

// ActivityState is the request ledger's state (GET /api/activity holds its records).
type ActivityState struct {
	Enabled bool    `json:"enabled"` // activity.enabled
	Pending int64   `json:"pending"` // records not yet written
	Dropped int64   `json:"dropped"` // records lost to a burst the database could not take
	Written int64   `json:"written"` // records written since llamactl started
	Error   *string `json:"error"`   // why the last write failed, while it fails
}

// MemoryAmounts are bytes of RAM and VRAM; nil: not limited.
type MemoryAmounts struct {
	RAM  *int64 `json:"ram"`
	VRAM *int64 `json:"vram"`
}

// MemoryStatus is instances.memory_budget, what instances claim against it, and what is free.
type MemoryStatus struct {
	Budget  MemoryAmounts `json:"budget"`
	Claimed MemoryAmounts `json:"claimed"`
	Free    MemoryAmounts `json:"free"`
}

// ClusterNode is a Ray node (cluster.engine: ray) and the instances placed on it.
type ClusterNode struct {
	ID        string        `json:"id"`
	Address   string        `json:"address"`
	Alive     bool          `json:"alive"`
	Resources NodeResources `json:"resources"`
	Instances []string      `json:"instances"`
}

// NodeResources are a Ray node's resources, in all and not yet taken.
type NodeResources struct {
	Total     map[string]float64 `json:"total"`
	Available map[string]float64 `json:"available"`
}

// Storage says whether llamactl's database can be written.
type Storage struct {
	Available     bool    `json:"available"`      // false while database writes fail
	Error         *string `json:"error"`          // why they fail
	PendingWrites int64   `json:"pending_writes"` // changes not yet written
}

// GPU is an NVIDIA GPU of the host.
type GPU struct {
	Name        string  `json:"name"`
	MemoryTotal int64   `json:"memory_total"` // bytes
	MemoryUsed  int64   `json:"memory_used"`  // bytes
	Utilization float64 `json:"utilization"`  // percent
}

// SystemInfo is the answer of SystemInfo. Arch uses Go's names (amd64, arm64).
type SystemInfo struct {
	Hostname    string    `json:"hostname"`
	OS          string    `json:"os"`
	Arch        string    `json:"arch"`
	CPUCount    int       `json:"cpu_count"`
	MemoryTotal int64     `json:"memory_total"` // bytes
	Version     string    `json:"version"`
	BuildTime   time.Time `json:"build_time"`
	GPUs        []GPU     `json:"gpus,omitempty"` // nil when none can be read
}

// Config is a configuration document, as YAML's structure in JSON ("server", "instances",
// "auth", ...); GetConfig shows secrets as "***".
type Config map[string]any

// ConfigUpdated is the answer of UpdateConfig.
type ConfigUpdated struct {
	Message         string `json:"message"`
	RestartRequired bool   `json:"restart_required"` // llamactl applies the file when restarted
	Config          Config `json:"config"`
}

// Token is the answer of Login and RefreshToken.
type Token struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Model is an instance as the OpenAI-compatible gateway lists it.
type Model struct {
	ID      string   `json:"id"` // the instance's name
	Object  string   `json:"object"`
	Created int64    `json:"created"` // Unix seconds
	OwnedBy string   `json:"owned_by"`
	Status  Status   `json:"status"`
	Aliases []string `json:"aliases"`
	// ContextLength is the instance's context_size, else the model's trained context from
	// its metadata; nil where it cannot be known.
	ContextLength *int `json:"context_length"`
	// Capabilities lists what the gateway may ask of it (the Capability* constants); a route
	// that needs another is refused with 400 unsupported_capability, before any start.
	Capabilities []string `json:"capabilities"`
	// Members names a replica pool's instances; empty for an instance's own entry.
	Members []string `json:"members,omitempty"`
}

// The capabilities a Model or an Instance may list.
const (
	CapabilityCompletion = "completion"
	CapabilityChat       = "chat"
	CapabilityEmbedding  = "embedding"
	CapabilityRerank     = "rerank"
	CapabilityVision     = "vision"
	CapabilityAudio      = "audio"
	CapabilityTools      = "tools"
)

// HasCapability reports whether m lists capability (one of the Capability* constants).
func (m Model) HasCapability(capability string) bool {
	for _, have := range m.Capabilities {
		if have == capability {
			return true
		}
	}
	return false
}

// The event types of Events.
const (
	EventInstanceStatusChanged = "instance_status_changed"
	EventInstanceStatsUpdated  = "instance_stats_updated"
	EventSystemAlert           = "system_alert"
	EventRequestCompleted      = "request_completed" // a request's record, in Event.Request
)

// Event is a message of the event stream: {"type", "timestamp", "data"}.
type Event struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      EventData `json:"data"`
	// request_completed: the request's record (Data stays empty).
	Request *ActivityRecord `json:"-"`
}

// EventData holds the fields of every event type; those of other types are zero.
type EventData struct {
	// instance_status_changed and instance_stats_updated: the instance.
	Name string `json:"name,omitempty"`
	// instance_status_changed.
	Status         Status `json:"status,omitempty"`
	PreviousStatus Status `json:"previous_status,omitempty"`
	// instance_stats_updated.
	Stats *InstanceStats `json:"stats,omitempty"`
	// system_alert: Level is "info", "warning" or "error"; Instance is "" for alerts about
	// the host.
	Level    string `json:"level,omitempty"`
	Message  string `json:"message,omitempty"`
	Instance string `json:"instance,omitempty"`
}
