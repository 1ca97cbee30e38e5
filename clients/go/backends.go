package llamactl

import (
	"context"
	"net/http"
	"net/url"
)

// ImportedInstance is a command line read as an instance: with a Name added, a
// CreateInstanceRequest.
type ImportedInstance struct {
	Backend   string   `json:"backend"`
	ModelPath string   `json:"model_path"`
	Port      *int     `json:"port"`
	Options   Options  `json:"options"`
	ExtraArgs []string `json:"extra_args"`
}

// ImportedCommand is the answer of ParseCommand: the instance, and what llamactl left out
// because it sets it itself (--host, --api-key, ...).
type ImportedCommand struct {
	Instance ImportedInstance `json:"instance"`
	Ignored  []string         `json:"ignored"`
}

// ParseCommand reads a llama-server (backend "llama_cpp"), "vllm serve" ("vllm") or
// mlx_lm.server ("mlx_lm") command line as an instance. A command that is not for that
// backend, or a value that does not fit its option, is a bad request (VALIDATION_ERROR).
func (c *Client) ParseCommand(ctx context.Context, backend, command string) (*ImportedCommand, error) {
	var out ImportedCommand
	path := "/api/backends/" + url.PathEscape(backend) + "/parse-command"
	body := map[string]string{"command": command}
	if err := c.call(ctx, request{method: http.MethodPost, path: path, body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
