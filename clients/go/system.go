package llamactl

import (
	"context"
	"net/http"
)

// SystemStatus returns llamactl's version and uptime, its instances by status and the
// host's resource use.
func (c *Client) SystemStatus(ctx context.Context) (*SystemStatus, error) {
	var out SystemStatus
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/system/status"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SystemInfo returns the host's facts and llamactl's version.
func (c *Client) SystemInfo(ctx context.Context) (*SystemInfo, error) {
	var out SystemInfo
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/system/info"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetConfig returns the effective configuration, secrets shown as "***".
func (c *Client) GetConfig(ctx context.Context) (Config, error) {
	var out Config
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/config"}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateConfig merges a partial document into the config file (admin only): mappings key
// by key, lists and values replaced. An invalid result is a bad request and leaves the file
// as it was. llamactl applies the file when it restarts.
func (c *Client) UpdateConfig(ctx context.Context, changes Config) (*ConfigUpdated, error) {
	var out ConfigUpdated
	r := request{method: http.MethodPut, path: "/api/config", body: changes}
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListModels lists the models of the OpenAI-compatible gateway (GET /v1/models): every
// instance, or those the API key may use. It authenticates with the API key (WithAPIKey),
// else with the token.
func (c *Client) ListModels(ctx context.Context) ([]Model, error) {
	var out struct {
		Data []Model `json:"data"`
	}
	r := request{method: http.MethodGet, path: "/v1/models", bearer: c.apiKey}
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}
