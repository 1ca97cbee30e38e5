package llamactl

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// APIKey describes an inference API key of the /v1 gateway (never the key itself, which
// only CreateKey's answer holds).
type APIKey struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Prefix string `json:"prefix"` // the key's first characters, to recognise it
	// Instances are those the key may use; nil for every instance.
	Instances  []string   `json:"instances"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`   // nil: never
	LastUsedAt *time.Time `json:"last_used_at"` // nil: not used yet
}

// CreateKeyRequest is what CreateKey makes.
type CreateKeyRequest struct {
	Name string
	// Instances limits the key to these instances; nil for every instance (an empty,
	// non-nil slice allows none).
	Instances []string
	// ExpiresAt, when set, is when the key stops working (in the future; kept to the
	// second).
	ExpiresAt *time.Time
}

// KeyCreated is CreateKey's answer: Key is the key itself, shown this once and never again.
type KeyCreated struct {
	Message string `json:"message"`
	Key     string `json:"key"`
	Info    APIKey `json:"info"`
}

// CreateKey makes an inference API key (admin only). The same name again is a conflict; an
// ExpiresAt in the past is a bad request.
func (c *Client) CreateKey(ctx context.Context, req CreateKeyRequest) (*KeyCreated, error) {
	body := map[string]any{"name": req.Name}
	if req.Instances != nil {
		body["instances"] = req.Instances
	}
	if req.ExpiresAt != nil {
		body["expires_at"] = req.ExpiresAt.UTC().Format(time.RFC3339)
	}
	var out KeyCreated
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/keys", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeys lists the inference API keys (admin only).
func (c *Client) ListKeys(ctx context.Context) ([]APIKey, error) {
	out := struct {
		Keys []APIKey `json:"keys"`
	}{Keys: []APIKey{}}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/keys"}, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// RevokeKey revokes an inference API key by name (admin only): the gateway refuses it from
// then on. An unknown name is not found.
func (c *Client) RevokeKey(ctx context.Context, name string) error {
	r := request{method: http.MethodDelete, path: "/api/keys/" + url.PathEscape(name)}
	return c.call(ctx, r, nil)
}
